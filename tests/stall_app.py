"""An ASGI shop for uvicorn that records every long event-loop step.

Each step of the loop (``asyncio.Handle._run``) is timed in CPU time of the loop's
thread (``time.thread_time``), not wall time: a busy machine preempts the loop
without making a step do more work, while an import or a CA bundle loaded on the
loop is work the step itself does. ``/stalls`` answers the steps longer than
:data:`SLOW` recorded since it was last asked, and forgets them; ``/`` is a page,
so a first visit mints. Configured by ``STALL_API_URL`` and ``STALL_WEBSITE_UUID``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from hr_middleware._core.settings import Settings
from hr_middleware.asgi import TrackingUserMiddleware

#: The most CPU time one event-loop step may take. A steady-state step of a mint costs well
#: under a millisecond; an import on the loop costs 27-90 ms and loading the CA bundle 20-90 ms,
#: so 15 ms catches them with room to spare.
SLOW = 0.015

stalls: list[str] = []


def _record_long_steps() -> None:
    """Time every step of the running loop in CPU time of its thread; record the long ones."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        start = time.thread_time()
        run(handle)
        spent = time.thread_time() - start
        if spent > SLOW:
            stalls.append(f"Executing {handle!r} took {spent:.3f} seconds of CPU")

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


async def shop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _record_long_steps()
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
