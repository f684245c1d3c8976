"""Reading ids out of a Cookie header, and building Set-Cookie values."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, NamedTuple, TypeVar

from werkzeug.http import dump_cookie

from .ids import is_valid_id

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
    characters before it (0 when there is none): whole cookies only. Every reader of
    the header stops there: the long way's :func:`find_cookie` and the consent
    readers' cookies (``parse_cookies``); the hot path declines a longer header."""
    if len(header) <= COOKIE_HEADER_LIMIT:
        return len(header)
    return max(header.rfind(";", 0, COOKIE_HEADER_LIMIT + 1), 0)


def find_cookie(header: str, key: str, parse: Callable[[str], T | None]) -> T | None:
    """Return ``parse(value)`` for the first cookie ``key`` (``"name="``) it accepts.

    Runs on every request, so it does not parse the whole header: it looks
    for ``name=`` at a cookie boundary and hands the value (unquoted) to
    *parse*, which returns ``None`` to reject it. Several cookies of the same
    name (set for different paths or domains) are tried in order. Reads the
    header up to :func:`cookie_header_end`; linear in what it reads (each
    character is looked at a bounded number of times, whatever the header);
    never raises on any input.
    """
    n = len(key)
    stop = cookie_header_end(header)
    i = header.find(key, 0, stop)
    while i >= 0:
        if not _at_boundary(header, i):
            # "name=" inside another cookie's name or value: not ours.
            i = header.find(key, i + 1, stop)
            continue
        start = i + n
        end = _value_end(header, start, stop)
        value = header[start:end].strip(" \t")
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        result = parse(value)
        if result is not None:
            return result
        i = header.find(key, end, stop)
    return None


def _at_boundary(header: str, i: int) -> bool:
    """Does a cookie start at *i*: only blanks between it and the previous separator or the start?

    The separator is ``;``, or ``,`` where a server joined two Cookie header
    lines (gunicorn, werkzeug and wsgiref join repeated headers with ``", "``).
    """
    k = i - 1
    while k >= 0 and header[k] in " \t":
        k -= 1
    return k < 0 or header[k] in ";,"


#: A value's characters: up to the next ";" or "," (which no id or signed id holds, and which
#: ends a cookie on a joined header line).
_VALUE = re.compile(r"[^;,]*")


def _value_end(header: str, start: int, stop: int) -> int:
    """Where the value starting at *start* ends: at the next ``;`` or ``,``, or at *stop*.

    One scan that stops at the first of either: looking for each separator on its own
    would scan to the end of a header that lacks one, once per cookie.
    """
    match = _VALUE.match(header, start, stop)
    return stop if match is None else match.end()  # never None: the pattern matches an empty value


def valid_id_or_none(value: str) -> str | None:
    """*value* if it is a visitor's id, else None: the *parse* of :func:`find_cookie` for ids."""
    return value if is_valid_id(value) else None


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
