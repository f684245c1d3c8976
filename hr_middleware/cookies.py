"""Reading ids out of a Cookie header, and building Set-Cookie values."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from werkzeug.http import dump_cookie

from .identity import OPT_OUT_ID, is_valid_id
from .settings import Settings

__all__ = ["CookieWrite", "IdCookieReader", "find_cookie", "render_set_cookie"]

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


def _at_boundary(header: str, i: int) -> bool:
    """Does a cookie start at *i*: only blanks between it and the previous ';' or the start?"""
    k = i - 1
    while k >= 0 and header[k] in " \t":
        k -= 1
    return k < 0 or header[k] == ";"


def _valid_or_none(value: str) -> str | None:
    return value if is_valid_id(value) else None


class IdCookieReader:
    """Finds the first valid id in cookie *name* of a Cookie header.

    The same answer as ``find_cookie(header, name + "=", valid_id)``, but the
    common case is one regular-expression search in C: the pattern accepts
    exactly the values ``find_cookie`` would (blanks, optional quotes, 24
    lower-case hex characters, then ``;`` or the end). Only when its first
    match is not at a cookie boundary or is the opt-out sentinel does the
    general scan run. Measured on a 321-byte header: about 3x faster than the
    general scan (bench/micro.py).
    """

    __slots__ = ("key", "_search")

    def __init__(self, name: str) -> None:
        self.key = name + "="
        self._search = re.compile(
            re.escape(self.key) + r'[ \t]*(?:"([0-9a-f]{24})"|([0-9a-f]{24}))[ \t]*(?:;|\Z)'
        ).search

    def __call__(self, header: str) -> str | None:
        match = self._search(header)
        if match is None:
            return None  # no "name=<24 hex>" anywhere: the general scan finds nothing either
        value = match.group(1) or match.group(2)
        if value != OPT_OUT_ID and _at_boundary(header, match.start()):
            return value
        return find_cookie(header, self.key, _valid_or_none)


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
