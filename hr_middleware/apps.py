"""Optional Django app: ``INSTALLED_APPS += ["hr_middleware"]`` makes ``manage.py check`` check ``HELLO_RETAIL``.

The middleware works without it. Django imports the middleware only when it
builds a request handler, after ``manage.py check`` has run, so the checks of
:mod:`hr_middleware.django` are registered early only through this app.
"""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["HelloRetailConfig"]


class HelloRetailConfig(AppConfig):
    """The Django app ``"hr_middleware"`` in ``INSTALLED_APPS``: it registers the system checks."""

    name = "hr_middleware"
    label = "hr_middleware"
    verbose_name = "Hello Retail tracking"

    def ready(self) -> None:
        from . import django  # noqa: F401 - registers the system checks
