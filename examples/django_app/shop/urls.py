from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("consent", views.consent),
    path("images/<str:name>", views.image),
    path("login", views.login),
    path("logout", views.logout),
    path("api/tracking-user", views.tracking_user),
]
