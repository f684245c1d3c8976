"""Reading ids out of a Cookie header, our cookie's renewal period, and building Set-Cookie values."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeVar

from werkzeug.http import dump_cookie

from .ids import HEX_DIGITS, OPT_OUT_ID

if TYPE_CHECKING:
    from .facts import RequestFacts
    from .settings import Settings

__all__ = [
    "COOKIE_HEADER_LIMIT",
    "CookieWrite",
    "cookie_header_end",
    "cookie_write",
    "dated_id_or_none",
    "dated_value",
    "find_cookie",
    "fresh_tokens",
    "period_token",
    "render_set_cookie",
    "valid_id_or_none",
]

T = TypeVar("T")

#: How much of a Cookie header is read, in characters (bytes as the server handed them):
#: 32 KiB. Browsers keep a cookie to 4 KiB (name and value: RFC 6265 6.1, Chrome,
#: Firefox, Safari), so this holds 8 full-size cookies and hundreds of usual ones,
#: more than any server or CDN in front of the app passes on: nginx refuses a header
#: line over 8 KiB (``large_client_header_buffers``), gunicorn over 8,190 bytes, h11
#: (uvicorn, hypercorn) a request head over 16 KiB, Vercel a header over 16 KiB, and
#: Fastly drops a Cookie header over 32 KB. Only a server that accepts headers of any
#: size (uvicorn with httptools) hands over more, and then it is an attack: a longer
#: header is read up to the last ``;`` before this bound (so that no value is read cut
#: short), and the cookies after it are ignored as if absent.
COOKIE_HEADER_LIMIT = 32 * 1024


def cookie_header_end(header: str) -> int:
    """Where reading the Cookie *header* stops: at its end when it is no longer than
    :data:`COOKIE_HEADER_LIMIT`, else at the last ``;`` that leaves at most that many
    characters before it (0 when there is none): whole cookies only.
    :class:`~hr_middleware._core.facts.RequestFacts` reads the header up to there,
    and every reader of cookies reads the facts' header."""
    if len(header) <= COOKIE_HEADER_LIMIT:
        return len(header)
    return max(header.rfind(";", 0, COOKIE_HEADER_LIMIT + 1), 0)


def find_cookie(header: str, key: str, parse: Callable[[str], T | None]) -> T | None:
    """Return ``parse(value)`` for the first cookie ``key`` (``"name="``) it accepts.

    The one reader of a cookie's value, for every request: it does not parse
    the whole header, it looks for ``name=`` where a cookie starts (the start,
    or after ``;`` or a ``,`` that joined two header lines, and blanks) and
    hands the value (unquoted) to *parse*, which returns ``None`` to reject
    it. Several cookies of the same name (set for different paths or
    domains) are tried in order. *header* is what
    :attr:`~hr_middleware._core.facts.RequestFacts.cookie_header` holds (read up
    to :data:`COOKIE_HEADER_LIMIT`). Linear in its length (each character is
    looked at a bounded number of times, whatever the header); never raises.
    """
    i = header.find(key)
    if i < 0:
        return None
    size = len(header)
    # Where the next ";" and "," are, kept while they lie ahead: a value ends at the first of
    # them, and finding each anew for every "name=" would scan to the end of a header that
    # lacks one, once per cookie (quadratic in a hostile header).
    semicolon = comma = -1
    while i >= 0:
        k = i - 1
        while k >= 0 and header[k] in " \t":
            k -= 1
        if k >= 0 and header[k] not in ";,":
            # "name=" inside another cookie's name or value: not ours.
            i = header.find(key, i + 1)
            continue
        start = i + len(key)
        if semicolon < start:
            semicolon = header.find(";", start)
            if semicolon < 0:
                semicolon = size
        if comma < start:
            comma = header.find(",", start)
            if comma < 0:
                comma = size
        end = semicolon if semicolon < comma else comma
        value = header[start:end]
        if value and (value[0] in _TRIMMED or value[-1] in _TRIMMED):
            value = value.strip(" \t")
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1]
        result = parse(value)
        if result is not None:
            return result
        i = header.find(key, end)
    return None


#: What may surround a value: blanks, and the quotes of a quoted one.
_TRIMMED = frozenset(' \t"')
_HEX_DIGITS = HEX_DIGITS.encode()


def valid_id_or_none(value: str) -> str | None:
    """*value* if it is a visitor's id, else None: the *parse* of :func:`find_cookie` for ids."""
    # is_valid_id inline (this runs twice on every request), its hex check on bytes:
    # str.strip(chars) costs twice encode() and bytes.strip together (make bench-parts).
    try:
        return value if len(value) == 24 and not value.encode().strip(_HEX_DIGITS) and value != OPT_OUT_ID else None
    except UnicodeEncodeError:  # a lone surrogate, which no server hands over
        return None


