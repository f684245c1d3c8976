"""Both transports against hostile answers: cookies never replayed, bombs refused, drips cut off."""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import ssl
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from hr_middleware import Settings, is_valid_id
from hr_middleware._hello_retail.errors import InvalidResponseError, RequestTimeoutError
from hr_middleware._hello_retail.mint import MINT_FAILED, AsyncMinter, Minter
from hr_middleware._hello_retail.transport import Answer, AsyncTransport, SyncTransport
from hr_middleware.client import AsyncHelloRetailClient, HelloRetailClient
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode, fake_products

from .drivers import PAGE
from .hostile import RemoteDripper, answering, dripping, flooding, head_first, url_of
from .ids import A, cookie_id
from .loops import LOOPS, run_on
from .servers import free_port, running

BODY = b'{"success": true}'


def post_sync(url: str, count: int = 1, timeout: float = 2.0, **options: Any) -> list[Answer]:
    transport = SyncTransport(**options)
    try:
        return [transport.post(url, b"{}", timeout=timeout) for _ in range(count)]
    finally:
        transport.close()


def post_async(
    url: str, count: int = 1, timeout: float = 2.0, *, loop: str = "asyncio", **options: Any
) -> list[Answer]:
    transport = AsyncTransport(**options)

    async def go() -> list[Answer]:
        try:
            return [await transport.post(url, b"{}", timeout=timeout) for _ in range(count)]
        finally:
            await transport.aclose()

    return run_on(loop, go)


#: Each transport, the async one on each event loop.
POST = {
    "sync": post_sync,
    "async": post_async,
    "async-uvloop": functools.partial(post_async, loop="uvloop"),
}


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


def mint_at_once(minter: Minter | AsyncMinter, count: int, loop: str = "asyncio") -> list[str | None]:
    """*count* mints at the same time: threads for a Minter, tasks for an AsyncMinter (on *loop*)."""
    if isinstance(minter, AsyncMinter):

        async def go() -> list[str | None]:
            try:
                return list(await asyncio.gather(*(minter.amint() for _ in range(count))))
            finally:
                await minter.aclose()

        return run_on(loop, go)
    with ThreadPoolExecutor(count) as threads:
        return list(threads.map(lambda _: minter.mint(), range(count)))


FLAVOURS = ["sync", "async", "async-uvloop"]


def make_minter(flavour: str, settings: Any, **kwargs: Any) -> Minter | AsyncMinter:
    return Minter(settings, **kwargs) if flavour == "sync" else AsyncMinter(settings, **kwargs)


def loop_of(flavour: str) -> str:
    return "uvloop" if flavour.endswith("uvloop") else "asyncio"


@pytest.mark.loopback  # a drip in memory is a timeout at once: no worker thread would be held
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_server_dripping_its_headers_does_not_pin_the_workers_after_it_recovers(
    fake_hello_retail: FakeHelloRetail, flavour: str
) -> None:
    fake_hello_retail.mode = Mode.DRIP_HEADERS
    fake_hello_retail.drip_interval = 0.1  # the status line and headers would take ~8 s
    settings = fake_hello_retail.settings(timeout=0.3, breaker_threshold=1000)
    minter = make_minter(flavour, settings)
    # The recovery's mints share the transport (its worker threads) but get 2 s
    # each: a loaded machine keeps that, while a worker still held by a drip
    # would hold its mint for the drip's ~8 s, and that mint would fail.
    recovery = make_minter(flavour, settings.replace(timeout=2.0), transport=minter.transport)
    try:
        # Twice the sync worker pool: every worker thread is caught by the drip.
        assert mint_at_once(minter, 32, loop_of(flavour)) == [None] * 32

        fake_hello_retail.mode = Mode.OK
        recovered = mint_at_once(recovery, 16, loop_of(flavour))  # one per worker thread
    finally:
        if isinstance(minter, Minter):
            minter.close()

    assert all(is_valid_id(i) for i in recovered), recovered


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
        # dripping (it never does): the thread (or task) reading it is free again.
        assert server.client_gone.wait(5.0)
    # Time is what is bounded here. The drip never ends, so a read phase
    # without the deadline would never return; the margin over the 0.3 s
    # budget is for a loaded 2-core machine.
    assert elapsed < 0.3 + 2.0, elapsed


# -- an endless head: 1xx answers and headers count ------------------------------------------------

