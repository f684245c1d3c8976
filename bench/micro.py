"""In-process cost per request, ours next to the bare app and to peer middlewares.

Run with ``make bench``. Every variant is timed in the same process and the
same rounds, interleaved (A B C A B C ...), so a noisy machine shifts them
alike; the figures that matter are the *added* nanoseconds over the bare app
and their ratio to a peer's. Medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import requests

from hr_middleware import Settings, get_tracking_user_id
from hr_middleware._core.cookies import period_token
from hr_middleware._core.settings import ONE_DAY
from hr_middleware._hello_retail import endpoints
from hr_middleware._hello_retail.mint import Minter
from hr_middleware.wsgi import TrackingUserMiddleware as WSGITracking
from tests.ids import UUID, A

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"

#: A realistic Cookie header of a returning visitor (~300 bytes, ours among others), whose
#: cookies were set (renewed) today: not due a renewal (docs/renewal.md). (A run across
#: midnight UTC measures the long way for the requests after it.)
COOKIE = (
    "_ga=GA1.1.1234567890.1700000000; _gid=GA1.1.987654321.1700000000; "
    "csrftoken=Yx3kQ9mZ2bT7wV1nR8pL4sD6fG0hJ5cA; cart=3; "
    "CookieConsent={stamp:%27abc%27%2Cnecessary:true%2Cmarketing:true}; "
    f"helloRetailTrackingUserId={A}.{period_token(time.time(), ONE_DAY)}; hello_retail_id={A}; "
    "sessionid=8f1d2c3b4a5e6f7a8b9c0d1e2f3a4b5c"
)


#: What the floor middlewares set: the least a middleware exposing a per-request value does.
_floor_var: ContextVar[object] = ContextVar("floor")


#: The in-process targets are ratios of CPU instructions, which a noisy machine does not blur.
IN_INSTRUCTIONS = "stated in CPU instructions: make bench-instructions"


def median_ns(samples: list[float]) -> float:
    return statistics.median(samples)


def report(title: str, rows: list[tuple[str, float]], peer: str | None, target: str) -> dict[str, float]:
    """Print one table; returns added ns per variant."""
    bare = dict(rows)["bare app"]
    added = {name: value - bare for name, value in rows}
    print(f"\n{title}")
    print(f"  {'variant':<34}{'ns/request':>12}{'added ns':>11}" + (f"  {'vs ' + peer:>22}" if peer else ""))
    for name, value in rows:
        line = f"  {name:<34}{value:>12,.0f}"
        if name != "bare app":
            line += f"{added[name]:>11,.0f}"
            if peer and name != peer and added[peer] > 0:
                line += f"{added[name] / added[peer]:>23.2f}x"
        print(line)
    print(f"  target: {target}")
    return added


# -- WSGI -------------------------------------------------------------------------------


def bare_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def reading_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The bare app, but it reads the id, as a page with recommendations does (the response is made private)."""
    get_tracking_user_id()
    return bare_wsgi(environ, start_response)


def wsgi_environ(cookie: str | None) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/products/42",
        "QUERY_STRING": "",
        "SERVER_NAME": "shop.test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "shop.test",
        "HTTP_USER_AGENT": UA,
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8",
        "HTTP_SEC_FETCH_DEST": "document",
        "HTTP_X_FORWARDED_FOR": "203.0.113.9",
        "HTTP_X_FORWARDED_PROTO": "https",
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return environ


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
    return lambda data: None


