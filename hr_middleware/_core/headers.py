"""The response side of a visit: its Set-Cookie lines and the caching headers that keep it private.

Pure functions of a :class:`Visit` and the response's headers. The patch
functions never raise: a response whose headers cannot be patched is kept
out of shared caches instead.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Generic, Protocol, TypeVar

from werkzeug.http import parse_list_header

from .cookies import CookieWrite, render_set_cookie
from .log import INTERNAL_ERROR, logger
from .visit import Visit

__all__ = [
    "CACHING_HEADERS",
    "CDN_HEADERS",
    "FAIL_SAFE_CACHE_CONTROL",
    "FAIL_SAFE_DROPPED",
    "HeaderMapping",
    "cache_headers",
    "cookies_to_set",
    "keep_out_of_shared_caches",
    "patch_headers",
    "patch_raw_headers",
    "private_cache_control",
    "vary_on_cookie",
]

T = TypeVar("T", str, bytes)


def cache_headers(visit: Visit, current: Mapping[str, str | None]) -> dict[str, str]:
    """New values of the response's caching headers: only those that change.

    *current* maps the lower-case names of ``Cache-Control``, ``Vary``,
    ``CDN-Cache-Control`` and ``Surrogate-Control`` to the response's value
    (several lines joined) or None; the answer maps the canonical names of
    those to change to their new value.

    A response that sets or deletes an id cookie must not be stored by a
    shared cache (every later visitor would get the id): its
    ``Cache-Control`` becomes ``private``. A response the app built after
    reading the id may differ per visitor: it gets ``Vary: Cookie``. Either
    way a ``CDN-Cache-Control`` or ``Surrogate-Control`` (which CDNs obey
    instead of Cache-Control, and most CDNs ignore ``Vary: Cookie``) that
    lets the CDN store the page becomes ``no-store``.
    """
    changes: dict[str, str] = {}
    if not (visit.cookies or visit.accessed):
        return changes
    if visit.cookies:
        cache_control = private_cache_control(current.get("cache-control"))
        if cache_control is not None:
            changes[CACHE_CONTROL] = cache_control
    vary = vary_on_cookie(current.get("vary"))
    if vary is not None:
        changes[VARY] = vary
    for name in CDN_HEADERS:
        value = current.get(name.lower())
        if value is not None and not _keeps_out_of_shared_caches(value):
            changes[name] = "no-store"
    return changes


def cookies_to_set(visit: Visit, set_by_app: Container[str] = ()) -> list[CookieWrite]:
    """The cookies this response must carry, leaving out any the app set itself.

    An app that sets a cookie of one of our names knows better (a login
    that restores a known visitor's id): one ``Set-Cookie`` per name, the app's.
    """
    return [cookie for name, cookie in visit.cookies.items() if name not in set_by_app]


def patch_headers(visit: Visit, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return *headers* with this visit's Set-Cookie and caching headers applied.

    The app's own headers keep their order and values, except that several
    lines of a caching header are merged into one when changed. Never
    raises: if the headers cannot be patched (an app sending headers of
    the wrong type), that is logged and they are returned kept out of
    shared caches (``Cache-Control: private, no-store``; CDN-Cache-Control
    and Surrogate-Control dropped), since the page may carry an id that
    its cookies do not.
    """
    if not visit.cookies:
        if not visit.accessed:
            return headers
        if _needs_only_vary(headers):
            return [*headers, ("Vary", "Cookie")]
    return _patched_or_fail_safe(visit, headers, _TEXT_HEADERS)


def patch_raw_headers(visit: Visit, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """:func:`patch_headers` for raw headers, as ASGI has them: bytes, names
    in lower case. Only the values of the headers it may change are decoded
    (latin-1); the other headers pass as they are."""
    if not visit.cookies:
        if not visit.accessed:
            return headers
        if _needs_only_vary(headers):
            return [*headers, (b"vary", b"Cookie")]
    return _patched_or_fail_safe(visit, headers, _RAW_HEADERS)


class HeaderMapping(Protocol):
    """Response headers kept in a case-insensitive mapping (Django's ``response.headers``)."""

    def pop(self, name: str, default: None = None, /) -> object: ...

    def __setitem__(self, name: str, value: str, /) -> None: ...


def keep_out_of_shared_caches(headers: HeaderMapping) -> None:
    """What a response whose headers could not be patched gets, its headers being
    a case-insensitive mapping (Django's ``response.headers``): ``Cache-Control:
    private, no-store``, CDN-Cache-Control and Surrogate-Control dropped (as
    :func:`patch_headers` does to a header list). Never raises: a failure is logged.
    """
    try:
        for name in FAIL_SAFE_DROPPED:
            headers.pop(name, None)
        headers[CACHE_CONTROL] = FAIL_SAFE_CACHE_CONTROL
    except Exception:
        logger.exception(INTERNAL_ERROR)


def _needs_only_vary(headers: list[tuple[T, T]]) -> bool:
    """Does a page that read the id, and writes no cookie, need nothing but ``Vary: Cookie``
    appended? Yes when it has no Vary, CDN-Cache-Control or Surrogate-Control to merge with
    (the usual page: what the general rules would answer too, in one pass over the names)."""
    try:
        for name, _ in headers:
            if len(name) in _VARY_RULE_LENGTHS and name.lower() in _VARY_RULES:
                return False
    except Exception:  # headers of the wrong shape: the general rules are fail-safe
        return False
    return True


def _patched_or_fail_safe(visit: Visit, headers: list[tuple[T, T]], form: _HeaderForm[T]) -> list[tuple[T, T]]:
    try:
        return _patched(visit, headers, form)
    except Exception:
        logger.exception(INTERNAL_ERROR)
    try:
        kind = type(form.set_cookie)
        kept: list[tuple[T, T]] = [
            line
            for line in headers
            if not (isinstance(line[0], kind) and form.decode(line[0]).lower() in FAIL_SAFE_DROPPED)
        ]
        kept.append((form.name(CACHE_CONTROL), form.encode(FAIL_SAFE_CACHE_CONTROL)))
        return kept
    except Exception:  # headers that cannot even be read: the server will refuse them anyway
        logger.exception(INTERNAL_ERROR)
        return headers


def _patched(visit: Visit, headers: list[tuple[T, T]], form: _HeaderForm[T]) -> list[tuple[T, T]]:
    # Runs on every response of a page that read the id: only names of the
    # right lengths are lower-cased (len() is a fifth of lower()).
    found: dict[str, list[T]] = {}
    set_by_app: list[str] = []
    for name, value in headers:
        if len(name) in _WATCHED_LENGTHS:
            lowered = form.decode(name).lower()
            if lowered == "set-cookie":
                set_by_app.append(form.decode(value).partition("=")[0].strip())
            elif lowered in CACHING_HEADERS:
                found.setdefault(lowered, []).append(value)
    current = {name: form.joined(values) for name, values in found.items()}
    changes = cache_headers(visit, current)
    replaced = {name.lower() for name in changes if name.lower() in found}
    if replaced:
        out = [(k, v) for k, v in headers if len(k) not in _WATCHED_LENGTHS or form.decode(k).lower() not in replaced]
    else:
        out = list(headers)
    out.extend((form.name(name), form.encode(value)) for name, value in changes.items())
    for cookie in cookies_to_set(visit, set_by_app):
        out.append((form.set_cookie, form.encode(render_set_cookie(cookie))))
    return out


class _HeaderForm(Generic[T]):
    """How response headers are spelt in one kind of framework: ``str`` (WSGI) or raw ``bytes`` (ASGI)."""

    __slots__ = ("set_cookie", "encode", "decode", "raw")

    def __init__(self, set_cookie: T, encode: Callable[[str], T], decode: Callable[[T], str]) -> None:
        self.set_cookie: T = set_cookie
        self.encode: Callable[[str], T] = encode
        self.decode: Callable[[T], str] = decode
        #: Raw headers (ASGI) have lower-case names.
        self.raw = isinstance(set_cookie, bytes)

    def name(self, canonical: str) -> T:
        """A header name in this form's spelling."""
        return self.encode(canonical.lower() if self.raw else canonical)

    def joined(self, values: list[T]) -> str:
        """Several lines of one header as one value (RFC 9110 5.3)."""
        return ", ".join(self.decode(value) for value in values)


def _latin1(value: str) -> bytes:
    return value.encode("latin-1")


def _unlatin1(value: bytes) -> str:
    return value.decode("latin-1")


def _same(value: str) -> str:
    return value


CACHE_CONTROL = "Cache-Control"
VARY = "Vary"
#: Read by CDNs instead of Cache-Control (RFC 9213; Fastly, Akamai and others).
CDN_HEADERS = ("CDN-Cache-Control", "Surrogate-Control")
#: The lower-case names of the response headers the middleware may change.
CACHING_HEADERS = frozenset(name.lower() for name in (CACHE_CONTROL, VARY, *CDN_HEADERS))
#: The lengths of the names the patch reads: only names of these are lower-cased and compared.
_WATCHED_LENGTHS = frozenset(len(name) for name in (*CACHING_HEADERS, "set-cookie"))
#: What a response gets when patching it failed (:func:`patch_headers`);
#: its CDN-Cache-Control and Surrogate-Control are dropped.
FAIL_SAFE_CACHE_CONTROL = "private, no-store"
FAIL_SAFE_DROPPED = frozenset(name.lower() for name in (CACHE_CONTROL, *CDN_HEADERS))
#: The headers a page that only read the id may need merged: Vary and the CDNs' own.
_VARY_RULES = frozenset(
    form for name in (VARY, *CDN_HEADERS) for form in (name.lower(), name.lower().encode("latin-1"))
)
_VARY_RULE_LENGTHS = frozenset(len(name) for name in (VARY, *CDN_HEADERS))
_TEXT_HEADERS = _HeaderForm("Set-Cookie", _same, _same)
_RAW_HEADERS = _HeaderForm(b"set-cookie", _latin1, _unlatin1)


def _directives(value: str | None) -> list[str]:
    """The directives of a Cache-Control or Vary value (quoted lists kept whole)."""
    return [part for part in parse_list_header(value) if part] if value else []


def _directive_names(directives: list[str]) -> list[str]:
    # A qualified directive (private="Set-Cookie") gets its name with "=": it is not the plain one.
    return [d.split("=", 1)[0].strip().lower() + ("=" if "=" in d else "") for d in directives]


def _keeps_out_of_shared_caches(value: str) -> bool:
    names = _directive_names(_directives(value))
    # private="Set-Cookie" only keeps that header out of the stored copy (RFC 9111 5.2.2.7).
    return "private" in names or "no-store" in names


def private_cache_control(value: str | None) -> str | None:
    """``Cache-Control`` made safe from shared caches; None if it already is.

    ``private`` or ``no-store`` already present: unchanged (never weakened).
    ``public`` and the qualified ``private="..."`` (which lets a shared cache
    store the page) are replaced by ``private``; other directives are kept.
    """
    directives = _directives(value)
    names = _directive_names(directives)
    if "private" in names or "no-store" in names:
        return None
    kept = [d for d, name in zip(directives, names, strict=True) if name not in ("public", "private=")]
    return ", ".join(["private", *kept])


def vary_on_cookie(value: str | None) -> str | None:
    """``Vary`` with ``Cookie`` added; None if it already varies on it (or on ``*``)."""
    if not value:
        return "Cookie"
    fields = _directives(value)
    lowered = {f.lower() for f in fields}
    if "cookie" in lowered or "*" in lowered:
        return None
    return ", ".join([*fields, "Cookie"])
