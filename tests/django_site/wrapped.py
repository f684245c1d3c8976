"""A Django project wrapped only by ``hr_middleware.wsgi`` or ``hr_middleware.asgi``, in a process of its own.

No Django middleware of ours is listed or loaded: the id reaches the views
through ``get_tracking_user_id()`` alone, as the README allows for "any WSGI
or ASGI app". Run as::

    python -m tests.django_site.wrapped {wsgi|asgi} {cache_page|site_cache} API_URL WEBSITE_UUID RETURNING NEW

It sends RETURNING visitors with distinct id cookies and NEW first visits to
the page that shows the visitor's id (``/cached-visitor`` under
``@cache_page``, or ``/visitor`` under the site-wide cache middleware), then
one request to a page of the same cache that does not read the id, and
prints, as JSON, what each visitor's page showed and that page's
``Cache-Control``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import django
from django.conf import settings

from tests.drivers import PAGE
from tests.ids import SDK, SERVER, visitors

CACHE_MIDDLEWARE = ["django.middleware.cache.UpdateCacheMiddleware", "django.middleware.cache.FetchFromCacheMiddleware"]
#: set-up -> (the page that shows the id, a page of the same cache that does not read it)
PATHS = {"cache_page": ("/cached-visitor", "/cached-silent"), "site_cache": ("/visitor", "/silent")}


def configure(setup: str) -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="hr-middleware-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="tests.django_site.urls",
        MIDDLEWARE=CACHE_MIDDLEWARE if setup == "site_cache" else [],
        CACHE_MIDDLEWARE_SECONDS=60,
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        USE_TZ=True,
    )
    django.setup()


def requests_to_send(setup: str, returning: int, new: int) -> list[tuple[str, str | None]]:
    """(path, the visitor's id cookie or None) for each request, in order."""
    page, silent = PATHS[setup]
    sent: list[tuple[str, str | None]] = [(page, visitor) for visitor in visitors(returning)]
    return [*sent, *[(page, None)] * new, (silent, visitors(1)[0])]


def headers_for(visitor: str | None) -> dict[str, str]:
    return {**PAGE, "Cookie": f"{SERVER}={visitor}; {SDK}={visitor}"} if visitor else dict(PAGE)


def through_wsgi(to_send: list[tuple[str, str | None]], api_url: str, website_uuid: str) -> list[dict[str, Any]]:
    from django.core.wsgi import get_wsgi_application
    from werkzeug.test import Client

    from hr_middleware.wsgi import TrackingUserMiddleware

    app = TrackingUserMiddleware(get_wsgi_application(), website_uuid=website_uuid, api_url=api_url)
    client = Client(app, use_cookies=False)
    answers = []
    for path, visitor in to_send:
        response = client.get(path, headers=headers_for(visitor), buffered=True)
        body = response.get_data(as_text=True)
        answers.append({"body": body, "cache_control": response.headers.get("Cache-Control")})
    app.close()
    return answers


async def through_asgi(to_send: list[tuple[str, str | None]], api_url: str, website_uuid: str) -> list[dict[str, Any]]:
    import httpx
    from django.core.asgi import get_asgi_application

    from hr_middleware.asgi import TrackingUserMiddleware

    app = TrackingUserMiddleware(get_asgi_application(), website_uuid=website_uuid, api_url=api_url)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    answers = []
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        for path, visitor in to_send:
            response = await client.get(path, headers=headers_for(visitor))
            client.cookies.clear()
            answers.append({"body": response.text, "cache_control": response.headers.get("cache-control")})
    await app.aclose()
    return answers


def main(adapter: str, setup: str, api_url: str, website_uuid: str, returning: str, new: str) -> None:
    configure(setup)
    to_send = requests_to_send(setup, int(returning), int(new))
    if adapter == "wsgi":
        answers = through_wsgi(to_send, api_url, website_uuid)
    else:
        answers = asyncio.run(through_asgi(to_send, api_url, website_uuid))
    print(json.dumps([{"sent": visitor, **answer} for (_, visitor), answer in zip(to_send, answers, strict=True)]))


if __name__ == "__main__":
    main(*sys.argv[1:])
