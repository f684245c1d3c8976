"""Sync views at the driver endpoints; the async ones under ``/async/``."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("asset.png", views.index),
    path("headers", views.with_headers),
    path("silent", views.silent),
    path("page", views.page),
    path("stream", views.stream),
    path("async/", views.aindex),
]
