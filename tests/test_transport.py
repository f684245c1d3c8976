"""Both transports against hostile answers: cookies never replayed, bombs refused, drips cut off."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest

from hr_middleware import is_valid_id
from hr_middleware.errors import RequestTimeoutError
from hr_middleware.mint import AsyncMinter, Minter
from hr_middleware.testing import FakeHelloRetail, Mode
from hr_middleware.transport import Answer, AsyncTransport, SyncTransport

from .hostile import answering, dripping, url_of

BODY = b'{"success": true}'


def post_sync(url: str, count: int = 1, timeout: float = 2.0, **options: Any) -> list[Answer]:
    transport = SyncTransport(**options)
    try:
        return [transport.post(url, b"{}", timeout=timeout) for _ in range(count)]
    finally:
        transport.close()


def post_async(url: str, count: int = 1, timeout: float = 2.0, **options: Any) -> list[Answer]:
    transport = AsyncTransport(**options)

    async def go() -> list[Answer]:
        try:
            return [await transport.post(url, b"{}", timeout=timeout) for _ in range(count)]
        finally:
            await transport.aclose()

    return anyio.run(go)


POST = {"sync": post_sync, "async": post_async}


@pytest.fixture(params=list(POST))
def post(request: pytest.FixtureRequest) -> Callable[..., list[Answer]]:
    """``post(url, count=1, timeout=2.0)`` with one transport, then closes it."""
    return POST[request.param]


@pytest.mark.parametrize(
    "set_cookie",
    [
        pytest.param("hr_session=abc123; Path=/", id="host-only"),
        pytest.param("hr_session=abc123; Path=/; Domain=127.0.0.1", id="domain"),
        pytest.param("hr_session=abc123; Path=/; Max-Age=3600; HttpOnly", id="persistent"),
    ],
)
def test_a_cookie_hello_retail_sets_is_never_sent_back(post: Callable[..., list[Answer]], set_cookie: str) -> None:
    with answering(BODY, [("Content-Type", "application/json"), ("Set-Cookie", set_cookie)]) as server:
        answers = post(url_of(server), count=3)

    assert [a.status for a in answers] == [200, 200, 200]
    assert len(server.seen) == 3
    assert all("cookie" not in headers for headers in server.seen)


def mint_at_once(minter: Minter | AsyncMinter, count: int) -> list[str | None]:
    """*count* mints at the same time: threads for a Minter, tasks for an AsyncMinter."""
    if isinstance(minter, AsyncMinter):

        async def go() -> list[str | None]:
            results: list[str | None] = [None] * count

            async def one(index: int) -> None:
                results[index] = await minter.amint()

            async with anyio.create_task_group() as tasks:
                for index in range(count):
                    tasks.start_soon(one, index)
            return results

        return anyio.run(go)
    with ThreadPoolExecutor(count) as threads:
        return list(threads.map(lambda _: minter.mint(), range(count)))


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_server_dripping_its_headers_does_not_pin_the_workers_after_it_recovers(
    fake_hello_retail: FakeHelloRetail, flavour: str
) -> None:
    fake_hello_retail.mode = Mode.DRIP_HEADERS
    fake_hello_retail.drip_interval = 0.05  # the status line and headers would take ~4 s
    settings = fake_hello_retail.settings(timeout=0.3, breaker_threshold=1000)
    minter = Minter(settings) if flavour == "sync" else AsyncMinter(settings)
    try:
        # Twice the sync worker pool: every worker thread is caught by the drip.
        assert mint_at_once(minter, 32) == [None] * 32

        fake_hello_retail.mode = Mode.OK
        started = time.monotonic()
        recovered = mint_at_once(minter, 16)  # one per worker thread
        elapsed = time.monotonic() - started
    finally:
        if isinstance(minter, Minter):
            minter.close()

    # Each mint has 0.3 s; a worker still held by a drip would make them wait it out and fail.
    assert all(is_valid_id(i) for i in recovered)
    assert elapsed < 3 * 0.3 + 0.5


DRIPS = [
    pytest.param("http", b"HTTP/1.1 2", id="status-line"),
    pytest.param("http", b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Drip: ", id="headers"),
    pytest.param("http", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n[", id="body"),
    # A TLS handshake record that announces 16 KiB, then comes one byte at a time.
    pytest.param("https", b"\x16\x03\x03\x40\x00", id="tls-handshake"),
]


@pytest.mark.parametrize(("scheme", "first"), DRIPS)
def test_every_read_phase_ends_at_the_deadline_and_hangs_up(
    post: Callable[..., list[Answer]], scheme: str, first: bytes
) -> None:
    with dripping(first) as server:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            post(f"{scheme}://127.0.0.1:{server.port}/serve/search", timeout=0.3)
        elapsed = time.monotonic() - started

        # The connection is closed at the deadline, not when the server stops
        # dripping: the thread (or task) reading it is free again.
        assert server.client_gone.wait(3.0)
    assert elapsed < 3 * 0.3
