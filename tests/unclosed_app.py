"""Two WSGI apps in one process, for ``uvicorn --interface wsgi``: a server that never calls ``close()``.

uvicorn's own WSGI interface runs every request on a thread of one pool and
iterates the response there, but never calls the response's ``close()``.

``/streamed``
    A shop page under the middleware, its body produced while the server
    iterates it; each line says the id the page saw and the worker thread.
``/other`` (and ``/health``)
    Another app of the same process, without the middleware: it answers the
    id it sees (``get_tracking_user_id()``) and the worker thread it ran on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hr_middleware import get_tracking_user_id
from hr_middleware.testing import DEFAULT_WEBSITE_UUID
from hr_middleware.wsgi import TrackingUserMiddleware


def _seen() -> dict[str, Any]:
    return {"id": get_tracking_user_id(), "thread": threading.get_ident()}


def shop(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/x-ndjson")])
    for _ in range(3):
        yield json.dumps(_seen()).encode() + b"\n"


def other(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(_seen()).encode()]


# A returning visitor's page never mints: port 9 (discard) makes a stray mint fail fast.
_shop = TrackingUserMiddleware(shop, website_uuid=DEFAULT_WEBSITE_UUID, api_url="http://127.0.0.1:9")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/streamed":
        return _shop(environ, start_response)
    return other(environ, start_response)
