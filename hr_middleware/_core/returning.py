"""The hot path: the usual returning visitor, whose two cookies hold one id (ours dated, not due a renewal).

Nearly every request of a shop is this one, so it is decided here without
building anything: the raw Cookie header (bytes from an ASGI server, text from
a WSGI one) is searched once per cookie name, and the two values compared.
Whatever this path does not recognise goes the long way
(:class:`~hr_middleware._core.decide.TrackingPolicy`), which answers the same
for every header this path accepts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, AnyStr

from .cookies import COOKIE_HEADER_LIMIT, fresh_tokens
from .ids import HEX_DIGITS, OPT_OUT_ID

__all__ = ["agreeing_id_reader", "environ_reader", "scope_reader"]

_ID_LENGTH = 24


def agreeing_id_reader(  # noqa: PLR0917 - the readers below name them
    server_name: str,
    sdk_name: str,
    kind: type[AnyStr],
    source: str | None = None,
    renew_after: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Callable[[Any], str | None]:
    """A function returning the id that both cookies of a Cookie header hold, else None.

    It answers only for the form browsers send: each name first found at the
    start of the header or after ``"; "``, its value exactly 24 lower-case hex
    characters (not the opt-out id), then ``";"`` or the end, in a header no
    longer than :data:`~hr_middleware._core.cookies.COOKIE_HEADER_LIMIT` (which
    the long way reads whole). Our cookie may say in which renewal period it
    was set (``<id>.<token>``, :func:`~hr_middleware._core.cookies.dated_value`);
    with *renew_after* (the period, seconds) it must, and the period must be
    the current one on *clock* (else a renewal may be due, which the long way
    decides). None sends the caller the long way. *kind* is
    ``bytes`` (latin-1, as ASGI servers hand the header) or ``str`` (as WSGI
    servers do). The function takes the header itself, or what *source* is:
    ``"scope"`` (an ASGI scope) or ``"environ"`` (a WSGI environ, or Django's
    ``request.META``).
    """
    raw = issubclass(kind, bytes)

    def encoded(text: str) -> Any:  # bytes or str, as *kind* says
        return text.encode("latin-1") if raw else text

    server_key, sdk_key = encoded(server_name + "="), encoded(sdk_name + "=")
    hex_digits, opt_out = HEX_DIGITS.encode(), encoded(OPT_OUT_ID)
    # One character of the header, as indexing gives it: an int from bytes, a str from str.
    semicolon, blank, dot = (ord(";"), ord(" "), ord(".")) if raw else (";", " ", ".")
    renewing = renew_after is not None
    interval = renew_after or 1
    # The tokens a cookie that needs no renewal holds (as indexing the header gives them:
    # the current period's, and the next one's near its start, else the same twice),
    # made again when the clock reaches *until*: one token compared, one clock read per
    # request (a date compared on every request cost twice that: docs/renewal.md). A clock
    # set back keeps the later tokens until it reaches *until* again (a renewal put off
    # by as long as it went back).
    current: Any = None
    ahead: Any = None
    until = 0.0
    scope, environ = source == "scope", source == "environ"
    limit = COOKIE_HEADER_LIMIT

    def renewal_tokens(now: float) -> tuple[Any, Any, float]:
        """:func:`~hr_middleware._core.cookies.fresh_tokens` as indexing the header gives them."""
        tokens, changes = fresh_tokens(now, interval)
        first, *rest = (encoded(token)[0] for token in sorted(tokens))
        return first, rest[0] if rest else first, changes

    # Every C call here (a partition, a slice, a compare) is a real share of the
    # middleware's cost per request, so there are as few as the checks allow:
    # single characters are indexed, not sliced, the value is sliced once, and
    # the header is found in the same function (one Python call per request).
    def read(native: Any) -> str | None:
        nonlocal current, ahead, until
        if scope:
            # ASGI servers lower-case header names, or keep the client's spelling (which
            # is "Cookie"): that request goes the long way, which reads every spelling.
            # HTTP/2 may split the Cookie header; RFC 9113 joins the parts with "; ".
            header: Any = None
            lines: list[bytes] | None = None
            for name, value in native["headers"]:
                if name == b"cookie":
                    if header is None:
                        header = value
                    elif lines is None:
                        lines = [header, value]
                        size = len(header) + len(value)
                    else:  # joined once below: joining line by line copies the growing header each time
                        lines.append(value)
                        size += len(value) + 2
                        if size > limit:  # the long way reads it (up to the bound): no need to see the rest
                            return None
                elif name == b"Cookie":  # a server that keeps the client's spelling: the long way reads it
                    return None
            if header is None:
                return None
            if lines is not None:
                header = b"; ".join(lines)
        elif environ:
            try:
                header = native["HTTP_COOKIE"]
            except KeyError:
                return None
        else:
            header = native
        if len(header) > limit:
            # Far beyond what browsers send: the long way reads it up to the bound (cookie_header_end).
            return None
        # A name is taken where it is first found, at the start or after "; ". partition,
        # not find: a one-argument method is called more cheaply than find's, and the value
        # is then at the start of what follows the name (docs/performance.md).
        before, name, after = header.partition(sdk_key)
        try:
            if not name or (before and (before[-1] != blank or before[-2] != semicolon)):
                return None
        except IndexError:  # one character before the name: not a cookie's start
            return None
        try:
            if after[_ID_LENGTH] != semicolon:
                return None
        except IndexError:  # the value ends the header, or the header ends too soon
            if len(after) != _ID_LENGTH:
                return None
        value = after[:_ID_LENGTH]
        try:
            # Checked as bytes: str.strip(chars) costs several times bytes.strip (docs/performance.md).
            if (value if raw else value.encode()).strip(hex_digits) or value == opt_out:
                return None
        except UnicodeEncodeError:  # a lone surrogate, which no server hands over
            return None
        before, name, after = header.partition(server_key)
        try:
            if not name or (before and (before[-1] != blank or before[-2] != semicolon)):
                return None
        except IndexError:  # one character before the name: not a cookie's start
            return None
        if after[:_ID_LENGTH] != value:
            return None
        if renewing:
            # "<id>.<token>" whose token is a fresh period's; the bare id of a cookie set
            # before renewal, another token or another value: the long way decides.
            try:
                if after[_ID_LENGTH] != dot:
                    return None
                token = after[_ID_LENGTH + 1]
            except IndexError:  # the value ends the header (a shorter header failed the compare)
                return None
            if not (now := clock()) < until:
                current, ahead, until = renewal_tokens(now)
            if token != current and token != ahead:  # noqa: PLR1714 - a tuple built per request costs more
                return None
        else:
            try:
                if after[_ID_LENGTH] not in (semicolon, dot):
                    return None
            except IndexError:  # the value ends the header
                pass
        return value.decode() if raw else value  # type: ignore[no-any-return]

    return read


def scope_reader(
    server_name: str, sdk_name: str, renew_after: int | None = None, clock: Callable[[], float] = time.time
) -> Callable[[Mapping[str, Any]], str | None]:
    """:func:`agreeing_id_reader` on an ASGI scope: one pass over its raw headers."""
    return agreeing_id_reader(server_name, sdk_name, bytes, "scope", renew_after, clock)


def environ_reader(
    server_name: str, sdk_name: str, renew_after: int | None = None, clock: Callable[[], float] = time.time
) -> Callable[[Mapping[str, Any]], str | None]:
    """:func:`agreeing_id_reader` on a WSGI environ (or Django's ``request.META``)."""
    return agreeing_id_reader(server_name, sdk_name, str, "environ", renew_after, clock)