#: What each transport reads of an answer's head (status lines, headers, 1xx answers) before it refuses it.
HEAD_ALLOWANCE = 16 * 1024

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def largest_socket_buffers() -> int:
    """What the kernel may hold unread in the two sockets of a connection (Linux's tcp_rmem and tcp_wmem maxima)."""
    total = 0
    for name in ("tcp_rmem", "tcp_wmem"):
        with open(f"/proc/sys/net/ipv4/{name}") as limits:
            total += int(limits.read().split()[2])
    return total


@pytest.mark.parametrize(
    "more",
    [
        pytest.param(CONTINUE * 100, id="100-continue"),
        pytest.param(b"X-Flood: " + b"a" * 1000 + b"\r\n", id="headers"),
    ],
)
def test_an_endless_head_is_refused_after_the_head_allowance(post: Callable[..., list[Answer]], more: bytes) -> None:
    first = b"HTTP/1.1 200 OK\r\n" if more.startswith(b"X-") else b""
    with flooding(first, more) as server:
        # 20 s: only a transport that does not bound the head gets there.
        with pytest.raises(InvalidResponseError, match="head larger than"):
            post(f"http://127.0.0.1:{server.port}/", timeout=20.0)
        assert server.client_gone.wait(5.0)

    # What the server got to send before the hang-up: the allowance, one read,
    # and what the two sockets' buffers held unread.
    assert server.sent <= HEAD_ALLOWANCE + 65536 + largest_socket_buffers(), server.sent


@pytest.mark.loopback  # a mint in memory never waits on the loop the floods keep busy
@pytest.mark.parametrize("loop", LOOPS)
def test_a_flood_of_100_continue_leaves_a_healthy_mint_on_the_same_loop_its_budget(
    fake_hello_retail: FakeHelloRetail, loop: str
) -> None:
    transport = AsyncTransport()
    minter = AsyncMinter(fake_hello_retail.settings(timeout=1.0))  # the default budget
    outcomes: list[str] = []

    async def flood(url: str) -> None:
        try:
            await transport.post(url, b"{}", timeout=20.0)
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    async def go(server: RemoteDripper) -> str | None:
        floods = [asyncio.ensure_future(flood(f"http://127.0.0.1:{server.port}/")) for _ in range(20)]
        # Every flood is under way (waited for off the loop, which goes on serving the floods).
        assert await asyncio.to_thread(server.wait_for_requests, 20, 30.0)
        try:
            return await minter.amint()
        finally:
            await asyncio.gather(*floods)
            await transport.aclose()
            await minter.aclose()

    with flooding(b"", CONTINUE * 100) as server:
        minted = run_on(loop, functools.partial(go, server))

    assert is_valid_id(minted)  # within its 1 s budget, with 20 floods on its loop
    assert outcomes == ["InvalidResponseError"] * 20  # each flood refused, none timed out


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


@pytest.mark.parametrize("loop", LOOPS)
def test_ten_gzip_bombs_at_once_leave_the_event_loop_turning(gzip_bomb: bytes, loop: str) -> None:
    transport = AsyncTransport()
    outcomes: list[BaseException] = []
    ticks = 0

    async def one(url: str) -> None:
        try:
            await transport.post(url, b"{}", timeout=20.0)  # only a broken run gets near it
        except Exception as exc:
            outcomes.append(exc)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    async def go(url: str) -> None:
        counting = asyncio.ensure_future(ticker())
        try:
            await asyncio.gather(*(one(url) for _ in range(10)))
        finally:
            counting.cancel()
            await transport.aclose()

    with answering(gzip_bomb, [JSON, ("Content-Encoding", "gzip")]) as server:
        run_on(loop, functools.partial(go, url_of(server)))

    assert [type(exc) for exc in outcomes] == [InvalidResponseError] * 10  # refused, not timed out
    # Counted, not timed: each bomb inflates its 4 MiB in 64 KiB steps and
    # yields to the loop after each, so another task runs at least once per
    # step of any one bomb (64 per bomb); inflating a whole read at once would
    # leave it a handful of turns.
    assert ticks >= (4 * 1024 * 1024) // (64 * 1024), ticks


# -- the mint's answer: a few KiB, never compressed ---------------------------------------------

#: The mint's size cap.
MINT_CAP = 4 * 1024


