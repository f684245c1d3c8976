"""WSGI entry point: ``gunicorn --chdir examples/django_app shop.wsgi`` (a sync stack)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
application = get_wsgi_application()
