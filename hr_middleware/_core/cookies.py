"""Reading ids out of a Cookie header, and building Set-Cookie values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple, TypeVar

from werkzeug.http import dump_cookie

from .ids import is_valid_id

__all__ = ["CookieWrite", "find_cookie", "render_set_cookie", "valid_id_or_none"]

T = TypeVar("T")


def find_cookie(header: str, key: str, parse: Callable[[str], T | None]) -> T | None:
    """Return ``parse(value)`` for the first cookie ``key`` (``"name="``) it accepts.

    Runs on every request, so it does not parse the whole header: it looks
    for ``name=`` at a cookie boundary and hands the value (unquoted) to
    *parse*, which returns ``None`` to reject it. Several cookies of the same
    name (set for different paths or domains) are tried in order. Linear in
    the header's length; never raises on any input.
    """
    n = len(key)
    i = header.find(key)
    while i >= 0:
        if not _at_boundary(header, i):
            # "name=" inside another cookie's name or value: not ours.
            i = header.find(key, i + 1)
            continue
        start = i + n
        end = _value_end(header, start)
        value = header[start:end].strip(" \t")
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        result = parse(value)
        if result is not None:
            return result
        i = header.find(key, end)
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


def _value_end(header: str, start: int) -> int:
    """Where the value starting at *start* ends: at the next ``;`` or ``,`` (which no
    id or signed id holds, and which ends a cookie on a joined header line), or the end."""
    end = header.find(";", start)
    if end < 0:
        end = len(header)
    comma = header.find(",", start, end)
    return end if comma < 0 else comma


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
