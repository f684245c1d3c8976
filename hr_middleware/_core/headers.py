"""The response side of a visit: its Set-Cookie lines and the caching headers that keep it private.

Pure functions of what a visit needs (:class:`Personalised`) and the response's
headers. Headers that cannot be patched (of the wrong type) raise; the serving
layer then keeps the response out of shared caches (:func:`fail_safe_headers`,
:func:`keep_out_of_shared_caches`).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from werkzeug.http import parse_list_header

from .cookies import CookieWrite, render_set_cookie

__all__ = [
    "CDN_HEADERS",
    "FAIL_SAFE_CACHE_CONTROL",
    "HeaderMapping",
    "Personalised",
    "cache_headers",
    "cookies_to_set",
    "fail_safe_headers",
    "is_caching_header",
    "keep_out_of_shared_caches",
    "patch_headers",
    "patch_raw_headers",
    "private_cache_control",
    "set_cookie_name",
    "vary_on_cookie",
]


class Personalised(Protocol):
    """What a response must carry for a visit: the cookies to set or delete, and whether the page read the id."""

    @property
    def cookies(self) -> Mapping[str, CookieWrite]: ...

    @property
    def accessed(self) -> bool: ...


T = TypeVar("T", str, bytes)


def cache_headers(visit: Personalised, current: Mapping[str, str]) -> dict[str, str]:
    """New values of the response's caching headers: only those that change.

    *current* maps the response's headers (names in any case, each once,
    several lines of one name joined with ", ") to their values; only the
    caching headers (:func:`is_caching_header`) among them are read. The answer
    maps each header to change to its new value, under the name *current* has
    it (``Cache-Control`` and ``Vary`` when the response has none).

    A response that sets or deletes an id cookie, and one the app built after
    reading the id, must not be stored by a shared cache: the first would hand
    the id to every later visitor, the second a page built for this one (and
    Cloudflare and most CDNs ignore ``Vary: Cookie``). Both get the same: a
    ``Cache-Control`` made ``private`` (added when there is none), ``Vary:
    Cookie``, and every header a CDN obeys instead of Cache-Control
    (:data:`CDN_HEADERS`, any ``*-CDN-Cache-Control``) that lets it store the
    page made ``no-store``.
    """
    changes: dict[str, str] = {}
    if not (visit.cookies or visit.accessed):
        return changes
    cache_control_name, cache_control = CACHE_CONTROL, None
    vary_name, vary = VARY, None
    for name, value in current.items():
        lowered = name.lower()
        if lowered == "cache-control":
            cache_control_name, cache_control = name, value
        elif lowered == "vary":
            vary_name, vary = name, value
        elif _is_cdn_header(lowered) and not _keeps_out_of_shared_caches(value):
            changes[name] = "no-store"
    private = private_cache_control(cache_control)
    if private is not None:
        changes[cache_control_name] = private
    varying = vary_on_cookie(vary)
    if varying is not None:
        changes[vary_name] = varying
    return changes


def is_caching_header(name: str) -> bool:
    """Is *name* (any case) a header :func:`cache_headers` reads: Cache-Control, Vary, or one a CDN obeys?"""
    lowered = name.lower()
    return lowered in _CACHE_CONTROL_AND_VARY or _is_cdn_header(lowered)


def _is_cdn_header(lowered: str) -> bool:
    return lowered in _CDN_NAMES or lowered.endswith(_TARGETED_SUFFIX)


def set_cookie_name(value: str) -> str:
    """The name of the cookie a ``Set-Cookie`` header *value* sets."""
    return value.partition("=")[0].strip()


def cookies_to_set(visit: Personalised, set_by_app: Container[str] = ()) -> list[CookieWrite]:
    """The cookies this response must carry, leaving out any the app set itself.

    An app that sets a cookie of one of our names knows better (a login
    that restores a known visitor's id): one ``Set-Cookie`` per name, the app's.
    """
    return [cookie for name, cookie in visit.cookies.items() if name not in set_by_app]


def patch_headers(visit: Personalised, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return *headers* with this visit's Set-Cookie and caching headers applied.

    The app's own headers keep their order and values, except that several
    lines of a caching header are merged into one when changed. Headers of
    the wrong type (an app's bytes in WSGI) raise: the serving layer then
    keeps the response out of shared caches (:func:`fail_safe_headers`),
    since the page may carry an id that its cookies do not.
    """
    if not visit.cookies:
        if not visit.accessed:
            return headers
        if _text_needs_only_appends(headers):
            return [*headers, *_READ_ONLY_TEXT]
    return _patched(visit, headers, _TEXT_HEADERS)


def patch_raw_headers(visit: Personalised, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """:func:`patch_headers` for raw headers, as ASGI has them: bytes, names
    in lower case. Only the values of the headers it may change are decoded
    (latin-1); the other headers pass as they are."""
    if not visit.cookies:
        if not visit.accessed:
            return headers
        if _raw_needs_only_appends(headers):
            return [*headers, *_READ_ONLY_RAW]
    return _patched(visit, headers, _RAW_HEADERS)


def fail_safe_headers(headers: list[tuple[T, T]]) -> list[tuple[T, T]]:
    """*headers* (text or raw) kept out of shared caches, for a response whose headers
    could not be patched: ``Cache-Control: private, no-store``, the CDNs' headers dropped."""
    form: _HeaderForm[Any] = _RAW_HEADERS if headers and isinstance(headers[0][0], bytes) else _TEXT_HEADERS
    kind = type(form.set_cookie)
    kept = [line for line in headers if not (isinstance(line[0], kind) and _fail_safe_drops(form.decode(line[0])))]
    kept.append((form.name(CACHE_CONTROL), form.encode(FAIL_SAFE_CACHE_CONTROL)))
    return kept


class HeaderMapping(Protocol):
    """Response headers kept in a case-insensitive mapping (Django's ``response.headers``)."""

    def __iter__(self) -> Iterator[str]: ...

    def pop(self, name: str, default: None = None, /) -> object: ...

    def __setitem__(self, name: str, value: str, /) -> None: ...


def keep_out_of_shared_caches(headers: HeaderMapping) -> None:
    """What a response whose headers could not be patched gets, its headers being
    a case-insensitive mapping (Django's ``response.headers``): ``Cache-Control:
    private, no-store``, the CDNs' headers dropped (as :func:`fail_safe_headers`
    does to a header list).
    """
    for name in [name for name in headers if _fail_safe_drops(name)]:
        headers.pop(name, None)
    headers[CACHE_CONTROL] = FAIL_SAFE_CACHE_CONTROL


def _fail_safe_drops(name: str) -> bool:
    lowered = name.lower()
    return lowered == "cache-control" or _is_cdn_header(lowered)


def _only_appends_check(
    last: frozenset[object], watched: frozenset[T], suffix: T
) -> Callable[[list[tuple[T, T]]], bool]:
    """Does a page that read the id, and writes no cookie, need only ``Cache-Control:
    private`` and ``Vary: Cookie`` appended? Yes when it has no caching header to merge
    with (the usual page: what the general rules would answer too, in one pass over the
    names). Every caching header's name ends with "l" ("-control") or "y" ("vary"):
    only those names are lower-cased. One check per form (text, raw), each with its
    own constants: every attribute looked up here is paid on every page that reads the id.
    """

    def needs_only_appends(headers: list[tuple[T, T]]) -> bool:
        for name, _ in headers:
            if name[-1] in last:
                lowered = name.lower()
                if lowered in watched or lowered[-_TARGETED_LENGTH:] == suffix:
                    return False
        return True

    return needs_only_appends


def _patched(visit: Personalised, headers: list[tuple[T, T]], form: _HeaderForm[T]) -> list[tuple[T, T]]:
    # Runs on every response of a page that read the id and has caching headers
    # of its own: only names of a watched length are lower-cased (len() is a
    # fifth of lower()).
    found: dict[str, tuple[str, list[T]]] = {}
    set_by_app: list[str] = []
    for name, value in headers:
        n = len(name)
        if n in _WATCHED_LENGTHS or n > _TARGETED_LENGTH:
            spelt = form.decode(name)
            lowered = spelt.lower()
            if lowered == "set-cookie":
                set_by_app.append(set_cookie_name(form.decode(value)))
            elif is_caching_header(lowered):
                found.setdefault(lowered, (spelt, []))[1].append(value)
    changes = cache_headers(visit, {spelt: form.joined(values) for spelt, values in found.values()})
    replaced = {name.lower() for name in changes if name.lower() in found}
    out = [(k, v) for k, v in headers if not _among(k, replaced, form)] if replaced else list(headers)
    out.extend((form.name(name), form.encode(value)) for name, value in changes.items())
    for cookie in cookies_to_set(visit, set_by_app):
        out.append((form.set_cookie, form.encode(render_set_cookie(cookie))))
    return out


def _among(name: T, lowered_names: set[str], form: _HeaderForm[T]) -> bool:
    n = len(name)
    return (n in _WATCHED_LENGTHS or n > _TARGETED_LENGTH) and form.decode(name).lower() in lowered_names


class _HeaderForm(Generic[T]):
    """How response headers are spelt in one kind of framework: ``str`` (WSGI) or raw ``bytes`` (ASGI)."""

    __slots__ = ("set_cookie", "encode", "decode", "raw")

    def __init__(self, set_cookie: T, encode: Callable[[str], T], decode: Callable[[T], str]) -> None:
        self.set_cookie: T = set_cookie
        self.encode: Callable[[str], T] = encode
        self.decode: Callable[[T], str] = decode
        #: Raw headers (ASGI) have lower-case names.
        self.raw = isinstance(set_cookie, bytes)

    def name(self, name: str) -> T:
        """A header name in this form's spelling (lower case for raw headers)."""
        return self.encode(name.lower() if self.raw else name)

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
#: Read by CDNs instead of Cache-Control: RFC 9213's CDN-Cache-Control (and any
#: ``*-CDN-Cache-Control``, the field it lets a CDN target at itself: Cloudflare-,
#: Vercel-, Netlify-...), Surrogate-Control (Fastly, Akamai), Akamai-Cache-Control
#: and Akamai's Edge-Control. Most CDNs ignore ``Vary: Cookie``.
CDN_HEADERS = ("CDN-Cache-Control", "Surrogate-Control", "Akamai-Cache-Control", "Edge-Control")
_CDN_NAMES = frozenset(name.lower() for name in CDN_HEADERS)
_TARGETED_SUFFIX = "-cdn-cache-control"
_TARGETED_SUFFIX_RAW = _TARGETED_SUFFIX.encode("latin-1")
#: A targeted field's name is longer than its suffix.
_TARGETED_LENGTH = len(_TARGETED_SUFFIX)
_CACHE_CONTROL_AND_VARY = frozenset(("cache-control", "vary"))
#: The names the patch reads besides the targeted fields (the caching headers and
#: Set-Cookie), lower case, as text and as raw bytes; and their lengths, so that only
#: names of those lengths (or longer than a targeted suffix) are lower-cased.
_WATCHED = _CACHE_CONTROL_AND_VARY | _CDN_NAMES
_WATCHED_RAW = frozenset(name.encode("latin-1") for name in _WATCHED)
_WATCHED_LENGTHS = frozenset(len(name) for name in (*_WATCHED, "set-cookie"))
#: What a response gets when patching it failed (:func:`patch_headers`); its
#: CDNs' headers are dropped.
FAIL_SAFE_CACHE_CONTROL = "private, no-store"
#: What a page that read the id gets when it has no caching header of its own.
_READ_ONLY_TEXT = ((CACHE_CONTROL, "private"), (VARY, "Cookie"))
_READ_ONLY_RAW = ((b"cache-control", b"private"), (b"vary", b"Cookie"))
_text_needs_only_appends = _only_appends_check(frozenset("lLyY"), _WATCHED, _TARGETED_SUFFIX)
_raw_needs_only_appends = _only_appends_check(frozenset(b"lLyY"), _WATCHED_RAW, _TARGETED_SUFFIX_RAW)
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
