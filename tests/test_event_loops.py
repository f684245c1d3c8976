"""The async transport over the lives of event loops: a client per loop, closed with its loop or its owner,
and a time budget that never swallows a cancel.

Async Django views under WSGI, asgiref's ``async_to_sync`` and scripts calling
``asyncio.run`` per job give every call a new event loop, while the
middleware's minter or the shop's ``AsyncHelloRetailClient`` lives as long as
the process. Every test here runs on asyncio's loop and on uvloop's.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop
from asgiref.sync import async_to_sync

from hr_middleware import is_valid_id
from hr_middleware._hello_retail.errors import RequestTimeoutError
from hr_middleware._hello_retail.mint import AsyncMinter
from hr_middleware._hello_retail.transport import AsyncTransport
from hr_middleware._serving import Visit, from_a_worker_thread, refuse_on_an_event_loop
from hr_middleware.asgi import TrackingUserMiddleware
from hr_middleware.client import AsyncHelloRetailClient
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE
from .ids import A
from .loops import LOOPS, run_on

#: How a new loop is made and ended for each call.
KINDS = ["asyncio.run", "uvloop.run", "async_to_sync", "closed-without-shutdown"]

#: Calls per test: each one would leave a loop and two descriptors (ours and the fake's) behind.
RUNS = 100


def run_kind(kind: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """``main()`` on a new loop, made and ended as *kind* does it."""
    if kind == "asyncio.run":
        return asyncio.run(main())
    if kind == "uvloop.run":
        return uvloop.run(main())
    if kind == "async_to_sync":  # what Django does for an async view under WSGI
        return async_to_sync(main)()
    assert kind == "closed-without-shutdown", kind
    # A loop closed without loop.shutdown_asyncgens(): nothing tells the transport it ended.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle(fake: FakeHelloRetail, timeout: float = 5.0) -> set[tuple[str, int]]:
    """Wait until the fake saw every open connection closed (up to *timeout* in all); return those still open."""
    deadline = time.monotonic() + timeout
    still_open = set()
    for peer in fake.open_peers:
        if not fake.wait_disconnected(peer, max(0.0, deadline - time.monotonic())):
            still_open.add(peer)
    return still_open


@pytest.mark.loopback  # in memory no client, connection or descriptor is made: nothing could be left behind
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("caller", ["client", "minter"])
def test_a_loop_per_call_leaves_no_loop_connection_or_descriptor_behind(
    fake_hello_retail: FakeHelloRetail, kind: str, caller: str
) -> None:
    settings = fake_hello_retail.settings(timeout=5.0)
    call: Callable[[], Awaitable[Any]]
    if caller == "client":  # one module-level client, as docs/client.md recommends
        client = AsyncHelloRetailClient.from_settings(settings)
        call = lambda: client.search("k", "shoes", tracking_user_id=A)  # noqa: E731
    else:  # the async middleware's minter
        minter = AsyncMinter(settings)
        call = minter.amint
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one() -> Any:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await call()

    with warnings.catch_warnings():
        # A loop closed without shutdown_asyncgens() cannot close its client:
        # the garbage collector closes the sockets of those, with a warning each.
        warnings.simplefilter("ignore", ResourceWarning)
        run_kind(kind, one)  # the first call imports, starts threads and the fake's handlers
        gc.collect()
        settle(fake_hello_retail)
        before = open_descriptors()

        answers = [run_kind(kind, one) for _ in range(RUNS)]
        gc.collect()
        still_open = settle(fake_hello_retail)
        after = open_descriptors()
        alive = sum(ref() is not None for ref in loops)

    if caller == "minter":
        assert all(is_valid_id(answer) for answer in answers)
    else:
        assert all(answer["success"] is True for answer in answers)
    # The last loop closed without shutdown_asyncgens() is only noticed when
    # the next loop comes: it may still hold its loop and connection.
    left = 1 if kind == "closed-without-shutdown" else 0
    assert alive <= left, f"{alive} of {RUNS + 1} loops still alive"
    assert len(still_open) <= left, f"{len(still_open)} connections still open"
    # Two descriptors a connection (ours and the fake's); one connection more
    # of slack: the fake reports a disconnect a moment before it closes its socket.
    assert after <= before + 2 * (left + 1), f"{after - before} more descriptors after {RUNS} calls"


# -- a middleware built and dropped --------------------------------------------------------------


async def shop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": b"<html>shop</html>"})


def page_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in PAGE.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("shop.test", 80),
    }


async def first_visit(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(page_scope(), receive, send)
    return sent


@pytest.mark.loopback
@pytest.mark.parametrize("loop", LOOPS)
def test_a_middleware_dropped_after_a_mint_closes_its_connection_without_a_warning(
    fake_hello_retail: FakeHelloRetail, loop: str
) -> None:
    # Apps rebuilt per request (Datasette's internal client, Django's
    # AsyncClient in tests) build a middleware, mint, and drop it: no lifespan
    # shutdown ever closes its connection.
    async def go() -> tuple[bool, list[str]]:
        earlier = fake_hello_retail.open_peers
        app = TrackingUserMiddleware(shop, settings=fake_hello_retail.settings())
        sent = await first_visit(app)
        cookies = [v for k, v in sent[0]["headers"] if k == b"set-cookie"]
        (peer,) = fake_hello_retail.open_peers - earlier  # the kept-alive connection
        del app
        gc.collect()
        # The loop goes on (a server's loop does); the fake tells when the connection is closed.
        closed = await asyncio.to_thread(fake_hello_retail.wait_disconnected, peer, 5.0)
        return closed, [c.decode() for c in cookies]

    gc.collect()  # what earlier tests left is not this one's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        closed, cookies = run_on(loop, go)
        gc.collect()

    assert any(c.startswith(f"helloRetailTrackingUserId={fake_hello_retail.minted[0]}") for c in cookies)
    assert closed
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# -- the time budget never swallows a cancel ----------------------------------------------------

BODY = b'{"success": true}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n".encode()
    + BODY
)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_cancel_that_comes_as_the_answer_arrives_always_cancels(loop: str) -> None:
    # asyncio.wait_for on Python 3.10 and 3.11 returns the result instead of
    # raising when the task is cancelled just as the awaited exchange ends:
    # a cancelled prefetch refill went on minting, and asyncio.run() hung.
    async def go() -> collections.Counter[str]:
        requests: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:"))
            await reader.readexactly(length)
            await requests.put(writer)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/serve/search"
        transport = AsyncTransport()
        outcomes: collections.Counter[str] = collections.Counter()
        try:
            # Deterministic, not timed: the answer is written on this loop, and
            # the cancel comes 0, 1, 2 ... 59 loop turns later, so one of them
            # lands in each step of the exchange's end.
            for turns in range(60):
                task = asyncio.ensure_future(transport.post(url, b"{}", timeout=30.0))
                writer = await requests.get()
                writer.write(ANSWER)
                for _ in range(turns):
                    await asyncio.sleep(0)
                if task.cancel():
                    try:
                        await task
                    except asyncio.CancelledError:
                        outcomes["cancelled"] += 1
                    else:
                        outcomes["swallowed"] += 1
                else:
                    await task
                    outcomes["answered before the cancel"] += 1
                writer.close()
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()
        return outcomes

    outcomes = run_on(loop, go)

    assert outcomes["swallowed"] == 0, outcomes
    assert outcomes["cancelled"] >= 3, outcomes  # the sweep did reach the exchange's last steps


# -- sync code of an async app waits on the request's loop, never forever ------------------------------


def test_a_wait_on_a_request_loop_that_never_runs_it_ends_within_the_budget() -> None:
    """grant() or link_customer() in a worker thread while the request's loop is stopped (or
    blocked): the page is served after the call's budget and a second, not held forever."""
    loop = asyncio.new_event_loop()  # never run: nothing scheduled on it ever runs
    visit = Visit(None, None, None, None)
    visit.loop = loop
    started: list[bool] = []

    async def call() -> str:
        started.append(True)
        return A

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the call, cancelled, is never awaited
        try:
            with pytest.raises(RequestTimeoutError, match="did not run grant"):
                from_a_worker_thread(visit, call, 0.0, "grant")
        finally:
            loop.close()
    assert started == []


def test_a_closed_request_loop_is_not_waited_on_the_call_runs_on_a_loop_of_its_own() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    visit = Visit(None, None, None, None)
    visit.loop = loop

    async def call() -> str:
        return A

    assert from_a_worker_thread(visit, call, 1.0, "link_customer") == A


def test_on_an_event_loop_the_blocking_calls_refuse_naming_what_to_await() -> None:
    async def on_the_loop() -> None:
        with pytest.raises(RuntimeError, match=r"use `await agrant\(\)`"):
            refuse_on_an_event_loop("grant")

    asyncio.run(on_the_loop())
    refuse_on_an_event_loop("grant")  # off a loop: nothing to refuse
