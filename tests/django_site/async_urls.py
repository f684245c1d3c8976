"""Async views at the driver endpoints (the ROOT_URLCONF of the async driver)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.aindex),
    path("asset.png", views.aindex),
    path("headers", views.awith_headers),
    path("silent", views.asilent),
    path("stream", views.astream),
    path("sync/", views.index),
]
