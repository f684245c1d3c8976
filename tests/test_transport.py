"""Both transports against hostile answers: cookies never replayed, bombs refused, drips cut off."""

from __future__ import annotations

import gzip
import json
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
import requests

from hr_middleware import is_valid_id
from hr_middleware._hello_retail.errors import InvalidResponseError, RequestTimeoutError
from hr_middleware._hello_retail.mint import AsyncMinter, Minter
from hr_middleware._hello_retail.transport import Answer, AsyncTransport, SyncTransport
from hr_middleware.client import AsyncHelloRetailClient, HelloRetailClient
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode, fake_products

from .drivers import PAGE
from .hostile import answering, dripping, url_of
from .ids import A
from .servers import free_port, running

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


# -- compressed answers -------------------------------------------------------------------------

JSON = ("Content-Type", "application/json")


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """128 MiB of zeros, gzipped: about 130 KB on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    return b"".join([*(packer.compress(zeros) for _ in range(128)), packer.flush()])


def test_a_gzip_bomb_is_refused_within_the_cap(post: Callable[..., list[Answer]], gzip_bomb: bytes) -> None:
    with answering(gzip_bomb, [JSON, ("Content-Encoding", "gzip")]) as server:
        tracemalloc.start()
        try:
            with pytest.raises(InvalidResponseError, match="answer larger than"):
                post(url_of(server), timeout=5.0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    # At most the 4 MiB cap and one step are inflated, not the 128 MiB.
    assert peak < 16 * 1024 * 1024, peak


def test_ten_gzip_bombs_at_once_keep_the_async_time_budget(gzip_bomb: bytes) -> None:
    transport = AsyncTransport()
    outcomes: list[BaseException] = []

    async def one(url: str) -> None:
        try:
            await transport.post(url, b"{}", timeout=0.5)
        except Exception as exc:
            outcomes.append(exc)

    async def go(url: str) -> float:
        started = time.monotonic()
        async with anyio.create_task_group() as tasks:
            for _ in range(10):
                tasks.start_soon(one, url)
        elapsed = time.monotonic() - started
        await transport.aclose()
        return elapsed

    with answering(gzip_bomb, [JSON, ("Content-Encoding", "gzip")]) as server:
        elapsed = anyio.run(go, url_of(server))

    assert [type(exc) for exc in outcomes] == [InvalidResponseError] * 10  # refused, not timed out
    assert elapsed < 3 * 0.5


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_compressed_search_answer_is_read(flavour: str, coding: str) -> None:
    visitor = A
    document = {"success": True, "products": {"start": 0, "count": 10, "total": 100}}
    document["products"]["results"] = fake_products(visitor, "search:k:shoes", 0, 10)  # type: ignore[index]
    packed = (
        gzip.compress(json.dumps(document).encode())
        if coding == "gzip"
        else zlib.compress(json.dumps(document).encode())
    )

    with answering(packed, [JSON, ("Content-Encoding", coding)]) as server:
        api_url = url_of(server, "")
        if flavour == "sync":
            with HelloRetailClient(website_uuid=DEFAULT_WEBSITE_UUID, api_url=api_url) as client:
                answer = client.search("k", "shoes", tracking_user_id=visitor)
        else:

            async def go() -> Any:
                async with AsyncHelloRetailClient(website_uuid=DEFAULT_WEBSITE_UUID, api_url=api_url) as client:
                    return await client.search("k", "shoes", tracking_user_id=visitor)

            answer = anyio.run(go)

    assert answer == document
    (sent,) = server.seen
    assert sent["accept-encoding"] == "gzip, deflate"  # only what both transports decode


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
def test_a_content_coding_not_asked_for_is_refused(post: Callable[..., list[Answer]], coding: str) -> None:
    with (
        answering(b"\x1b\x00\xff garbage", [JSON, ("Content-Encoding", coding)]) as server,
        pytest.raises(InvalidResponseError, match="Content-Encoding"),
    ):
        post(url_of(server))


def test_a_truncated_or_corrupt_gzip_answer_is_refused(post: Callable[..., list[Answer]]) -> None:
    packed = gzip.compress(json.dumps({"success": True, "products": []}).encode())
    for body in (packed[: len(packed) // 2], packed[:10] + b"\xff" * 20):
        with answering(body, [JSON, ("Content-Encoding", "gzip")]) as server, pytest.raises(InvalidResponseError):
            post(url_of(server))


# -- the first mint on an event loop --------------------------------------------------------------


def test_the_first_mint_under_uvicorn_does_not_stall_the_event_loop(fake_hello_retail: FakeHelloRetail) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--loop", "asyncio"]
    argv += ["--http", "h11", "--lifespan", "on", "--log-level", "warning", "tests.stall_app:app"]
    env = {"STALL_API_URL": fake_hello_retail.url, "STALL_WEBSITE_UUID": fake_hello_retail.website_uuid}

    with running(argv, port=port, env=env, ready_path="/stalls") as url:
        requests.get(url + "/stalls", timeout=5)  # forget the start-up's steps
        page = requests.get(url + "/", headers=PAGE, timeout=5)
        stalls = requests.get(url + "/stalls", timeout=5).json()

    assert page.cookies["helloRetailTrackingUserId"] == fake_hello_retail.minted[0]  # it did mint
    assert stalls == []  # no step of the loop took longer than stall_app.SLOW
