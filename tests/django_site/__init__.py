"""The Django site the tests drive: settings configured once per process, sync and async views."""

from __future__ import annotations

import django
from django.conf import settings

from hr_middleware.django._checks import MIDDLEWARE_PATH
from hr_middleware.testing import DEFAULT_WEBSITE_UUID

#: Rendered by ``/page`` to show the id reaches templates.
PAGE_TEMPLATE = "<p>{{ request.tracking_user_id }}</p>"


def configure() -> None:
    """``settings.configure(...)`` and ``django.setup()``, once per process."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="hr-middleware-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="tests.django_site.urls",
        MIDDLEWARE=[MIDDLEWARE_PATH],
        INSTALLED_APPS=["hr_middleware"],
        # Tests point this at the fake Hello Retail with override_settings; port 9
        # (discard) makes a forgotten override fail fast instead of reaching out.
        HELLO_RETAIL={"WEBSITE_UUID": DEFAULT_WEBSITE_UUID, "API_URL": "http://127.0.0.1:9"},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "context_processors": ["django.template.context_processors.request"],
                    "loaders": [("django.template.loaders.locmem.Loader", {"page.html": PAGE_TEMPLATE})],
                },
            }
        ],
        USE_TZ=True,
    )
    django.setup()
