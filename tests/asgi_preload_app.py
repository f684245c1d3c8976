"""An ASGI shop for ``gunicorn -k uvicorn.workers.UvicornWorker --preload``: it renders one page at import.

The page at import is a first visit, with ``prefetch=8``: it mints and starts
the refill task on ``asyncio.run``'s loop, whose teardown then cancels the
refill in the middle of its mints. The master must finish importing, and its
workers serve.

``/`` answers ``{"pid", "id"}``; ``/health`` answers at once. Configured by
``PRELOAD_API_URL``, ``PRELOAD_WEBSITE_UUID`` and ``PRELOAD_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx

from hr_middleware import get_tracking_user_id
from hr_middleware._core.settings import Settings
from hr_middleware.asgi import TrackingUserMiddleware

settings = Settings(
    website_uuid=os.environ["PRELOAD_WEBSITE_UUID"],
    api_url=os.environ["PRELOAD_API_URL"],
    timeout=float(os.environ["PRELOAD_TIMEOUT"]),
    prefetch=8,
)

#: What a browser sends when the visitor opens a page (a first visit mints).
PAGE = {
    "User-Agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
    ),
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
}


async def shop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start or stop
        return
    body = json.dumps({"pid": os.getpid(), "id": get_tracking_user_id()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


application = TrackingUserMiddleware(shop, settings=settings)


async def warm_up() -> None:
    """One first visit through the app, as a warm-up or a start-up health check would (no lifespan)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://shop") as client:
        answer = (await client.get("/", headers=PAGE)).json()
    if answer["id"] is None:  # the master must not fork a broken app
        sys.exit(f"warm-up page got no id: {answer}")


asyncio.run(warm_up())
print(json.dumps({"warmed_up": os.getpid()}), file=sys.stderr, flush=True)