def mint_once(flavour: str, settings: Any) -> str | None:
    minter = make_minter(flavour, settings)
    if isinstance(minter, AsyncMinter):
        return mint_at_once(minter, 1, loop_of(flavour))[0]
    try:
        return minter.mint()
    finally:
        minter.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_mint_answer_of_5_kib_is_refused(hr_log: pytest.LogCaptureFixture, flavour: str) -> None:
    padded = json.dumps({"id": A, "success": True, "padding": "x" * 5 * 1024}).encode()
    with answering(padded, [JSON]) as server:
        settings = Settings(website_uuid=DEFAULT_WEBSITE_UUID, api_url=url_of(server, ""))
        assert mint_once(flavour, settings) is None

    (record,) = hr_log.records
    assert record.msg == MINT_FAILED
    assert f"answer larger than {MINT_CAP} bytes" in record.getMessage()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_compressed_mint_answer_is_refused_on_its_headers(
    hr_log: pytest.LogCaptureFixture, gzip_bomb: bytes, flavour: str
) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(gzip_bomb)}\r\n\r\n".encode()
    )
    # The server sends the body only to a client still there 3 s after the head.
    with head_first(head, gzip_bomb, patience=3.0) as server:
        settings = Settings(website_uuid=DEFAULT_WEBSITE_UUID, api_url=f"http://127.0.0.1:{server.port}", timeout=5.0)
        tracemalloc.start()
        try:
            assert mint_once(flavour, settings) is None
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert server.client_gone.wait(5.0)

    (record,) = hr_log.records
    assert "Content-Encoding that was not asked for" in record.getMessage()
    assert server.body_sent == 0  # refused on the headers: not a byte of the body was read
    assert peak < 2 * 1024 * 1024, peak  # nothing inflated (the bomb holds 128 MiB)


#: How many decoded bytes all the answers being read at once may hold, together.
IN_FLIGHT_BUDGET = 64 * 1024 * 1024


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_concurrent_gzip_bombs_stay_within_the_process_budget(gzip_bomb: bytes, flavour: str) -> None:
    count = 32  # each may hold the 4 MiB cap: 128 MiB together, twice the budget
    outcomes: list[str] = []

    with answering(gzip_bomb, [JSON, ("Content-Encoding", "gzip")]) as server:
        url = url_of(server)
        tracemalloc.start()
        try:
            if flavour == "sync":
                transport = SyncTransport(pool_size=count)

                def one(_: int) -> str:
                    try:
                        transport.post(url, b"{}", timeout=30.0)
                    except Exception as exc:
                        return type(exc).__name__
                    return "answer"

                with ThreadPoolExecutor(count) as threads:
                    outcomes = list(threads.map(one, range(count)))
                transport.close()
            else:
                atransport = AsyncTransport()

                async def aone() -> str:
                    try:
                        await atransport.post(url, b"{}", timeout=30.0)
                    except Exception as exc:
                        return type(exc).__name__
                    return "answer"

                async def go() -> list[str]:
                    try:
                        return list(await asyncio.gather(*(aone() for _ in range(count))))
                    finally:
                        await atransport.aclose()

                outcomes = run_on(loop_of(flavour), go)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert outcomes == ["InvalidResponseError"] * count
    # The budget; plus, per answer, its still compressed bytes in the event
    # loop's socket read (256 KiB) and our read, inflating step and input tail
    # (64 KiB each); plus 4 MiB for the test itself. Without the budget: 140 MB.
    per_answer = 256 * 1024 + 3 * 64 * 1024
    assert peak < IN_FLIGHT_BUDGET + count * per_answer + 4 * 1024 * 1024, peak


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

            answer = asyncio.run(go())

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


@pytest.mark.loopback
def test_the_first_mint_under_uvicorn_does_not_stall_the_event_loop(fake_hello_retail: FakeHelloRetail) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--loop", "asyncio"]
    argv += ["--http", "h11", "--lifespan", "on", "--log-level", "warning", "tests.stall_app:app"]
    env = {"STALL_API_URL": fake_hello_retail.url, "STALL_WEBSITE_UUID": fake_hello_retail.website_uuid}

    with running(argv, port=port, env=env, ready_path="/stalls") as url:
        requests.get(url + "/stalls", timeout=5)  # forget the start-up's steps
        page = requests.get(url + "/", headers=PAGE, timeout=5)
        stalls = requests.get(url + "/stalls", timeout=5).json()

    assert cookie_id(page.cookies["helloRetailTrackingUserId"]) == fake_hello_retail.minted[0]  # it did mint
    assert stalls == []  # no step of the loop took longer than stall_app.SLOW


