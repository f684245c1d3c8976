"""Django middleware: one stable Hello Retail trackingUserId per visitor, under WSGI and ASGI.

settings.py::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "hr_middleware.django.TrackingUserMiddleware",
        ...
    ]
    HELLO_RETAIL = {"WEBSITE_UUID": "...", "TIMEOUT": 0.5}

    INSTALLED_APPS = [..., "hr_middleware"]  # optional: `manage.py check` checks HELLO_RETAIL

``HELLO_RETAIL``'s keys are the options of :class:`~hr_middleware.Settings`
in upper case; ``MINT_WHEN`` and ``CONSENT`` may also be dotted paths. The id
is at ``request.tracking_user_id`` and :func:`hr_middleware.get_tracking_user_id`
in sync and async views alike. Under an async stack the mint is awaited
(httpx); under a sync stack it blocks the worker thread (requests), as any
other I/O of a sync view does.

The settings are read when Django builds its middleware chain (once per
handler: at server start, per test ``Client``), and again after
``override_settings`` changes ``HELLO_RETAIL``. A missing or invalid
``HELLO_RETAIL`` stops the start with ``ImproperlyConfigured``, saying what
the system checks (``hr_middleware.E001``...) say; one that becomes invalid
later (``override_settings``) is logged and the site is served without
tracking ids. The checks are registered when this module is imported, so
``manage.py check`` runs them when ``"hr_middleware"`` is in INSTALLED_APPS
(or the module is imported otherwise). See docs/django.md.
"""

from __future__ import annotations

from . import _checks  # noqa: F401 - registers the system checks
from ._config import read_settings
from ._middleware import TrackingUserMiddleware

__all__ = ["TrackingUserMiddleware", "read_settings"]
