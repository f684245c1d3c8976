"""Reading ids out of a Cookie header, and building Set-Cookie values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple, TypeVar

from werkzeug.http import dump_cookie

from .ids import HEX_DIGITS, OPT_OUT_ID

__all__ = [
    "COOKIE_HEADER_LIMIT",
    "CookieWrite",
    "cookie_header_end",
    "find_cookie",
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
