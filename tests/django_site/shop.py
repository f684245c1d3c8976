"""A shop's own Django middleware that reads the visitor's id before the view runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest

import hr_middleware

#: Its dotted path, for ``MIDDLEWARE``.
SHOP_MIDDLEWARE = "tests.django_site.shop.ShopMiddleware"


class ShopMiddleware:
    """Reads the id for the shop's pages (``/shop-...``, ``/cached-shop-...``), say to fetch
    recommendations, and leaves it on the request for the view (``request.shop_visitor``).

    Listed after ours, it runs before a ``@cache_page`` view's cache lookup, and
    before ``FetchFromCacheMiddleware`` when listed before it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if "shop-" in request.path:
            request.shop_visitor = hr_middleware.get_tracking_user_id()  # type: ignore[attr-defined]
        return self.get_response(request)


#: Its dotted path, for ``MIDDLEWARE``.
STAMPING_MIDDLEWARE = "tests.django_site.shop.StampingMiddleware"
#: What ``/stamped`` answers, and :class:`StampingMiddleware` replaces with the visitor's id.
PLACEHOLDER = b"HR-VISITOR"


class StampingMiddleware(ShopMiddleware):
    """Puts the visitor's id into the page in the response phase (``PLACEHOLDER``, hole-punching
    style), reading ``request.tracking_user_id`` once ours has finished: listed before ours."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._astamp(request)
        return self._stamp(request, self.get_response(request))

    async def _astamp(self, request: HttpRequest) -> Any:
        return self._stamp(request, await self.get_response(request))

    @staticmethod
    def _stamp(request: HttpRequest, response: Any) -> Any:
        if PLACEHOLDER in getattr(response, "content", b""):
            visitor = request.tracking_user_id  # type: ignore[attr-defined]
            response.content = response.content.replace(PLACEHOLDER, str(visitor).encode())
        return response
