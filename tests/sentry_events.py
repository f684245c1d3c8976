"""What Sentry would send about the client's calls that carry the API key: ``python -m tests.sentry_events``.

A process of its own, because ``sentry_sdk.init`` patches the HTTP libraries,
logging, threads and every installed framework for the rest of the process.
Sentry is initialised with its default options, except a transport that
keeps the events in a list. Both clients, with the key read from standard
input (Sentry reports ``sys.argv``), call the fake Hello
Retail in each way it can fail, with the calls that send the key; each
error is captured as a framework integration captures an unhandled one, and
a message after each successful call carries the breadcrumbs the calls left.
Prints ``[{"case": ..., "event": ...}, ...]`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from hr_middleware.client import AsyncHelloRetailClient, HelloRetailClient
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode

#: How each failure is made: a mode of the fake, or a port nobody listens on.
FAILURES = {
    "refused": None,
    "timeout": Mode.HANG,
    "http-500": Mode.SERVER_ERROR,
    "not-json": Mode.NOT_JSON,
    "ok": Mode.OK,
}

#: The calls that send the key: each names the visitor by email or customerId.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("recommendations", ([{"key": "k"}],), {"customerId": "42"}),
    ("recommendations", ([{"key": "k"}],), {"email": "a@shop.test"}),
    ("track_pageview", ("https://shop.test/",), {"customerId": "42"}),
    ("track_cart", (), {"customerId": "42", "tracking_user_id": None}),
]

events: list[dict[str, Any]] = []


class ListTransport(Transport):
    """Keeps every event instead of sending it."""

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            event = item.get_event() or item.get_transaction_event()
            if event is not None:
                events.append(event)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(key: str) -> list[dict[str, Any]]:
    captured = []
    with FakeHelloRetail() as fake:
        for kind in ("sync", "async"):
            for failure, mode in FAILURES.items():
                api_url = fake.url if mode else f"http://127.0.0.1:{unused_port()}"
                options = {"website_uuid": DEFAULT_WEBSITE_UUID, "api_url": api_url, "timeout": 0.3, "api_key": key}
                for method, args, kwargs in CALLS:
                    fake.api_mode = mode or Mode.OK
                    case = f"{kind} {failure} {method} {sorted(kwargs)}"
                    before = len(events)
                    # The key stays in this frame, which is not on any captured traceback.
                    if kind == "sync":
                        with HelloRetailClient(**options) as client:
                            call_sync(client, method, args, kwargs)
                    else:
                        asyncio.run(call_async(AsyncHelloRetailClient(**options), method, args, kwargs))
                    fake.api_mode = Mode.OK  # frees a hanging handler
                    captured += [{"case": case, "event": event} for event in events[before:]]
    return captured


def call_sync(client: HelloRetailClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        getattr(client, method)(*args, **kwargs)
    except Exception:
        sentry_sdk.capture_exception()
    else:
        sentry_sdk.capture_message("after a call")


async def call_async(
    client: AsyncHelloRetailClient, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    async with client:
        try:
            await getattr(client, method)(*args, **kwargs)
        except Exception:
            sentry_sdk.capture_exception()
        else:
            sentry_sdk.capture_message("after a call")


if __name__ == "__main__":
    sentry_sdk.init(dsn="https://public@sentry.invalid/1", transport=ListTransport)
    result = run(sys.stdin.readline().strip())
    sentry_sdk.flush()
    json.dump(result, sys.stdout)