def time_wsgi(app: Callable[..., Iterable[bytes]], environ: dict[str, Any], n: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(n):
        result = app(environ.copy(), start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter_ns() - started) / n


class FloorWSGI:
    """The least a WSGI middleware of our kind does: set a contextvar around
    the app, wrap ``start_response`` (to change headers once the app has read
    the value). No cookie is read."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = _floor_var.set(environ)
        try:
            return self.app(environ, _PassingStart(start_response).start)
        finally:
            _floor_var.reset(token)


class _PassingStart:
    __slots__ = ("start_response",)

    def __init__(self, start_response: Callable[..., Any]) -> None:
        self.start_response = start_response

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return self.start_response(status, headers, exc_info)


def bench_wsgi(rounds: int, n: int) -> dict[str, float]:
    from werkzeug.middleware.proxy_fix import ProxyFix

    settings = Settings(website_uuid=UUID, api_url="http://127.0.0.1:9")  # never called: returning visitors
    variants = {
        "bare app": bare_wsgi,
        "hr-middleware (returning visitor)": WSGITracking(bare_wsgi, settings=settings),
        "werkzeug ProxyFix": ProxyFix(bare_wsgi, x_for=1, x_proto=1),
        "hr-middleware, app reads the id": WSGITracking(reading_wsgi, settings=settings),
        "floor: contextvar + start_response": FloorWSGI(bare_wsgi),
    }
    environ = wsgi_environ(COOKIE)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for app in variants.values():  # warm up
        time_wsgi(app, environ, n // 10)
    for _ in range(rounds):
        for name, app in variants.items():
            samples[name].append(time_wsgi(app, environ, n))
    rows = [(name, median_ns(values)) for name, values in samples.items()]
    added = report(
        f"WSGI, in-process, {len(COOKIE)}-byte Cookie header ({rounds} rounds x {n} requests)",
        rows,
        "werkzeug ProxyFix",
        IN_INSTRUCTIONS,
    )
    return added


# -- ASGI -------------------------------------------------------------------------------


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def asgi_scope(cookie: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/products/42",
        "raw_path": b"/products/42",
        "root_path": "",
        "query_string": b"",
        "server": ("shop.test", 80),
        "client": ("127.0.0.1", 50000),
        "state": {},
        "headers": [
            (b"host", b"shop.test"),
            (b"user-agent", UA.encode()),
            (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
            (b"sec-fetch-dest", b"document"),
            (b"cookie", cookie.encode("latin-1")),
        ],
    }


async def reading_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The bare app, but it reads the id, as a page with recommendations does (the response is made private)."""
    get_tracking_user_id()
    await bare_asgi(scope, receive, send)


class _Passing:
    """``send`` passed on, as a bound method (the cheapest wrapper CPython calls)."""

    __slots__ = ("send",)

    def __init__(self, send: Any) -> None:
        self.send = send

    async def passing(self, message: dict[str, Any]) -> None:
        await self.send(message)


class FloorMiddleware:
    """The least an ASGI middleware does to expose a per-request value and
    change the response afterwards: set a contextvar, wrap ``send``. No cookie
    is read. Its cost is the floor under any middleware of our kind."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        token = _floor_var.set(scope)
        try:
            await self.app(scope, receive, _Passing(send).passing)
        finally:
            _floor_var.reset(token)


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    return None


async def time_asgi(app: Callable[..., Awaitable[None]], scope: dict[str, Any], n: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(n):
        # A new scope and a new state per request, as uvicorn and hypercorn hand over.
        await app({**scope, "state": {}}, receive, send)
    return (time.perf_counter_ns() - started) / n


def session_cookie(secret: str) -> str:
    from itsdangerous import TimestampSigner

    data = base64.b64encode(json.dumps({"cart": [1, 2, 3], "user": 42}).encode())
    return "session=" + TimestampSigner(secret).sign(data).decode()


def bench_asgi(rounds: int, n: int) -> dict[str, float] | None:
    try:
        from asgi_correlation_id import CorrelationIdMiddleware
        from starlette.middleware.sessions import SessionMiddleware

        from hr_middleware.asgi import TrackingUserMiddleware as ASGITracking
    except ImportError as exc:  # pragma: no cover - the [asgi] and [dev] extras are missing
        print(f"\nASGI: skipped ({exc})")
        return None
    settings = Settings(website_uuid=UUID, api_url="http://127.0.0.1:9")
    secret = "bench-secret-key-0123456789"
    cookie = COOKIE + "; " + session_cookie(secret)
    variants = {
        "bare app": bare_asgi,
        "hr-middleware (returning visitor)": ASGITracking(bare_asgi, settings=settings),
        "asgi-correlation-id": CorrelationIdMiddleware(bare_asgi),
        "starlette SessionMiddleware": SessionMiddleware(bare_asgi, secret_key=secret),
        "hr-middleware, app reads the id": ASGITracking(reading_asgi, settings=settings),
        "floor: contextvar + send wrapper": FloorMiddleware(bare_asgi),
    }
    scope = asgi_scope(cookie)

    async def run() -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for app in variants.values():
            await time_asgi(app, scope, n // 10)
        for _ in range(rounds):
            for name, app in variants.items():
                samples[name].append(await time_asgi(app, scope, n))
        return samples

    samples = asyncio.run(run())
    rows = [(name, median_ns(values)) for name, values in samples.items()]
    added = report(
        f"ASGI, in-process, {len(cookie)}-byte Cookie header ({rounds} rounds x {n} requests)",
        rows,
        "asgi-correlation-id",
        IN_INSTRUCTIONS,
    )
    return added


# -- Django -------------------------------------------------------------------------------


def _django_view(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns: list[Any] = []


class NoopMiddleware:
    """The smallest Django middleware: what Django itself charges for one."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


def bench_django(rounds: int, n: int) -> dict[str, float] | None:
    try:
        import django
        from django.conf import settings as django_settings
    except ImportError:  # pragma: no cover - the [django] extra is missing
        print("\nDjango: skipped (not installed)")
        return None
    from django.urls import path

    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            HELLO_RETAIL={"WEBSITE_UUID": UUID, "API_URL": "http://127.0.0.1:9"},
            USE_TZ=True,
        )
        django.setup()
    urlpatterns[:] = [path("products/42", _django_view)]
    from django.core.handlers.base import BaseHandler
    from django.core.handlers.wsgi import WSGIRequest
    from django.test import override_settings

    def handler(middleware: list[str]) -> BaseHandler:
        with override_settings(MIDDLEWARE=middleware):
            built = BaseHandler()
            built.load_middleware()
        return built

    variants = {
        "bare app": handler([]),
        "hr-middleware (returning visitor)": handler(["hr_middleware.django.TrackingUserMiddleware"]),
        "a no-op middleware": handler([f"{__name__}.NoopMiddleware"]),
    }
    environ = wsgi_environ(COOKIE)
    environ.update({"wsgi.input": __import__("io").BytesIO(b""), "SCRIPT_NAME": ""})

    def time_django(built: BaseHandler, count: int) -> float:
        started = time.perf_counter_ns()
        for _ in range(count):
            response = built.get_response(WSGIRequest(environ.copy()))
            response.close()
        return (time.perf_counter_ns() - started) / count

    samples: dict[str, list[float]] = {name: [] for name in variants}
    for built in variants.values():
        time_django(built, n // 10)
    for _ in range(rounds):
        for name, built in variants.items():
            samples[name].append(time_django(built, n // 4))
    rows = [(name, median_ns(values)) for name, values in samples.items()]
    return report(
        f"Django {django.__version__} request cycle (BaseHandler.get_response), {rounds} rounds x {n // 4} requests",
        rows,
        "a no-op middleware",
        "none set; the no-op row is what Django charges for any middleware",
    )


# -- hostile Cookie headers, real server ----------------------------------------------------

#: A request from a script, not a page view (no mint, on either stack): only the headers cost.
HOSTILE_HEADERS = (
    "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n"
    f"User-Agent: {UA}\r\nAccept: application/json\r\nSec-Fetch-Dest: empty\r\n"
)
#: What the hardening issue sent to a FastAPI worker on uvicorn+httptools: 33,000 Cookie
#: lines in 1.3 MB (12.5 s of the worker's time, 0.01 s without the middleware), and one 4 MB line
#: of an empty id cookie (4.6 s).
HOSTILE_REQUESTS = {
    "33,000 Cookie lines (1.3 MB)": (
        HOSTILE_HEADERS + "Cookie: helloRetailTrackingUserId=nothex\r\n" * 33_000 + "\r\n"
    ).encode(),
    "one 4 MB Cookie line": (
        HOSTILE_HEADERS + "Cookie: " + "helloRetailTrackingUserId=," * (4_000_000 // 27) + "\r\n\r\n"
    ).encode(),
}


def served_in(port: int, request: bytes) -> float:
    """Seconds from connecting to the end of the answer (the server closes the connection)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    elapsed = time.perf_counter() - started
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return elapsed


def bench_hostile_cookies(samples: int) -> None:
    """The hostile requests, each sent *samples* times to uvicorn+httptools, bare and with the
    middleware (both servers up at once, requests alternating); medians and their ratio."""
    from bench.load import server_argv
    from tests.servers import free_port, running

    stacks = {"bare": "1", "hr-middleware": "0"}
    ports = {name: free_port() for name in stacks}
    with contextlib.ExitStack() as servers:
        for name, bare in stacks.items():
            argv = server_argv("uvicorn", ports[name], workers=1, http="httptools")
            servers.enter_context(running(argv, port=ports[name], env={"HR_BENCH_BARE": bare}))
        times: dict[tuple[str, str], list[float]] = {}
        for title, request in HOSTILE_REQUESTS.items():
            for name in stacks:
                served_in(ports[name], request)  # warm up
            for _ in range(samples):
                for name in stacks:
                    times.setdefault((title, name), []).append(served_in(ports[name], request))
    print(f"\nHostile Cookie headers, uvicorn+httptools, one worker, {samples} requests each, medians")
    print(f"  {'request':<32}{'bare ms':>10}{'ours ms':>10}{'ours / bare':>13}")
    worst = 0.0
    for title in HOSTILE_REQUESTS:
        bare, ours = (statistics.median(times[title, name]) * 1000 for name in stacks)
        worst = max(worst, ours / bare)
        print(f"  {title:<32}{bare:>10.1f}{ours:>10.1f}{ours / bare:>12.2f}x")
    print("  target: each at most 2x the bare app's time for the same request")
    print(f"  result: {'met' if worst <= 2.0 else 'NOT met'} (worst {worst:.2f}x)")


# -- first visit ------------------------------------------------------------------------


@contextmanager
def fake_in_another_process(delay: float) -> Iterator[str]:
    """A fake Hello Retail in its own process, so that it does not share our GIL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hr_middleware.testing", "--quiet", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def bench_first_visit(delay: float, visits: int) -> None:
    with fake_in_another_process(delay) as url:
        settings = Settings(website_uuid=UUID, api_url=url)
        environ = wsgi_environ(None)

        def one(app: Callable[..., Iterable[bytes]]) -> float:
            started = time.perf_counter_ns()
            result = app(environ.copy(), start_response)
            list(result)
            getattr(result, "close", lambda: None)()
            return (time.perf_counter_ns() - started) / 1e6

        bare = statistics.median(one(bare_wsgi) for _ in range(200))
        pooled = WSGITracking(bare_wsgi, settings=settings)
        one(pooled)  # open the keep-alive connection
        pooled_ms = [one(pooled) for _ in range(visits)]
        fresh_apps = [WSGITracking(bare_wsgi, settings=settings, minter=Minter(settings)) for _ in range(visits)]
        fresh_ms = [one(app) for app in fresh_apps]
        for app in fresh_apps:
            app.close()
        prefetching = WSGITracking(bare_wsgi, settings=settings.replace(prefetch=visits + 5))
        one(prefetching)
        deadline = time.monotonic() + 30
        while len(prefetching._minter.pool) < visits + 5 and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        warm_ms = [one(prefetching) for _ in range(visits)]
        prefetching.close()
        pooled.close()
        raw_ms = []
        with requests.Session() as session:  # the fake's answer time alone: one keep-alive POST, this thread
            mint = functools.partial(
                session.post, settings.api_url + endpoints.MINT, json={"websiteUuid": settings.website_uuid}
            )
            mint()
            for _ in range(visits):
                started = time.perf_counter_ns()
                mint().raise_for_status()
                raw_ms.append((time.perf_counter_ns() - started) / 1e6)

    delay_ms = delay * 1000
    raw = statistics.median(raw_ms)
    print(f"\nFirst visit (WSGI), fake Hello Retail in another process answering after {delay_ms:.0f} ms,")
    print(f"{visits} visits, medians. The HTTP call alone takes {raw:.2f} ms: the fake's Python http.server")
    print(f"adds {raw - delay_ms:.2f} ms to its delay; what the middleware adds is measured against that call.")
    print(f"  {'variant':<42}{'ms/request':>12}{'added over the call':>21}")
    for name, values, reference in [
        ("bare app (no middleware, no call)", [bare], None),
        ("the HTTP call alone (requests, same thread)", raw_ms, None),
        ("mint, pooled keep-alive connection", pooled_ms, raw),
        ("mint, fresh connection per mint", fresh_ms, raw),
        ("prefetch pool warm (no call waited)", warm_ms, bare),
    ]:
        median = statistics.median(values)
        added = "" if reference is None else f"{median - reference:>20.2f}"
        print(f"  {name:<42}{median:>12.2f}{added}")
    added_pooled = statistics.median(pooled_ms) - raw
    print("  target: a pooled mint adds <= 1 ms to the fake server's own answer time")
    print(f"  result: {'met' if added_pooled <= 1.0 else 'NOT met'} ({added_pooled:.2f} ms)")


PARTS = ("wsgi", "asgi", "django", "first-visit", "hostile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round and variant")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts to run, of: {', '.join(PARTS)} (default: all)"
    )
    parser.add_argument("--hostile-samples", type=int, default=9, help="requests per hostile request and stack")
    args = parser.parse_args()
    rounds, n = (3, 2000) if args.quick else (args.rounds, args.requests)
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    if parts - set(PARTS):
        parser.error(f"unknown parts {', '.join(sorted(parts - set(PARTS)))}; pick from {', '.join(PARTS)}")
    started = time.monotonic()
    if "wsgi" in parts:
        bench_wsgi(rounds, n)
    if "asgi" in parts:
        bench_asgi(rounds, n)
    if "django" in parts:
        bench_django(rounds, n)
    if "first-visit" in parts:
        bench_first_visit(delay=0.02, visits=40 if not args.quick else 10)
    if "hostile" in parts:
        bench_hostile_cookies(2 if args.quick else args.hostile_samples)
    print(f"\n(bench took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
