"""What the transports to Hello Retail cost, and what hostile answers can make them spend.

``make bench-transport`` (about a minute). Prints four tables:

1. Construction: milliseconds per middleware built, the ASGI one (its
   ``AsyncTransport``) for an ``http://`` and an ``https://`` API next to the
   WSGI one. Apps rebuilt per request (Datasette's internal client, Django's
   ``AsyncClient`` in tests) pay it on every request.
2. A loop per call: one ``AsyncHelloRetailClient`` made at start-up, called
   from ``asyncio.run`` again and again (an async Django view under WSGI):
   open descriptors and live event loops afterwards.
3. An endless ``100 Continue``: what the server got to send before each
   transport hung up, and a healthy mint on the same loop as 20 such floods.
4. Gzip bombs: the peak of traced memory while 32 client calls read one
   each at once, and while one mint reads one.

The figures are in ``docs/reliability.md``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import statistics
import time
import tracemalloc
import weakref
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.micro import bare_asgi, bare_wsgi, fake_in_another_process
from hr_middleware import Settings
from hr_middleware._hello_retail.mint import AsyncMinter, Minter
from hr_middleware._hello_retail.transport import AsyncTransport, SyncTransport
from hr_middleware.asgi import TrackingUserMiddleware as ASGITracking
from hr_middleware.client import AsyncHelloRetailClient
from hr_middleware.wsgi import TrackingUserMiddleware as WSGITracking
from tests.hostile import answering, flooding, url_of
from tests.ids import UUID, A

MiB = 1024 * 1024


def ms_per_call(make: Callable[[], object], count: int) -> float:
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        make()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return statistics.median(samples)


def bench_construction(count: int) -> None:
    http = Settings(website_uuid=UUID, api_url="http://127.0.0.1:9")
    https = Settings(website_uuid=UUID, api_url="https://core.helloretail.com")
    started = time.perf_counter_ns()
    ASGITracking(bare_asgi, settings=https)  # the process's first: loads the CA bundle
    first_https = (time.perf_counter_ns() - started) / 1e6
    rows = [
        ("WSGI middleware", ms_per_call(lambda: WSGITracking(bare_wsgi, settings=http), count)),
        ("ASGI middleware, http:// API", ms_per_call(lambda: ASGITracking(bare_asgi, settings=http), count)),
        ("ASGI middleware, https:// API", ms_per_call(lambda: ASGITracking(bare_asgi, settings=https), count)),
        ("ASGI, https://, the first (imports, CA)", first_https),
    ]
    print(f"\n1. Construction, ms per middleware built (median of {count})")
    for name, value in rows:
        print(f"  {name:<40}{value:>9.3f}")


def bench_loop_per_call(calls: int) -> None:
    with fake_in_another_process(0.0) as url:
        client = AsyncHelloRetailClient(website_uuid=UUID, api_url=url, timeout=5.0)
        loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

        async def one() -> Any:
            loops.append(weakref.ref(asyncio.get_running_loop()))
            return await client.search("k", "shoes", tracking_user_id=A)

        asyncio.run(one())
        gc.collect()
        before = len(os.listdir("/proc/self/fd"))
        started = time.perf_counter()
        for _ in range(calls):
            asyncio.run(one())
        elapsed = time.perf_counter() - started
        gc.collect()
        after = len(os.listdir("/proc/self/fd"))
        alive = sum(ref() is not None for ref in loops)
    print(f"\n2. A loop per call: {calls} x asyncio.run(client.search(...)), one client")
    print(f"  open descriptors    {before} before, {after} after ({after - before:+d})")
    print(f"  live event loops    {alive} of {calls + 1}")
    print(f"  ms per call         {elapsed / calls * 1000:.2f}")


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def bench_flood() -> None:
    print("\n3. An endless '100 Continue': bytes the server sent before the hang-up (20 s budget)")
    for name in ("sync", "async"):
        with flooding(b"", CONTINUE * 100) as server:
            url = f"http://127.0.0.1:{server.port}/"
            started = time.perf_counter()
            try:
                if name == "sync":
                    SyncTransport().post(url, b"{}", timeout=20.0)
                else:
                    asyncio.run(AsyncTransport().post(url, b"{}", timeout=20.0))
                outcome = "answered"
            except Exception as exc:
                outcome = type(exc).__name__
            elapsed = time.perf_counter() - started
            server.client_gone.wait(5)
            sent = server.sent
        print(f"  {name:<6} {outcome:<22} {sent / 1024:>9,.0f} KiB sent, {elapsed * 1000:>7.1f} ms")

    with fake_in_another_process(0.0) as api, flooding(b"", CONTINUE * 100) as server:
        transport = AsyncTransport()
        minter = AsyncMinter(Settings(website_uuid=UUID, api_url=api, timeout=1.0))

        async def go() -> tuple[str | None, float]:
            floods = [
                asyncio.ensure_future(transport.post(f"http://127.0.0.1:{server.port}/", b"{}", timeout=20.0))
                for _ in range(20)
            ]
            while server.requests < 20:  # every flood is under way
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            minted = await minter.amint()
            took = time.perf_counter() - started
            await asyncio.gather(*floods, return_exceptions=True)
            return minted, took

        minted, took = asyncio.run(go())
    print(f"  a mint beside 20 floods on its loop: {'minted' if minted else 'FAILED'} in {took * 1000:.1f} ms")


def traced_peak(work: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / MiB
    finally:
        tracemalloc.stop()


def bench_bombs() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join([*(packer.compress(bytes(MiB)) for _ in range(128)), packer.flush()])
    headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    print("\n4. Gzip bombs (128 MiB of zeros, 130 KB on the wire): peak traced memory")
    with answering(bomb, headers) as server:
        url = url_of(server)

        def async_clients() -> None:
            transport = AsyncTransport()

            async def go() -> None:
                posts = (transport.post(url, b"{}", timeout=30.0) for _ in range(32))
                await asyncio.gather(*posts, return_exceptions=True)
                await transport.aclose()

            asyncio.run(go())

        def sync_clients() -> None:
            transport = SyncTransport(pool_size=32)
            with ThreadPoolExecutor(32) as threads:
                list(threads.map(lambda _: _swallow(transport.post, url, b"{}", timeout=30.0), range(32)))
            transport.close()

        settings = Settings(website_uuid=UUID, api_url=url_of(server, ""), timeout=5.0)

        def mints() -> None:
            minter = AsyncMinter(settings)

            async def go() -> None:
                await asyncio.gather(*(minter.amint() for _ in range(200)))
                await minter.aclose()

            asyncio.run(go())

        rows = [
            ("32 async client calls at once", traced_peak(async_clients)),
            ("32 sync client calls at once", traced_peak(sync_clients)),
            ("200 async mints at once", traced_peak(mints)),
            ("1 sync mint", traced_peak(lambda: Minter(settings).mint())),
        ]
    for name, peak in rows:
        print(f"  {name:<32}{peak:>8.1f} MiB")


def _swallow(call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except Exception:
        pass


def main() -> None:
    logging.getLogger("hr_middleware").setLevel(logging.ERROR)  # the refused mints' warnings
    started = time.monotonic()
    bench_construction(200)
    bench_loop_per_call(500)
    bench_flood()
    bench_bombs()
    print(f"\n(bench took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
