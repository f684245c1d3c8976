"""ASGI entry point: ``uvicorn --app-dir examples/django_app shop.asgi:application`` (an async stack)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_asgi_application()
