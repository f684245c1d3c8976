"""Settings of the example shop. The lines that matter for hr-middleware are marked.

``HELLO_RETAIL_WEBSITE_UUID`` (and optionally ``HELLO_RETAIL_API_URL``) in the
environment point it at Hello Retail; without them an embedded fake Hello
Retail on 127.0.0.1 hands out ids, so the demo runs offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# The repository root, for the page code the demos share (examples/shop_page.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-a-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "hr_middleware",  # hr-middleware: optional, makes `manage.py check` check HELLO_RETAIL
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hr_middleware.django.TrackingUserMiddleware",  # hr-middleware
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        # The request context processor makes {{ request.tracking_user_id }} work.
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
USE_TZ = True

# hr-middleware: the options of hr_middleware.Settings, upper case.
HELLO_RETAIL: dict[str, Any] = {"TIMEOUT": 0.5}
if os.environ.get("HELLO_RETAIL_WEBSITE_UUID"):
    HELLO_RETAIL["WEBSITE_UUID"] = os.environ["HELLO_RETAIL_WEBSITE_UUID"]
    if os.environ.get("HELLO_RETAIL_API_URL"):
        HELLO_RETAIL["API_URL"] = os.environ["HELLO_RETAIL_API_URL"]
else:
    from hr_middleware.testing import FakeHelloRetail

    # A daemon thread: it ends with the process (and with each autoreload).
    _fake = FakeHelloRetail().start()
    HELLO_RETAIL.update(WEBSITE_UUID=_fake.website_uuid, API_URL=_fake.url)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"hr_middleware": {"handlers": ["console"], "level": "INFO"}},
}
