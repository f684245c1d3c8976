"""Async views at the driver endpoints (the ROOT_URLCONF of the async driver), a sync one under ``/sync/``."""

from __future__ import annotations

from django.urls import path

from . import views
from .urls import endpoints

urlpatterns = [
    *endpoints("a"),
    path("sync/", views.index),
    path("visitor", views.avisitor),
    path("sync-grant/", views.grant),
    # cache_page wraps sync views on every Django we support (async ones only since 5.x).
    path("cached", views.cached),
    path("cached-silent", views.cached_silent),
    path("shop-visitor", views.shop_visitor),
    path("stamped", views.stamped),
    path("cached-shop-visitor", views.cached_shop_visitor),
]