def test_the_first_mint_to_an_https_api_does_not_load_the_ca_bundle_on_the_event_loop() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--loop", "asyncio"]
    argv += ["--http", "h11", "--lifespan", "on", "--log-level", "warning", "tests.stall_app:app"]

    # A TLS server that starts its handshake and never finishes it: the mint
    # fails at its deadline, but only after the client's TLS context was used.
    with dripping(b"\x16\x03\x03\x40\x00", interval=0.05) as server:
        env = {"STALL_API_URL": f"https://127.0.0.1:{server.port}", "STALL_WEBSITE_UUID": DEFAULT_WEBSITE_UUID}
        with running(argv, port=port, env=env, ready_path="/stalls") as url:
            requests.get(url + "/stalls", timeout=5)  # forget the start-up's steps
            page = requests.get(url + "/", headers=PAGE, timeout=5)
            stalls = requests.get(url + "/stalls", timeout=5).json()
        assert server.requests == 1  # the mint reached the TLS handshake

    assert "helloRetailTrackingUserId" not in page.cookies  # the mint failed, the page was served
    assert stalls == []  # loading the CA bundle (20-90 ms) happened at start-up, not on the loop


# -- TLS contexts: one per process, none for an http:// API -------------------------------------

#: Builds middlewares in a fresh interpreter and counts the CA bundles loaded.
COUNT_CA_LOADS = """
import asyncio, json, ssl, sys
loads = []
load_verify_locations = ssl.SSLContext.load_verify_locations
def counting(self, *args, **kwargs):
    loads.append(1)
    return load_verify_locations(self, *args, **kwargs)
ssl.SSLContext.load_verify_locations = counting

from hr_middleware.asgi import TrackingUserMiddleware
from hr_middleware.client import AsyncHelloRetailClient

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})

async def visit(middleware):
    headers = [(k.lower().encode(), v.encode()) for k, v in json.loads(sys.argv[3]).items()]
    scope = {"type": "http", "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
             "query_string": b"", "root_path": "", "http_version": "1.1", "client": ("127.0.0.1", 1),
             "server": ("shop.test", 80), "headers": headers}
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await middleware(scope, receive, send)
    await middleware.aclose()
    return [v.decode() for k, v in sent[0]["headers"] if k == b"set-cookie"]

api_url, uuid = sys.argv[1], sys.argv[2]
built = [TrackingUserMiddleware(app, website_uuid=uuid, api_url=api_url) for _ in range(3)]
clients = [AsyncHelloRetailClient(website_uuid=uuid, api_url=api_url) for _ in range(3)]
at_construction = len(loads)
cookies = asyncio.run(visit(built[0])) if api_url.startswith("http:") else []
print(json.dumps({"at_construction": at_construction, "in_all": len(loads), "cookies": cookies}))
"""


def count_ca_loads(api_url: str) -> dict[str, Any]:
    argv = [sys.executable, "-c", COUNT_CA_LOADS, api_url, DEFAULT_WEBSITE_UUID, json.dumps(PAGE)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_an_https_api_loads_the_ca_bundle_once_per_process_at_construction() -> None:
    # Three middlewares and three clients: one CA bundle, loaded before any
    # event loop runs (it takes 20-90 ms).
    counted = count_ca_loads("https://core.helloretail.com")

    assert counted["at_construction"] == counted["in_all"] == 1


@pytest.mark.loopback
def test_an_http_api_never_loads_a_ca_bundle(fake_hello_retail: FakeHelloRetail) -> None:
    # Apps rebuilt per request paid 20 ms per construction for it; httpx
    # would load certifi's bundle itself if it were given no context.
    counted = count_ca_loads(fake_hello_retail.url)

    assert counted["in_all"] == 0
    assert any(c.startswith(f"helloRetailTrackingUserId={fake_hello_retail.minted[0]}") for c in counted["cookies"])


def test_the_context_of_an_http_api_refuses_every_certificate() -> None:
    # Should an http-only transport ever meet https, it fails closed.
    transport = AsyncTransport(api_url="http://127.0.0.1:1")

    assert transport.tls.verify_mode == ssl.CERT_REQUIRED
    assert transport.tls.check_hostname
    assert transport.tls.cert_store_stats()["x509_ca"] == 0
