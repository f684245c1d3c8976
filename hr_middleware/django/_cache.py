"""Django's cache framework never stores a page that read the visitor's id.

``@cache_page`` and the site-wide cache middleware store a response under a
key that ignores the visitor's cookie unless the response says ``Vary:
Cookie`` by then; ours says so only later (it stands outside them, or outside
Django altogether: ``hr_middleware.wsgi`` / ``hr_middleware.asgi`` around a
Django project). A stored page that shows one visitor's id would be served
to every later visitor. Both ask ``request._cache_update_cache`` before
storing, and both set it when the request reaches them, so a flag set to
False once, when the id is read, can be undone by a lookup that comes after
(a shop's middleware that reads the id before a ``@cache_page`` view).

So the attribute becomes a property of ``HttpRequest`` (installed by
:func:`keep_read_pages_out_of_the_cache`, which every engine calls where
Django runs): False once the request's visit was read, whatever was set
since; otherwise exactly the plain attribute, AttributeError while unset
(Django asks ``hasattr`` first).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from hr_middleware._serving import current

__all__ = ["keep_read_pages_out_of_the_cache", "not_for_the_cache"]

#: What Django's cache middleware (``UpdateCacheMiddleware``, ``CacheMiddleware``) asks before it stores.
_FLAG = "_cache_update_cache"
#: In a request's ``__dict__``: the id was read through our Django middleware's visit.
_READ = "_hello_retail_read"


def not_for_the_cache(request: HttpRequest) -> None:
    """*request*'s page read the visitor's id: Django's cache must not store it, whatever it sets later."""
    request.__dict__[_READ] = True


class _CacheUpdateFlag:
    """``request._cache_update_cache``: False once the visitor's id was read, else as Django set it.

    Read means: through the request's own visit (our Django middleware marks
    the request, which outlives the visit for a cache middleware listed
    outside ours), or through the visit current where Django's cache asks (no
    Django middleware of ours: the WSGI or ASGI middleware around Django).
    """

    def __get__(self, request: HttpRequest | None, owner: type | None = None) -> Any:
        if request is None:
            return self
        state = request.__dict__
        if _READ in state:
            return False
        visit = current()
        if visit is not None and visit.accessed:
            return False
        try:
            return state[_FLAG]
        except KeyError:
            raise AttributeError(f"{type(request).__name__!r} object has no attribute {_FLAG!r}") from None

    def __set__(self, request: HttpRequest, value: Any) -> None:
        request.__dict__[_FLAG] = value

    def __delete__(self, request: HttpRequest) -> None:
        try:
            del request.__dict__[_FLAG]
        except KeyError:
            raise AttributeError(_FLAG) from None


def keep_read_pages_out_of_the_cache() -> None:
    """Install ``HttpRequest._cache_update_cache`` as :class:`_CacheUpdateFlag` (once; idempotent)."""
    if not isinstance(HttpRequest.__dict__.get(_FLAG), _CacheUpdateFlag):
        HttpRequest._cache_update_cache = _CacheUpdateFlag()  # type: ignore[attr-defined]
