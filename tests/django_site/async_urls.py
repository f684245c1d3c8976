"""Async views at the driver endpoints (the ROOT_URLCONF of the async driver), a sync one under ``/sync/``."""

from __future__ import annotations

from django.urls import path

from . import views
from .urls import endpoints

urlpatterns = [*endpoints("a"), path("sync/", views.index), path("sync-grant/", views.grant)]
