"""Settings of the example shop. The lines that matter for hr-middleware are marked.

``HELLO_RETAIL_WEBSITE_UUID`` (and optionally ``HELLO_RETAIL_API_URL``) in the
environment point it at Hello Retail (``HELLO_RETAIL_SECOND_WEBSITE_UUID``: the
second region's website, on localhost); without them an embedded fake Hello
Retail on 127.0.0.1 hands out ids for both regions, so the demo runs offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# The repository root, for the page code the demos share (examples/shop_page.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from examples.shop_page import DEMO_WEBSITE_UUIDS, MIDDLEWARE_OPTIONS, website_options  # after the path above
from hr_middleware.testing import FakeHelloRetail

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-a-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "hr_middleware",  # hr-middleware: optional, makes `manage.py check` check HELLO_RETAIL
    "shop",
]

MIDDLEWARE = [
    # The demo's own outermost layer: writes this response's headers into the page.
    "examples.response_headers.ShowHeadersDjango",
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
        # The request context processor makes {{ request.tracking_user_id }} work in templates.
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
USE_TZ = True

# hr-middleware: the options of hr_middleware.Settings, upper case. The demo's
# consent banner (a cookie) and its other shared options come from shop_page.
HELLO_RETAIL: dict[str, Any] = {"TIMEOUT": 0.5, **{name.upper(): value for name, value in MIDDLEWARE_OPTIONS.items()}}
#: The embedded fake Hello Retail, whose calls the page counts (None: the real one).
DEMO_FAKE_HELLO_RETAIL: FakeHelloRetail | None = None
if os.environ.get("HELLO_RETAIL_WEBSITE_UUID"):
    HELLO_RETAIL["WEBSITE_UUID"] = os.environ["HELLO_RETAIL_WEBSITE_UUID"]
    if os.environ.get("HELLO_RETAIL_API_URL"):
        HELLO_RETAIL["API_URL"] = os.environ["HELLO_RETAIL_API_URL"]
    if os.environ.get("HELLO_RETAIL_SCRIPT_URL"):
        HELLO_RETAIL["SCRIPT_URL"] = os.environ["HELLO_RETAIL_SCRIPT_URL"]
    second_website_uuid = os.environ.get("HELLO_RETAIL_SECOND_WEBSITE_UUID")
    websites = website_options(os.environ["HELLO_RETAIL_WEBSITE_UUID"], second_website_uuid)
else:
    # A daemon thread: it ends with the process (and with each autoreload).
    DEMO_FAKE_HELLO_RETAIL = FakeHelloRetail(website_uuids=DEMO_WEBSITE_UUIDS).start()
    HELLO_RETAIL.update(
        WEBSITE_UUID=DEMO_FAKE_HELLO_RETAIL.website_uuid,
        API_URL=DEMO_FAKE_HELLO_RETAIL.url,
        SCRIPT_URL=DEMO_FAKE_HELLO_RETAIL.script_url,
    )
    websites = website_options(*DEMO_WEBSITE_UUIDS)
# The second region (localhost) gets its own website: hr-middleware's HELLO_RETAIL["WEBSITES"].
HELLO_RETAIL.update({name.upper(): value for name, value in websites.items()})

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"hr_middleware": {"handlers": ["console"], "level": "INFO"}},
}
