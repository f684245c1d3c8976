"""The hot path: the usual returning visitor, whose two cookies hold one id.

Nearly every request of a shop is this one, so it is decided here without
building anything: the raw Cookie header (bytes from an ASGI server, text from
a WSGI one) is searched once per cookie name, and the two values compared.
Whatever this path does not recognise goes the long way
(:class:`~hr_middleware._core.decide.TrackingPolicy`), which answers the same
for every header this path accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, AnyStr

from .cookies import COOKIE_HEADER_LIMIT
from .ids import HEX_DIGITS, OPT_OUT_ID

__all__ = ["agreeing_id_reader", "environ_reader", "scope_reader"]

_ID_LENGTH = 24


def agreeing_id_reader(
    server_name: str, sdk_name: str, kind: type[AnyStr], source: str | None = None
) -> Callable[[Any], str | None]:
    """A function returning the id that both cookies of a Cookie header hold, else None.

    It answers only for the form browsers send: each name first found at the
    start of the header or after ``"; "``, its value exactly 24 lower-case hex
    characters (not the opt-out id), then ``";"`` or the end, in a header no
    longer than :data:`~hr_middleware._core.cookies.COOKIE_HEADER_LIMIT` (which
    the long way reads whole). None sends the caller the long way. *kind* is
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
    semicolon, blank = (ord(";"), ord(" ")) if raw else (";", " ")
    server_skip, sdk_skip = len(server_key) + _ID_LENGTH, len(sdk_key) + _ID_LENGTH
    scope, environ = source == "scope", source == "environ"
    limit = COOKIE_HEADER_LIMIT

    # Every C call here (a find, a slice, a compare) is a real share of the
    # middleware's cost per request, so there are as few as the checks allow:
    # single characters are indexed, not sliced, the value is sliced once, and
    # the header is found in the same function (one Python call per request).
    def read(native: Any) -> str | None:
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
        # A name is taken where it is first found, at the start or after "; ". (At 1,
        # header[-1] is the last character: a ";" there and a blank at 0 is a
        # cookie after a leading blank, which the long way takes too.)
        i = header.find(sdk_key)
        if i < 0 or (i and (header[i - 1] != blank or header[i - 2] != semicolon)):
            return None
        end = i + sdk_skip
        try:
            if header[end] != semicolon:
                return None
        except IndexError:  # the value ends the header, or the header ends too soon
            if end != len(header):
                return None
        value = header[end - _ID_LENGTH : end]
        try:
            # Checked as bytes: str.strip(chars) costs several times bytes.strip (docs/performance.md).
            if (value if raw else value.encode()).strip(hex_digits) or value == opt_out:
                return None
        except UnicodeEncodeError:  # a lone surrogate, which no server hands over
            return None
        i = header.find(server_key)
        if i < 0 or (i and (header[i - 1] != blank or header[i - 2] != semicolon)):
            return None
        end = i + server_skip
        try:
            if header[end] != semicolon:
                return None
        except IndexError:
            if end != len(header):
                return None
        if header[end - _ID_LENGTH : end] != value:
            return None
        return value.decode() if raw else value  # type: ignore[no-any-return]

    return read


def scope_reader(server_name: str, sdk_name: str) -> Callable[[Mapping[str, Any]], str | None]:
    """:func:`agreeing_id_reader` on an ASGI scope: one pass over its raw headers."""
    return agreeing_id_reader(server_name, sdk_name, bytes, "scope")


def environ_reader(server_name: str, sdk_name: str) -> Callable[[Mapping[str, Any]], str | None]:
    """:func:`agreeing_id_reader` on a WSGI environ (or Django's ``request.META``)."""
    return agreeing_id_reader(server_name, sdk_name, str, "environ")
