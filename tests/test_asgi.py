"""The ASGI adapter beyond the behaviour table: the event loop is never blocked,
a real uvicorn, lifespan and websocket scopes, and the raw ASGI messages."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import hr_middleware
from hr_middleware import Settings, get_tracking_user_id
from hr_middleware._core.log import INTERNAL_ERROR
from hr_middleware._serving import current as current_visit
from hr_middleware.asgi import STATE_KEY, ASGIRequestFacts, Message, Scope, TrackingUserMiddleware
from hr_middleware.fastapi import TrackingUserId
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE, cookie_header, make_result, starlette_app
from .ids import SDK, SERVER, UUID, A, B, cookie_id, fresh
from .servers import MintGate, free_port

ROOT = Path(__file__).resolve().parents[1]
RETURNING = {SERVER: A, SDK: A}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the mint's transport is asyncio's


def scope_of(
    kind: str = "http",
    *,
    path: str = "/",
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    scheme: str = "http",
    root_path: str = "",
) -> dict[str, Any]:
    raw = [(k.lower().encode(), v.encode()) for k, v in (PAGE if headers is None else headers).items()]
    if cookies is not None:
        raw.append((b"cookie", str(cookie_header(cookies)).encode()))
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("shop.test", 80),
    }
    if kind == "http":
        scope["method"] = "GET"
    return scope


async def serve(app: Any, scope: dict[str, Any], incoming: list[Message] | None = None) -> list[Message]:
    """Run *app* on *scope* as a server would; return the messages it sent."""
    pending = list(incoming if incoming is not None else [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def set_cookie_names(start: Message) -> list[str]:
    return [v.decode().split("=", 1)[0] for k, v in start.get("headers", []) if k.lower() == b"set-cookie"]


# -- the event loop is never blocked ------------------------------------------------------


@pytest.mark.anyio
async def test_returning_visitors_do_not_wait_for_a_slow_mint() -> None:
    with MintGate() as gate:  # holds the mint until released
        middleware = TrackingUserMiddleware(starlette_app(), settings=Settings(website_uuid=UUID, api_url=gate.url))
        transport = httpx.ASGITransport(app=middleware)
        first: list[httpx.Response] = []
        returning: list[httpx.Response] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test", headers=PAGE) as client:

            async def first_visit() -> None:
                first.append(await client.get("/"))

            async def returning_visit() -> None:
                returning.append(await client.get("/", headers={"cookie": cookie_header(RETURNING) or ""}))

            async with anyio.create_task_group() as group:
                group.start_soon(first_visit)
                await anyio.to_thread.run_sync(gate.wait_until_arrived, 1)  # the mint is in flight
                async with anyio.create_task_group() as visits:
                    for _ in range(50):
                        visits.start_soon(returning_visit)
                # All served while the mint is held: the loop was never blocked.
                assert first == []
                gate.release()
        await middleware.aclose()

    assert [r.json()["id"] for r in returning] == [A] * 50
    assert first[0].json() == {"id": gate.minted[0], "native": gate.minted[0], "origin": "minted", "reason": None}
    assert gate.arrived == 1


# -- a real server ------------------------------------------------------------------------------------


@pytest.fixture
def uvicorn_shop(fake_hello_retail: FakeHelloRetail, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``make demo-asgi`` on a free port, pointed at the test's fake Hello Retail."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HELLO_RETAIL_WEBSITE_UUID": fake_hello_retail.website_uuid,
        "HELLO_RETAIL_API_URL": fake_hello_retail.url,
    }
    with (tmp_path / "uvicorn.log").open("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.starlette_app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, log.read()
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
            yield url, process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.loopback
def test_real_uvicorn_mints_once_over_several_visits(
    uvicorn_shop: tuple[str, subprocess.Popen[str]], fake_hello_retail: FakeHelloRetail
) -> None:
    url, process = uvicorn_shop
    shown = []
    with httpx.Client(base_url=url, headers=PAGE) as browser:  # keeps cookies like a browser
        for _ in range(4):
            response = browser.get("/")
            assert response.status_code == 200
            shown.append(re.search(r'id="tracking-user-id">([^<]*)<', response.text).group(1))  # type: ignore[union-attr]
        assert cookie_id(browser.cookies[SERVER]) == browser.cookies[SDK] == shown[0]

    assert shown == [fake_hello_retail.minted[0]] * 4
    assert fake_hello_retail.mint_count == 1
    process.send_signal(signal.SIGINT)  # a clean shutdown runs lifespan and closes the client
    assert process.wait(15) == 0


# -- lifespan --------------------------------------------------------------------------------------


@pytest.mark.loopback
@pytest.mark.anyio
async def test_lifespan_passes_through_and_shutdown_closes_the_pool(fake_hello_retail: FakeHelloRetail) -> None:
    received: list[Message] = []
    page = starlette_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await page(scope, receive, send)
            return
        while True:
            message = await receive()
            received.append(message)
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    to_app, from_server = anyio.create_memory_object_stream[Message](4)
    to_server, from_app = anyio.create_memory_object_stream[Message](4)
    lifespan_scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async def first_visit() -> None:
        start, _ = await serve(middleware, scope_of())
        assert SERVER in set_cookie_names(start)

    async with to_app, from_server, to_server, from_app, anyio.create_task_group() as group:
        group.start_soon(middleware, lifespan_scope, from_server.receive, to_server.send)
        await to_app.send({"type": "lifespan.startup"})
        assert (await from_app.receive())["type"] == "lifespan.startup.complete"
        await first_visit()
        await first_visit()
        assert fake_hello_retail.connections == 1  # pooled: the second mint reused the connection
        await to_app.send({"type": "lifespan.shutdown"})
        assert (await from_app.receive())["type"] == "lifespan.shutdown.complete"

    assert [m["type"] for m in received] == ["lifespan.startup", "lifespan.shutdown"]
    assert fake_hello_retail.mint_count == 2
    await first_visit()  # after shutdown: a new pool, a new connection
    assert fake_hello_retail.connections == 2
    await middleware.aclose()


@pytest.mark.anyio
async def test_lifespan_messages_are_the_apps_own(fake_hello_retail: FakeHelloRetail) -> None:
    sent_by_app: list[Message] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for _ in range(2):
            message = await receive()
            reply = {"type": message["type"] + ".complete", "extra": object()}
            sent_by_app.append(reply)
            await send(reply)

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    lifespan_scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    sent = await serve(middleware, lifespan_scope, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    assert len(sent) == 2
    assert all(got is mine for got, mine in zip(sent, sent_by_app, strict=True))


class _PoolFailingToClose:
    """A minter whose connection pool fails to close (a transport torn down under it)."""

    async def amint(self) -> str | None:
        return None

    async def aclose(self) -> None:
        raise RuntimeError("the pool is in a bad state")


@pytest.mark.anyio
async def test_lifespan_shutdown_completes_when_closing_the_pool_fails(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for _ in range(2):
            await send({"type": (await receive())["type"] + ".complete"})

    middleware = TrackingUserMiddleware(
        app,
        settings=fake_hello_retail.settings(),
        minter=_PoolFailingToClose(),  # type: ignore[arg-type]
    )
    lifespan_scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    sent = await serve(middleware, lifespan_scope, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [r.msg for r in hr_log.records if r.levelno >= 40] == [INTERNAL_ERROR]


# -- websocket ------------------------------------------------------------------------------------


async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    reason = hr_middleware.get_tracking_user().reason
    await websocket.send_json(
        {
            "id": get_tracking_user_id(),
            "state": getattr(websocket.state, STATE_KEY, "missing"),
            "reason": None if reason is None else str(reason),
        }
    )
    await websocket.close()


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        pytest.param(RETURNING, A, id="returning"),
        pytest.param({SDK: B}, B, id="sdk-cookie-only-is-read-not-written"),
        pytest.param({SERVER: A}, A, id="server-cookie-only-sdk-not-written"),
        pytest.param(None, None, id="first-visit-does-not-mint"),
    ],
)
@pytest.mark.anyio
async def test_websocket_reads_the_id_and_never_mints_or_sets(
    fake_hello_retail: FakeHelloRetail, cookies: dict[str, str] | None, expected: str | None
) -> None:
    app = Starlette(routes=[WebSocketRoute("/ws", websocket_endpoint)])
    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())

    sent = await serve(
        middleware,
        scope_of("websocket", path="/ws", cookies=cookies, scheme="ws"),
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}],
    )

    accept, data, close = sent
    assert accept["type"] == "websocket.accept"
    assert set_cookie_names(accept) == []
    reason = None if expected else "websocket"
    assert json.loads(data["text"]) == {"id": expected, "state": expected, "reason": reason}
    assert close["type"] == "websocket.close"
    assert fake_hello_retail.mint_attempts == 0
    assert current_visit() is None


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_a_read_only_state_of_an_odd_server_is_logged_and_served(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture, kind: str
) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen["id"] = get_tracking_user_id()
        if kind == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    scope = scope_of(kind, cookies=RETURNING, scheme="ws" if kind == "websocket" else "http")
    scope["state"] = types.MappingProxyType({})
    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())

    sent = await serve(middleware, scope)

    assert seen["id"] == A
    assert [m["type"] for m in sent] == (["http.response.start", "http.response.body"] if kind == "http" else [])
    assert [r.getMessage() for r in hr_log.records] == [INTERNAL_ERROR]


@pytest.mark.anyio
async def test_a_cookie_header_not_in_lower_case_is_read_as_the_long_way_reads_it(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen["user"] = hr_middleware.get_tracking_user()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = scope_of("http")
    # Two Cookie lines, the first from a server that does not lower-case names: both are read.
    scope["headers"] += [(b"Cookie", f"{SDK}={B}".encode()), (b"cookie", f"{SDK}={A}; {SERVER}={A}".encode())]
    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings(renew_after=None))

    sent = await serve(middleware, scope)

    assert seen["user"].id == B  # the first hello_retail_id of the joined lines
    assert str(seen["user"].origin) == "sdk_cookie"
    assert set_cookie_names(sent[0]) == [SERVER]


@pytest.mark.anyio
async def test_send_reads_as_a_coroutine_function_so_asgiref_takes_it_without_a_warning(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    # Django Channels' sync consumers send through async_to_sync(send), which warns on a
    # callable it does not take for a coroutine function: ours returns the server's awaitable.
    from asgiref.sync import async_to_sync, sync_to_async

    def respond(send: Any) -> None:
        hr_middleware.get_tracking_user_id()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            async_to_sync(send)({"type": "http.response.start", "status": 200, "headers": []})
            async_to_sync(send)({"type": "http.response.body", "body": b"ok"})

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await sync_to_async(respond)(send)

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    sent = await serve(middleware, scope_of(cookies={SERVER: A, SDK: A}))
    await middleware.aclose()

    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert (b"vary", b"Cookie") in sent[0]["headers"]


# -- raw http messages --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_app_set_cookie_survives_next_to_ours(fake_hello_retail: FakeHelloRetail) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain"), (b"set-cookie", b"session=1; Path=/")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    start, _ = await serve(middleware, scope_of())

    assert set_cookie_names(start) == ["session", SERVER, SDK]
    assert start["headers"][:2] == [(b"content-type", b"text/plain"), (b"set-cookie", b"session=1; Path=/")]
    assert (b"cache-control", b"private") in start["headers"]
    await middleware.aclose()


@pytest.mark.parametrize(
    ("cookies", "reads_id", "start_is_the_apps"),
    [
        pytest.param(RETURNING, False, True, id="returning-not-reading-start-untouched"),
        pytest.param(RETURNING, True, False, id="returning-reading-gets-vary"),
        pytest.param(None, False, False, id="first-visit-gets-cookies"),
    ],
)
@pytest.mark.anyio
async def test_only_the_response_start_is_changed(
    fake_hello_retail: FakeHelloRetail, cookies: dict[str, str] | None, reads_id: bool, start_is_the_apps: bool
) -> None:
    app_headers = [(b"content-type", b"text/plain")]
    messages: list[Message] = [
        {"type": "http.response.start", "status": 201, "headers": app_headers},
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if reads_id:
            get_tracking_user_id()
        for message in messages:
            await send(message)

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings(renew_after=None))
    sent = await serve(middleware, scope_of(cookies=cookies))
    await middleware.aclose()

    assert all(got is mine for got, mine in zip(sent[1:], messages[1:], strict=True))
    assert (sent[0] is messages[0]) is start_is_the_apps
    assert sent[0]["status"] == 201
    assert messages[0]["headers"] == [(b"content-type", b"text/plain")]  # the app's message is not mutated
    if reads_id:
        assert (b"vary", b"Cookie") in sent[0]["headers"]


@pytest.mark.anyio
async def test_raw_header_names_in_any_case_are_merged_not_duplicated(fake_hello_retail: FakeHelloRetail) -> None:
    # A bare ASGI app may send names as it likes, in lists; several lines of one header are one value.
    app_headers = [
        [b"Content-Type", b"text/html"],
        [b"Cache-Control", b"public"],
        [b"cache-control", b"max-age=60"],
        [b"VARY", b"Accept-Encoding"],
        [b"x-vary-ish", b"kept"],
        [b"ETag", b'"v1"'],  # as long as "vary"
        [b"content-range", b"bytes 0-1/2"],  # as long as "cache-control"
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": app_headers})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    sent = await serve(middleware, scope_of())  # a first page view: cookies are set
    await middleware.aclose()

    headers = [(bytes(name), bytes(value)) for name, value in sent[0]["headers"]]
    lines = [(name.lower(), value) for name, value in headers]
    assert lines[:4] == [
        (b"content-type", b"text/html"),
        (b"x-vary-ish", b"kept"),
        (b"etag", b'"v1"'),
        (b"content-range", b"bytes 0-1/2"),
    ]
    assert [v for n, v in lines if n == b"cache-control"] == [b"private, max-age=60"]
    assert [v for n, v in lines if n == b"vary"] == [b"Accept-Encoding, Cookie"]
    assert len([v for n, v in lines if n == b"set-cookie"]) == 2


@pytest.mark.anyio
async def test_headers_given_as_a_generator_are_all_kept(fake_hello_retail: FakeHelloRetail) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        get_tracking_user_id()
        headers = ((name, value) for name, value in [(b"content-type", b"text/plain"), (b"x-app", b"1")])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    sent = await serve(middleware, scope_of(cookies={SERVER: fresh(A), SDK: A}))
    await middleware.aclose()

    assert list(sent[0]["headers"]) == [
        (b"content-type", b"text/plain"),
        (b"x-app", b"1"),
        (b"cache-control", b"private"),
        (b"vary", b"Cookie"),
    ]


@pytest.mark.parametrize("when", ["before-start", "after-start"])
@pytest.mark.anyio
async def test_app_exceptions_propagate_and_the_context_is_reset(fake_hello_retail: FakeHelloRetail, when: str) -> None:
    seen = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(get_tracking_user_id())
        if when == "after-start":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    with pytest.raises(RuntimeError, match="boom"):
        await serve(middleware, scope_of(cookies=RETURNING))

    assert seen == [A]
    assert current_visit() is None
    assert get_tracking_user_id() is None


@pytest.mark.anyio
async def test_context_and_state_during_and_after_the_request(fake_hello_retail: FakeHelloRetail) -> None:
    inside = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        inside.append((get_tracking_user_id(), scope["state"][STATE_KEY]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    scope = scope_of(cookies=RETURNING)
    scope["state"] = {"from_lifespan": 1}
    await serve(middleware, scope)

    assert inside == [(A, A)]
    assert scope["state"] == {"from_lifespan": 1, STATE_KEY: A}  # the server's state is kept
    assert current_visit() is None


@pytest.mark.anyio
async def test_a_middleware_failure_is_logged_and_the_request_served(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(get_tracking_user_id()).encode()})

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    scope = scope_of()
    scope["headers"].append((b"cookie", 12345))  # a broken server

    start, body = await serve(middleware, scope)

    assert start["status"] == 200
    assert body["body"] == b"None"
    assert [r.getMessage() for r in hr_log.records] == [INTERNAL_ERROR]


@pytest.mark.anyio
async def test_after_a_middleware_failure_app_errors_are_the_apps_own(fake_hello_retail: FakeHelloRetail) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    scope = scope_of()
    scope["headers"].append((b"cookie", None))

    with pytest.raises(RuntimeError, match="boom") as raised:
        await serve(middleware, scope)
    assert raised.value.__context__ is None


# -- FastAPI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("installed", [True, False])
@pytest.mark.anyio
async def test_fastapi_dependency(fake_hello_retail: FakeHelloRetail, installed: bool) -> None:
    app = FastAPI()

    @app.get("/")
    async def index(tracking_user_id: TrackingUserId) -> dict[str, str | None]:
        return {"trackingUserId": tracking_user_id}

    if installed:
        app.add_middleware(TrackingUserMiddleware, settings=fake_hello_retail.settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test") as client:
        response = await client.get("/", headers={"cookie": cookie_header(RETURNING) or ""})

    result = make_result(response.status_code, response.content, response.headers.multi_items())
    assert result.status == 200
    assert result.seen == {"trackingUserId": A if installed else None}
    assert result.header("vary") == ("Cookie" if installed else None)


@pytest.mark.parametrize("installed", [True, False])
@pytest.mark.anyio
async def test_fastapi_dependency_without_the_middleware_says_so_once(
    fake_hello_retail: FakeHelloRetail, installed: bool, hr_log: pytest.LogCaptureFixture
) -> None:
    """A forgotten ``add_middleware`` gave None silently; now one WARNING names the line to add."""
    app = FastAPI()

    @app.get("/")
    async def index(tracking_user_id: TrackingUserId) -> dict[str, str | None]:
        return {"trackingUserId": tracking_user_id}

    if installed:
        app.add_middleware(TrackingUserMiddleware, settings=fake_hello_retail.settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop.test") as client:
        responses = [await client.get("/", headers=PAGE) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3
    warnings = [r.getMessage() for r in hr_log.records if r.levelno == logging.WARNING]
    if installed:
        assert warnings == []
    else:
        assert warnings == [
            "TrackingUserId was asked for in a request that no hr-middleware middleware served, so it is None: "
            "add `app.add_middleware(TrackingUserMiddleware, website_uuid=...)` "
            "(`from hr_middleware.asgi import TrackingUserMiddleware`)"
        ]


# -- request facts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "facts"),
    [
        pytest.param(
            {"type": "http", "method": "POST", "scheme": "https", "path": "/cart", "root_path": ""},
            {"method": "POST", "path": "/cart", "scheme": "https", "is_secure": True},
            id="https",
        ),
        pytest.param(
            {"type": "http", "method": "GET", "scheme": "http", "path": "/shop/cart", "root_path": "/shop"},
            {"method": "GET", "path": "/shop/cart", "scheme": "http", "is_secure": False},
            id="path-includes-root-path",
        ),
        pytest.param(
            {"type": "http", "method": "GET", "path": "/cart", "root_path": "/shop"},
            {"method": "GET", "path": "/shop/cart", "scheme": "http", "is_secure": False},
            id="path-without-root-path-no-scheme",
        ),
        pytest.param(
            {"type": "http", "method": "GET", "path": "/shopping", "root_path": "/shop"},
            {"method": "GET", "path": "/shop/shopping", "scheme": "http", "is_secure": False},
            id="root-path-prefix-is-not-a-segment",
        ),
        pytest.param(
            {"type": "websocket", "scheme": "wss", "path": "/ws"},
            {"method": "GET", "path": "/ws", "scheme": "wss", "is_secure": True},
            id="wss",
        ),
        pytest.param(
            {"type": "websocket", "scheme": "ws", "path": "/ws"},
            {"method": "GET", "path": "/ws", "scheme": "ws", "is_secure": False},
            id="ws",
        ),
    ],
)
def test_request_facts_from_the_scope(scope: dict[str, Any], facts: dict[str, Any]) -> None:
    request = ASGIRequestFacts(scope)

    assert {name: getattr(request, name) for name in facts} == facts
    assert request.native is scope
    assert request.cookie_header == ""
    assert dict(request.headers) == {}


def test_request_facts_headers() -> None:
    scope = {
        "type": "http",
        "headers": [
            (b"cookie", b"a=1"),
            (b"accept", b"text/html"),
            (b"Cookie", b"b=2"),
            (b"x-forwarded-for", b"1.1.1.1"),
            (b"x-forwarded-for", b"2.2.2.2"),
            (b"user-agent", "Mozilla é".encode()),
        ],
    }
    request = ASGIRequestFacts(scope)

    assert request.cookie_header == "a=1; b=2"
    assert request.cookies == {"a": "1", "b": "2"}
    assert request.headers["ACCEPT"] == "text/html"
    assert request.headers.get("X-Forwarded-For") == "1.1.1.1, 2.2.2.2"
    assert request.headers["cookie"] == "a=1; b=2"
    assert "User-Agent" in request.headers
    assert "sec-fetch-dest" not in request.headers
    assert request.headers["user-agent"] == "Mozilla Ã©"  # latin-1, as in WSGI
    assert len(request.headers) == 4
