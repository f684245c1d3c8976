"""A WSGI shop for ``gunicorn --preload``: it mints and calls Hello Retail at import, before the workers fork.

``/recommendations`` answers the visitor's id, the worker's pid and the products
Hello Retail recommended for that visitor. Configured by ``PRELOAD_API_URL``,
``PRELOAD_WEBSITE_UUID``, ``PRELOAD_TIMEOUT`` and ``PRELOAD_MASTER_VISITOR`` (whom
the master asks recommendations for).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from hr_middleware import get_tracking_user_id
from hr_middleware._core.settings import Settings
from hr_middleware._hello_retail.prefetch import PrefetchingMinter
from hr_middleware.client import HelloRetailClient
from hr_middleware.wsgi import TrackingUserMiddleware

settings = Settings(
    website_uuid=os.environ["PRELOAD_WEBSITE_UUID"],
    api_url=os.environ["PRELOAD_API_URL"],
    timeout=float(os.environ["PRELOAD_TIMEOUT"]),
    prefetch=3,
)
client = HelloRetailClient.from_settings(settings)


def shop(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body: dict[str, Any] = {"pid": os.getpid()}
    if environ["PATH_INFO"] == "/recommendations":
        body["id"] = get_tracking_user_id()
        answer = client.recommendations([{"key": "frontpage"}])
        body["products"] = answer["responses"][0]["products"]
    data = json.dumps(body).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


application = TrackingUserMiddleware(shop, settings=settings)

# What a master may do before it forks: mint (which starts the refill thread and
# fills the prefetch pool) and call the client (which keeps a connection alive).
minter = application._minter
assert isinstance(minter, PrefetchingMinter)
minter.mint()
while minter.pool.wants_more:
    tracking_user_id = minter.minter.mint()
    if tracking_user_id is None or not minter.pool.put(tracking_user_id):
        break
client.recommendations([{"key": "frontpage"}], tracking_user_id=os.environ["PRELOAD_MASTER_VISITOR"])
