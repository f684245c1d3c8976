"""A shop for ``uwsgi --master`` without ``--lazy-apps``: it renders one page at import, before uWSGI forks.

The page at import (a warm-up, or a health check run by the app's own
start-up code) is a first visit, so the master mints, with ``prefetch=8``.
uWSGI then forks its workers from C.

``UWSGI_APP_FRAMEWORK`` is ``flask`` or ``django``. Configured by
``PRELOAD_API_URL`` (the fake Hello Retail), ``PRELOAD_WEBSITE_UUID``,
``PRELOAD_TIMEOUT`` and ``PRELOAD_BARRIER_URL``.

``/meet`` is a first visit that answers ``{"pid", "id", "met", "refilling"}``
once as many visits wait at the barrier as the test asked for: a worker
serves one request at a time, so two visits that met come from two workers;
``refilling`` says whether the worker's prefetch refill thread runs.
``/health`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any
from wsgiref.util import setup_testing_defaults

import requests

from hr_middleware import get_tracking_user_id

FRAMEWORK = os.environ.get("UWSGI_APP_FRAMEWORK", "flask")
API_URL = os.environ["PRELOAD_API_URL"]
WEBSITE_UUID = os.environ["PRELOAD_WEBSITE_UUID"]
TIMEOUT = float(os.environ["PRELOAD_TIMEOUT"])
BARRIER_URL = os.environ["PRELOAD_BARRIER_URL"]
PREFETCH = int(os.environ.get("PRELOAD_PREFETCH", "8"))

#: What a browser sends when the visitor opens a page (a first visit mints).
PAGE = {
    "User-Agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
    ),
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
}


def meet() -> dict[str, Any]:
    """Wait at the barrier (another worker's visit lets both through); this worker's pid and the visitor's id."""
    met = requests.post(BARRIER_URL, data=b"{}", timeout=30).ok
    refilling = any(thread.name == "hr-middleware-prefetch" for thread in threading.enumerate())
    return {"pid": os.getpid(), "id": get_tracking_user_id(), "met": met, "refilling": refilling}


def warm_up(app: Any) -> None:
    """One first visit to the home page through the WSGI *app* the server will run."""
    environ: dict[str, Any] = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in PAGE.items()}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    if statuses != ["200 OK"]:  # the master must not fork a broken app
        sys.exit(f"warm-up page answered {statuses}")


if FRAMEWORK == "flask":
    from flask import Flask

    from hr_middleware.flask import HelloRetail

    app = Flask(__name__)
    HelloRetail(app, website_uuid=WEBSITE_UUID, api_url=API_URL, timeout=TIMEOUT, prefetch=PREFETCH)

    @app.get("/meet")
    def meet_view() -> dict[str, Any]:
        return meet()

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/")
    def home() -> str:
        return f"<p>{get_tracking_user_id()}</p>"

    application: Any = app

elif FRAMEWORK == "django":
    import django
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.urls import path

    from hr_middleware.django._checks import MIDDLEWARE_PATH

    def django_meet(request: HttpRequest) -> JsonResponse:
        return JsonResponse(meet())

    def django_health(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    def django_home(request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"<p>{get_tracking_user_id()}</p>")

    urlpatterns = [path("meet", django_meet), path("health", django_health), path("", django_home)]
    settings.configure(
        DEBUG=False,
        SECRET_KEY="hr-middleware-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[MIDDLEWARE_PATH],
        INSTALLED_APPS=["hr_middleware"],
        HELLO_RETAIL={"WEBSITE_UUID": WEBSITE_UUID, "API_URL": API_URL, "TIMEOUT": TIMEOUT, "PREFETCH": PREFETCH},
    )
    django.setup()
    application = get_wsgi_application()

else:
    raise SystemExit(f"UWSGI_APP_FRAMEWORK={FRAMEWORK!r}: flask or django")

warm_up(application)
print(json.dumps({"warmed_up": os.getpid()}), file=sys.stderr, flush=True)
