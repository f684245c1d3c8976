"""An ASGI shop for uvicorn that records every long event-loop step.

asyncio's own slow-callback log does the measuring (debug mode, switched on at
start-up, with ``slow_callback_duration`` = :data:`SLOW`). ``/stalls`` answers the steps
recorded since it was last asked, and forgets them; ``/`` is a page, so a first
visit mints. Configured by ``STALL_API_URL`` and ``STALL_WEBSITE_UUID``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from hr_middleware._core.settings import Settings
from hr_middleware.asgi import TrackingUserMiddleware

#: The longest an event-loop step may take. The aim is 5 ms, but debug mode
#: itself slows every step (1-2 ms for a steady-state mint on a busy 2-core
#: machine, 4-6 ms for the largest step of the first one): 15 ms still catches
#: imports on the loop (27-90 ms) without failing on noise.
SLOW = 0.015

stalls: list[str] = []


class _Recorder(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing"):  # "Executing <Task ...> took 0.081 seconds"
            stalls.append(message)


async def shop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                loop = asyncio.get_running_loop()
                loop.slow_callback_duration = SLOW
                loop.set_debug(True)
                logging.getLogger("asyncio").addHandler(_Recorder())
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["path"] == "/stalls":
        body = json.dumps(stalls).encode()
        stalls.clear()
    else:
        body = b"<html><body>shop</body></html>"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": body})


app = TrackingUserMiddleware(
    shop, settings=Settings(website_uuid=os.environ["STALL_WEBSITE_UUID"], api_url=os.environ["STALL_API_URL"])
)