# -- the server cookie's issue period (renewal) -------------------------------------------

#: The characters that name a renewal period in the server cookie, the period's number
#: modulo 64: a cookie value's characters that need no quoting.
PERIOD_TOKENS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
#: How far ahead (seconds, at most half a period) a server's clock may be and the periods
#: it wrote still count: the clocks of servers behind one load balancer differ a little.
CLOCK_SKEW = 300


def dated_value(tracking_user_id: str, token: str) -> str:
    """The server cookie's value that says in which period it was set: ``<id>.<token>``."""
    return f"{tracking_user_id}.{token}"


def dated_id_or_none(value: str) -> tuple[str, str | None] | None:
    """``(id, token)`` for a server cookie's *value*, else None: the *parse* of
    :func:`find_cookie` for the unsigned server cookie.

    The value is the bare id (written before renewal existed, by the app itself,
    or with ``renew_after=None``: *token* is None) or ``<id>.<token>``
    (:func:`dated_value`): the token is the one character after the dot (what
    follows it is ignored, as the hot path ignores it); one that names no period
    is never fresh, so the cookie is renewed on the next page navigation. The id
    counts either way.
    """
    if len(value) == 24:
        tracking_user_id = valid_id_or_none(value)
        return None if tracking_user_id is None else (tracking_user_id, None)
    if len(value) < 25 or value[24] != ".":
        return None
    tracking_user_id = valid_id_or_none(value[:24])
    if tracking_user_id is None:
        return None
    return tracking_user_id, value[25:26] or None


def period_token(when: float, interval: int) -> str:
    """The token of the renewal period *when* (Unix seconds) falls in: periods of *interval*
    seconds from the Unix epoch (with one day: UTC days), numbered modulo 64."""
    return PERIOD_TOKENS[math.floor(when / interval) % len(PERIOD_TOKENS)]


def fresh_tokens(now: float, interval: int) -> tuple[frozenset[str], float]:
    """The tokens a cookie that needs no renewal holds at *now*, and until when they are those.

    Its period is *now*'s, or the next one when *now* is within :data:`CLOCK_SKEW` (at most
    half a period) of it: a cookie written by a server whose clock is a little ahead.
    """
    skew = min(CLOCK_SKEW, interval // 2)
    period = math.floor(now / interval)
    next_start = (period + 1) * interval
    tokens = {PERIOD_TOKENS[period % len(PERIOD_TOKENS)]}
    if now + skew >= next_start:
        tokens.add(PERIOD_TOKENS[(period + 1) % len(PERIOD_TOKENS)])
        return frozenset(tokens), float(next_start)
    return frozenset(tokens), float(next_start - skew)


class CookieWrite(NamedTuple):
    """One cookie the response must carry, every attribute decided: set to
    *value*, or deleted when *value* is None (``Max-Age=0``, expired, with the
    same Path, Domain, Secure, HttpOnly and SameSite it was written with)."""

    name: str
    value: str | None
    secure: bool
    max_age: int
    path: str
    domain: str | None
    httponly: bool
    samesite: Literal["Lax", "Strict", "None"] | None

    @property
    def deletes(self) -> bool:
        """True for a deletion."""
        return self.value is None


def render_set_cookie(cookie: CookieWrite) -> str:
    """The ``Set-Cookie`` header value for *cookie*."""
    deleting = cookie.value is None
    return dump_cookie(
        cookie.name,
        cookie.value or "",
        max_age=0 if deleting else cookie.max_age,
        expires=0 if deleting else None,
        path=cookie.path,
        domain=cookie.domain,
        secure=cookie.secure,
        httponly=cookie.httponly,
        samesite=cookie.samesite,
    )


def cookie_write(
    settings: Settings, request: RequestFacts, name: str, value: str | None, *, httponly: bool | None = None
) -> CookieWrite:
    """The write of cookie *name* on *request*'s response (a deletion when *value* is None),
    with the cookie options: ``Path`` and ``Domain`` as the request's website has them,
    ``HttpOnly`` as the option says unless *httponly* is given."""
    choice = settings.website_choice
    return CookieWrite(
        name,
        value,
        request.is_secure if settings.secure == "auto" else settings.secure,
        settings.max_age,
        choice.cookie_path(request) or settings.path,
        choice.cookie_domain(request, settings.domain),
        settings.httponly if httponly is None else httponly,
        settings.samesite,
    )
