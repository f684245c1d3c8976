"""Apps for real servers in the load and throughput runs, configured by environment.

``HR_BENCH_BARE=1`` serves the same app without the middleware;
``HR_BENCH_BARE=vary`` too, its pages sending the ``Vary: Cookie`` header that
the middleware adds to a page that reads the id. Otherwise the
middleware talks to ``HELLO_RETAIL_API_URL`` (the fake server of the run).

    gunicorn bench.apps:wsgi_app        uvicorn bench.apps:asgi_app
"""

from __future__ import annotations

import os
from typing import Any

from hr_middleware import get_tracking_user_id

BARE = os.environ.get("HR_BENCH_BARE") in ("1", "vary")
#: The page headers; the bare app with "vary" sends what ours adds.
_VARY = os.environ.get("HR_BENCH_BARE") == "vary"


def _options() -> dict[str, Any]:
    return {
        "website_uuid": os.environ.get("HELLO_RETAIL_WEBSITE_UUID", "00000000-0000-4000-8000-000000000001"),
        "api_url": os.environ.get("HELLO_RETAIL_API_URL", "http://127.0.0.1:9"),
        "timeout": float(os.environ.get("HELLO_RETAIL_TIMEOUT", "1.0")),
    }


def _page(tracking_user_id: str | None) -> bytes:
    return f"<!doctype html><p>Hello, visitor {tracking_user_id or 'without id'}</p>".encode()


def _bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    body = _page(get_tracking_user_id())
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
    start_response("200 OK", [*headers, ("Vary", "Cookie")] if _VARY else headers)
    return [body]


async def _bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/health":
        body, headers = b"ok", [(b"content-type", b"text/plain")]
    else:
        body, headers = _page(get_tracking_user_id()), [(b"content-type", b"text/html")]
        if _VARY:
            headers.append((b"vary", b"Cookie"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _build_wsgi() -> Any:
    from hr_middleware.wsgi import TrackingUserMiddleware

    # Built in the bare variant too, unused: both processes then load the same
    # modules, and compare per-request cost, not heap size (a bigger heap makes
    # every garbage collection of the server dearer).
    middleware = TrackingUserMiddleware(_bare_wsgi, **_options())
    return _bare_wsgi if BARE else middleware


def _build_asgi() -> Any:
    from hr_middleware.asgi import TrackingUserMiddleware

    middleware = TrackingUserMiddleware(_bare_asgi, **_options())
    return _bare_asgi if BARE else middleware


wsgi_app = _build_wsgi()


def __getattr__(name: str) -> Any:
    # Built on first use, so that a WSGI-only install can import this module.
    if name == "asgi_app":
        app = _build_asgi()
        globals()["asgi_app"] = app
        return app
    raise AttributeError(name)
