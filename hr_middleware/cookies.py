"""Reading ids out of a Cookie header, and building Set-Cookie values."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

from werkzeug.http import dump_cookie

from .settings import Settings

__all__ = ["CookieWrite", "find_cookie", "render_set_cookie"]

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
        k = i - 1
        while k >= 0 and header[k] in " \t":
            k -= 1
        if k >= 0 and header[k] != ";":
            # "name=" inside another cookie's name or value: not ours.
            i = header.find(key, i + 1)
            continue
        start = i + n
        end = header.find(";", start)
        if end < 0:
            end = len(header)
        value = header[start:end].strip(" \t")
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        result = parse(value)
        if result is not None:
            return result
        i = header.find(key, end)
    return None


class CookieWrite(NamedTuple):
    """One cookie the response must carry: set to *value*, or deleted when *value* is None."""

    name: str
    value: str | None
    secure: bool


def render_set_cookie(settings: Settings, cookie: CookieWrite) -> str:
    """The ``Set-Cookie`` header value for *cookie*, with the configured attributes."""
    deleting = cookie.value is None
    return dump_cookie(
        cookie.name,
        cookie.value or "",
        max_age=0 if deleting else settings.max_age,
        expires=0 if deleting else None,
        path=settings.path,
        domain=settings.domain,
        secure=cookie.secure,
        httponly=settings.httponly,
        samesite=settings.samesite,
    )
