"""The driver endpoints as sync views (this module) or async views (``async_urls``)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from . import views

#: route -> view name; the async twin of ``name`` is ``"a" + name``.
ENDPOINTS = {
    "": "index",
    "asset.png": "index",
    "headers": "with_headers",
    "silent": "silent",
    "silent-headers": "silent_with_headers",
    "stream": "stream",
    "grant": "grant",
    "revoke": "revoke",
    "login": "login",
    "website": "website",
}


def endpoints(prefix: str = "") -> list[Any]:
    """The driver endpoints, served by the views named *prefix* + name."""
    return [path(route, getattr(views, prefix + name)) for route, name in ENDPOINTS.items()]


urlpatterns = [
    *endpoints(),
    path("page", views.page),
    path("cookieless", views.cookieless),
    path("async/", views.aindex),
    path("cached", views.cached),
    path("cached-silent", views.cached_silent),
    path("visitor", views.visitor),
    path("cached-visitor", views.cached_visitor),
    path("shop-visitor", views.shop_visitor),
    path("stamped", views.stamped),
    path("cached-shop-visitor", views.cached_shop_visitor),
    path("error", views.error),
    path("aerror", views.aerror),
]
