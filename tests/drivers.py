"""One test app per adapter, driven through its framework's own test client.

Every driver serves the same endpoints, so one behaviour table runs against
all of them:

``/``            an HTML page; the JSON body says which id the app saw
``/asset.png``   the same handler, reached the way a browser loads an image
``/headers``     answers with the Cache-Control/Vary given in the query string
``/silent``      does not read the id at all
``/silent-headers`` answers like ``/headers`` without reading the id
``/grant``       calls ``hr_middleware.consent.grant()`` (``agrant`` where async), then answers like ``/``
``/revoke``      calls ``hr_middleware.consent.revoke()``, then answers like ``/``
``/login``       calls ``hr_middleware.customers.link_customer(?customer=)`` (``alink_customer`` where async),
                 then answers like ``/`` with ``"link"``: the outcome, ``"customer"``: ``current_customer_id()``
``/website``     answers the request's website (``get_website_uuid()``) after sending a pageview with
                 the downstream client (sync, or async where the app is) to the ``api`` of the query

A driver's ``get`` returns a :class:`Result` whatever the adapter; ``get_at_once``
sends several requests at the same time, as concurrent visitors do.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route
from werkzeug.test import EnvironBuilder, run_wsgi_app

import hr_middleware
from hr_middleware import asgi, consent, customers
from hr_middleware._core.settings import Settings
from hr_middleware._hello_retail.mint import AsyncMinter, CircuitBreaker, Minter
from hr_middleware.fastapi import TrackingUserId
from hr_middleware.wsgi import ENVIRON_KEY, TrackingUserMiddleware

T = TypeVar("T")

CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"

#: What a browser sends when the visitor opens a page.
PAGE = {
    "User-Agent": CHROME_UA,
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
}
#: What a browser sends for an image on that page.
ASSET = {"User-Agent": CHROME_UA, "Accept": "image/avif,image/webp,*/*", "Sec-Fetch-Dest": "image"}
#: A fetch() from the page's JavaScript.
XHR = {"User-Agent": CHROME_UA, "Accept": "application/json", "Sec-Fetch-Dest": "empty"}
#: A crawler.
BOT = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Accept": "text/html"}


@dataclass
class SetCookie:
    """One parsed Set-Cookie header."""

    name: str
    value: str
    attributes: dict[str, str]
    raw: str

    @property
    def deleted(self) -> bool:
        return self.attributes.get("max-age") == "0"


@dataclass
class Result:
    status: int
    body: bytes
    headers: list[tuple[str, str]]
    set_cookies: dict[str, SetCookie] = field(default_factory=dict)

    @property
    def seen(self) -> dict[str, Any]:
        """What the app saw (the JSON the test endpoints answer)."""
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def app_id(self) -> str | None:
        return self.seen["id"]  # type: ignore[no-any-return]

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def header_lines(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def parse_set_cookie(raw: str) -> SetCookie:
    first, *rest = raw.split(";")
    name, _, value = first.strip().partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, val = part.strip().partition("=")
        attributes[key.lower()] = val
    return SetCookie(name, value, attributes, raw)


def make_result(status: int, body: bytes, headers: list[tuple[str, str]]) -> Result:
    result = Result(status, body, headers)
    for value in result.header_lines("set-cookie"):
        cookie = parse_set_cookie(value)
        result.set_cookies[cookie.name] = cookie
    return result


#: What a driver sends as the Cookie header: one line (a str as a browser sends it, in
#: UTF-8; bytes as they are), several lines (a list), or none.
CookieLines = str | bytes | list[str] | None


def cookie_header(cookies: Mapping[str, str] | str | bytes | list[str] | None) -> CookieLines:
    """The Cookie header to send: a str as a browser sends it (UTF-8), bytes as they are,
    a list as that many Cookie lines; a mapping as one line."""
    if cookies is None or isinstance(cookies, (str, bytes, list)):
        return cookies
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def joined_by_a_wsgi_server(cookie: CookieLines) -> str | None:
    """The ``HTTP_COOKIE`` a WSGI server makes of the Cookie line(s): several lines joined
    with ", " (werkzeug's server, wsgiref; gunicorn 27 joins with ","); bytes read as latin-1."""
    if isinstance(cookie, list):
        return ", ".join(cookie)
    return cookie.decode("latin-1") if isinstance(cookie, bytes) else cookie


def raw_cookie_lines(cookie: CookieLines, encoding: str = "utf-8") -> list[bytes]:
    """The raw Cookie lines an ASGI server hands over: a str encoded (as a browser sends it: UTF-8)."""
    if cookie is None:
        return []
    lines = cookie if isinstance(cookie, list) else [cookie]
    return [line if isinstance(line, bytes) else line.encode(encoding) for line in lines]


def seen_now(native_id: Any) -> dict[str, Any]:
    """The body every test endpoint answers: what the app sees of the id."""
    user = hr_middleware.get_tracking_user()
    return {
        "id": hr_middleware.get_tracking_user_id(),
        "native": native_id,
        "origin": None if user.origin is None else str(user.origin),
        "reason": None if user.reason is None else str(user.reason),
    }


#: The website UUID of the clients ``/website`` makes: the request's website must win over it.
CLIENT_WEBSITE_UUID = "00000000-0000-4000-8000-00000000c11e"


def website_seen(query: Mapping[str, str]) -> dict[str, Any]:
    """``/website``: a pageview sent with the sync client (to ``query["api"]``), and the request's website."""
    from hr_middleware.client import HelloRetailClient

    with HelloRetailClient(website_uuid=CLIENT_WEBSITE_UUID, api_url=query["api"]) as client:
        client.track_pageview("https://shop.test/website")
    return {"website": hr_middleware.get_website_uuid()}


async def awebsite_seen(query: Mapping[str, str]) -> dict[str, Any]:
    """``/website`` of an async app: the same with the async client."""
    from hr_middleware.client import AsyncHelloRetailClient

    client = AsyncHelloRetailClient(website_uuid=CLIENT_WEBSITE_UUID, api_url=query["api"])
    try:
        await client.track_pageview("https://shop.test/website")
    finally:
        await client.aclose()
    return {"website": hr_middleware.get_website_uuid()}


def as_config(settings: Settings, prefix: str = "") -> dict[str, Any]:
    """*settings* as upper-case config keys: Flask's ``HELLO_RETAIL_*``, Django's ``HELLO_RETAIL``."""
    return {prefix + name.upper(): getattr(settings, name) for name in Settings.option_names()}


def header_query(query: Mapping[str, str]) -> list[tuple[str, str]]:
    """``/headers?cc=...&vary=...&cdn=...&surrogate=...&set_cookie=...&header=Name: value``
    -> the headers the app answers with (Django's views set a Set-Cookie through
    ``response.cookies`` unless ``set_cookie_as=header``)."""
    out = []
    if "cc" in query:
        out.append(("Cache-Control", query["cc"]))
    if "vary" in query:
        out.append(("Vary", query["vary"]))
    if "cdn" in query:
        out.append(("CDN-Cache-Control", query["cdn"]))
    if "surrogate" in query:
        out.append(("Surrogate-Control", query["surrogate"]))
    if "set_cookie" in query:
        out.append(("Set-Cookie", query["set_cookie"]))
    if "header" in query:
        name, _, value = query["header"].partition(":")
        out.append((name.strip(), value.strip()))
    return out


# -- WSGI ---------------------------------------------------------------------------


def in_threads(calls: list[Callable[[], T]]) -> list[T]:
    """Run each call in its own thread, all at once; their results (the first error is raised)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Result]) -> None:
        try:
            results.append(call())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def plain_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A bare PEP 3333 app serving the test endpoints."""
    from urllib.parse import parse_qsl

    path = environ["PATH_INFO"]
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    headers = [("Content-Type", "application/json")]
    if path == "/silent":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"silent"]
    if path == "/silent-headers":
        start_response("200 OK", [("Content-Type", "text/plain"), *header_query(query)])
        return [b"silent"]
    if path == "/headers":
        headers += header_query(query)
    elif path == "/grant":
        consent.grant()
    elif path == "/revoke":
        consent.revoke()
    elif path == "/login":
        return _json(start_response, linked(customers.link_customer(query["customer"]), environ.get(ENVIRON_KEY)))
    elif path == "/website":
        body = json.dumps(website_seen(query)).encode()
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]
    body = json.dumps(seen_now(environ.get(ENVIRON_KEY, "missing"))).encode()
    start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def linked(outcome: customers.LinkOutcome, native_id: Any) -> dict[str, Any]:
    """What ``/login`` answers: what the app saw, the link's outcome and the customer it named."""
    return {**seen_now(native_id), "link": str(outcome), "customer": customers.current_customer_id()}


def _json(start_response: Callable[..., Any], document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Clock:
    """A monotonic clock that moves only when the test moves it (``clock.now += 30``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker_on(driver: Driver, clock: Callable[[], float]) -> CircuitBreaker:
    """Give *driver*'s minter a circuit breaker on *clock*, with the settings' threshold and cool-down.

    Every adapter's middleware keeps its minter as ``middleware._minter``; the
    minter asks its ``breaker`` before each mint. Call before the first request.
    """
    minter = driver.middleware._minter
    assert isinstance(minter, (Minter, AsyncMinter)), "a prefetching minter keeps its breaker twice"
    settings = minter.settings
    minter.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown, clock=clock)
    return minter.breaker


def renewal_clock_on(driver: Driver, clock: Callable[[], float]) -> None:
    """Decide *driver*'s renewals on *clock* (Unix seconds), for its middleware and an outer one.

    Every adapter's middleware keeps its engine as ``middleware._engine``; Django's in its
    configuration. Call before the first request.
    """
    from hr_middleware._serving import Engine

    for middleware in (driver.middleware, getattr(driver, "outer", None)):
        if middleware is None:
            continue
        engine = getattr(middleware, "_engine", None)
        if not isinstance(engine, Engine):
            engine = middleware._configuration.engine
        engine.clock = clock


class Driver:
    """What every driver offers: ``get()`` one request, ``middleware``, ``close()``."""

    name: str
    middleware: Any

    def get(
        self,
        path: str = "/",
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | str | bytes | list[str] | None = None,
        method: str = "GET",
        scheme: str = "http",
    ) -> Result:
        """One request; *headers* default to a browser's page navigation (:data:`PAGE`);
        *cookies* a list: that many Cookie lines (as the driver's kind of server passes them)."""
        return self.send(method, path, dict(headers if headers is not None else PAGE), cookie_header(cookies), scheme)

    def send(self, method: str, path: str, headers: dict[str, str], cookie: CookieLines, scheme: str) -> Result:
        """One request with exactly these headers and this raw Cookie header (None: none)."""
        raise NotImplementedError

    def get_at_once(self, count: int, path: str = "/", *, headers: Mapping[str, str] | None = None) -> list[Result]:
        """*count* requests without cookies, all in flight at the same time (one thread each here)."""
        return in_threads([functools.partial(self.get, path, headers=headers)] * count)

    def wrap_in_outer_instance(self) -> None:
        """From now on, requests go through a second instance of our server-level middleware
        (WSGI or ASGI, with the same settings) wrapped around this driver's app."""
        raise NotImplementedError

    def close(self) -> None:
        self.middleware.close()


def wsgi_send(
    app: Callable[..., Any], method: str, path: str, headers: dict[str, str], cookie: CookieLines, scheme: str
) -> Result:
    """One request to the WSGI *app*, as a server makes it."""
    builder = EnvironBuilder(path, method=method, headers=headers)
    builder.base_url = f"{scheme}://shop.test/"
    environ = builder.get_environ()
    if cookie is not None:
        # Set on the environ directly: werkzeug's client refuses some of the
        # hostile values the tests send. Bytes reach the environ as servers put them: latin-1.
        environ["HTTP_COOKIE"] = joined_by_a_wsgi_server(cookie)
    app_iter, status, response_headers = run_wsgi_app(app, environ)
    try:
        body = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    return make_result(int(status.split()[0]), body, list(response_headers.items()))


class WSGIDriver(Driver):
    name = "wsgi"
    outer: TrackingUserMiddleware | None = None

    def __init__(self, settings: Settings, app: Callable[..., Any] = plain_wsgi_app) -> None:
        self.middleware = TrackingUserMiddleware(app, settings=settings)
        self.app: Callable[..., Any] = self.middleware

    def send(self, method: str, path: str, headers: dict[str, str], cookie: CookieLines, scheme: str) -> Result:
        return wsgi_send(self.app, method, path, headers, cookie, scheme)

    def wrap_in_outer_instance(self) -> None:
        self.outer = TrackingUserMiddleware(self.app, settings=self.middleware.settings)
        self.app = self.outer

    def close(self) -> None:
        super().close()
        if self.outer is not None:
            self.outer.close()


class FlaskDriver(WSGIDriver):
    name = "flask"

    def __init__(self, settings: Settings) -> None:
        from flask import Flask, Response, request

        from hr_middleware.flask import HelloRetail

        app = Flask("flask_driver")
        app.config.update(as_config(settings, prefix="HELLO_RETAIL_"))
        HelloRetail(app)

        @app.route("/", methods=["GET", "POST", "HEAD"])
        @app.route("/asset.png")
        def index() -> dict[str, Any]:
            return seen_now(request.environ.get(ENVIRON_KEY, "missing"))

        @app.get("/silent")
        def silent() -> str:
            return "silent"

        @app.get("/silent-headers")
        def silent_with_headers() -> Response:
            response = Response("silent", content_type="text/plain")
            for key, value in header_query(request.args):
                response.headers.add(key, value)
            return response

        @app.route("/grant", methods=["GET", "POST"])
        def grant() -> dict[str, Any]:
            consent.grant()
            return seen_now(request.environ.get(ENVIRON_KEY, "missing"))

        @app.route("/revoke", methods=["GET", "POST"])
        def revoke() -> dict[str, Any]:
            consent.revoke()
            return seen_now(request.environ.get(ENVIRON_KEY, "missing"))

        @app.route("/login", methods=["GET", "POST"])
        def login() -> dict[str, Any]:
            return linked(customers.link_customer(request.args["customer"]), request.environ.get(ENVIRON_KEY))

        @app.get("/website")
        def website() -> dict[str, Any]:
            return website_seen(request.args)

        @app.get("/headers")
        def with_headers() -> Response:
            response = app.json.response(seen_now(request.environ.get(ENVIRON_KEY, "missing")))
            for key, value in header_query(request.args):
                response.headers.add(key, value)
            return response

        self.middleware = HelloRetail.middleware(app)
        self.app = app


# -- ASGI ---------------------------------------------------------------------------


def state_id(request: Request) -> Any:
    """The id the middleware put in ``request.state`` (``"missing"`` if it did not)."""
    return getattr(request.state, asgi.STATE_KEY, "missing")


def headers_response(request: Request, seen: dict[str, Any]) -> StarletteResponse:
    response = JSONResponse(seen)
    for key, value in header_query(request.query_params):
        response.headers.append(key, value)
    return response


async def silent(request: Request) -> StarletteResponse:
    return PlainTextResponse("silent")


async def silent_with_headers(request: Request) -> StarletteResponse:
    """``/headers`` without reading the id."""
    response = PlainTextResponse("silent")
    for key, value in header_query(request.query_params):
        response.headers.append(key, value)
    return response


async def grant_endpoint(request: Request) -> StarletteResponse:
    await consent.agrant()
    return JSONResponse(seen_now(state_id(request)))


def grant_sync_endpoint(request: Request) -> StarletteResponse:
    """A sync endpoint (run in a worker thread): grant() mints through the loop."""
    consent.grant()
    return JSONResponse(seen_now(state_id(request)))


async def revoke_endpoint(request: Request) -> StarletteResponse:
    consent.revoke()
    return JSONResponse(seen_now(state_id(request)))


async def login_endpoint(request: Request) -> StarletteResponse:
    outcome = await customers.alink_customer(request.query_params["customer"])
    return JSONResponse(linked(outcome, state_id(request)))


def login_sync_endpoint(request: Request) -> StarletteResponse:
    """A sync endpoint (run in a worker thread): link_customer() sends through the loop."""
    return JSONResponse(linked(customers.link_customer(request.query_params["customer"]), state_id(request)))


async def website_endpoint(request: Request) -> StarletteResponse:
    return JSONResponse(await awebsite_seen(request.query_params))


ASGI_CONSENT_ROUTES = [
    Route("/grant", grant_endpoint, methods=["GET", "POST"]),
    Route("/grant-sync", grant_sync_endpoint, methods=["GET", "POST"]),
    Route("/revoke", revoke_endpoint, methods=["GET", "POST"]),
    Route("/login", login_endpoint, methods=["GET", "POST"]),
    Route("/login-sync", login_sync_endpoint, methods=["GET", "POST"]),
    Route("/website", website_endpoint),
]


def starlette_app() -> Starlette:
    """A Starlette app serving the test endpoints."""

    async def index(request: Request) -> StarletteResponse:
        return JSONResponse(seen_now(state_id(request)))

    async def with_headers(request: Request) -> StarletteResponse:
        return headers_response(request, seen_now(state_id(request)))

    return Starlette(
        routes=[
            Route("/", index, methods=["GET", "POST", "HEAD"]),
            Route("/asset.png", index),
            Route("/silent", silent),
            Route("/silent-headers", silent_with_headers),
            Route("/headers", with_headers),
            *ASGI_CONSENT_ROUTES,
        ]
    )


class ASGIDriver(Driver):
    """The Starlette test app wrapped by the middleware, driven through ``httpx.ASGITransport``.

    Requests run on one event loop in a portal thread for the driver's lifetime,
    as under a server: the middleware's pooled client belongs to that loop.
    """

    name = "asgi"

    def __init__(self, settings: Settings) -> None:
        self.middleware = asgi.TrackingUserMiddleware(starlette_app(), settings=settings)
        self._serve(self.middleware)

    def _serve(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.outer: asgi.TrackingUserMiddleware | None = None
        self._portal_cm = start_blocking_portal()
        self.portal = self._portal_cm.__enter__()

    def send(self, method: str, path: str, headers: dict[str, str], cookie: CookieLines, scheme: str) -> Result:
        return self.portal.call(functools.partial(self.serve, self.request(method, path, headers, cookie, scheme)))

    @staticmethod
    def request(method: str, path: str, headers: dict[str, str], cookie: CookieLines, scheme: str) -> httpx.Request:
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        # What a browser sends: UTF-8, unchecked; bytes as they are; each line its own header.
        raw += [(b"cookie", line) for line in raw_cookie_lines(cookie)]
        return httpx.Request(method, f"{scheme}://shop.test{path}", headers=raw)

    def get_at_once(self, count: int, path: str = "/", *, headers: Mapping[str, str] | None = None) -> list[Result]:
        """*count* requests as tasks on the driver's loop, all in flight at once."""
        request = functools.partial(self.request, "GET", path, dict(headers or PAGE), None, "http")
        serves = [functools.partial(self.serve, request()) for _ in range(count)]
        return self.portal.call(at_once, serves)

    async def serve(self, request: httpx.Request) -> Result:
        """Serve *request* (without httpx's default headers) and read the response."""
        response = await httpx.ASGITransport(app=self.app).handle_async_request(request)
        body = await response.aread()
        return make_result(response.status_code, body, response.headers.multi_items())

    def wrap_in_outer_instance(self) -> None:
        self.outer = asgi.TrackingUserMiddleware(self.app, settings=self.middleware.settings)
        self.app = self.outer

    def close(self) -> None:
        try:
            self.portal.call(self.middleware.aclose)
            if self.outer is not None:
                self.portal.call(self.outer.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)


async def at_once(calls: list[Callable[[], Any]]) -> list[Result]:
    """Await each call in its own task, all at once; their results."""
    results: list[Result] = []

    async def run(call: Callable[[], Any]) -> None:
        results.append(await call())

    async with anyio.create_task_group() as tasks:
        for call in calls:
            tasks.start_soon(run, call)
    return results


class FastAPIDriver(ASGIDriver):
    """A FastAPI app with ``add_middleware(...)``; its endpoints read the id through ``TrackingUserId``."""

    name = "fastapi"

    def __init__(self, settings: Settings) -> None:
        app = FastAPI()
        app.add_middleware(asgi.TrackingUserMiddleware, settings=settings)

        @app.api_route("/", methods=["GET", "POST", "HEAD"])
        @app.get("/asset.png")
        async def index(request: Request, tracking_user_id: TrackingUserId) -> dict[str, Any]:
            return {**seen_now(state_id(request)), "id": tracking_user_id}

        @app.get("/headers")
        async def with_headers(request: Request, tracking_user_id: TrackingUserId) -> StarletteResponse:
            return headers_response(request, {**seen_now(state_id(request)), "id": tracking_user_id})

        app.add_route("/silent", silent)
        app.add_route("/silent-headers", silent_with_headers)
        app.router.routes.extend(ASGI_CONSENT_ROUTES)
        # Built now (Starlette would on the first request) to find the instance add_middleware made.
        app.middleware_stack = app.build_middleware_stack()
        layer: Any = app.middleware_stack
        while not isinstance(layer, asgi.TrackingUserMiddleware):
            layer = layer.app
        self.middleware = layer
        self._serve(app)


# -- Django ----------------------------------------------------------------------------


class DjangoDriver(Driver):
    """Sync views through ``django.test.Client``: the middleware runs on a sync stack."""

    name = "django"
    urlconf = "tests.django_site.urls"

    def __init__(self, settings: Settings) -> None:
        from .django_site import configure

        configure()
        self._settings = settings
        self._config = as_config(settings)
        self._outer: TrackingUserMiddleware | None = None
        with self.settings():
            self.middleware = self._build()

    def _build(self) -> Any:
        """Build this driver's Django handler; return its middleware."""
        from django.test import Client

        self.client = Client()
        self.client.handler.load_middleware()
        return middleware_in(self.client.handler)

    def settings(self) -> Any:
        """This driver's settings, active around each request.

        Re-entering the same ``HELLO_RETAIL`` does not rebuild the middleware
        (it compares the options), so pools and breaker state persist.
        """
        from django.test import override_settings

        return override_settings(HELLO_RETAIL=self._config, ROOT_URLCONF=self.urlconf)

    def send(self, method: str, path: str, headers: dict[str, str], cookie: CookieLines, scheme: str) -> Result:
        with self.settings():
            if self._outer is not None:
                return wsgi_send(self._outer, method, path, headers, cookie, scheme)
            return self._send(method, path, headers, cookie, scheme)

    def wrap_in_outer_instance(self) -> None:
        """Django's WSGI handler (a middleware chain of its own) inside our WSGI middleware."""
        from django.core.handlers.wsgi import WSGIHandler

        with self.settings():
            self._outer = TrackingUserMiddleware(WSGIHandler(), settings=self._settings)

    def close(self) -> None:
        super().close()
        if self._outer is not None:
            self._outer.close()

    def get_at_once(self, count: int, path: str = "/", *, headers: Mapping[str, str] | None = None) -> list[Result]:
        """*count* requests in threads, each with a test client of its own around the one handler."""
        from django.test import Client

        def one() -> Result:
            client = Client()
            client.handler = self.client.handler  # the same middleware instance
            return self._send(
                method="GET", path=path, headers=dict(headers or PAGE), cookie=None, scheme="http", client=client
            )

        with self.settings():  # process-wide: every thread sees it
            return in_threads([one] * count)

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        cookie: CookieLines,
        scheme: str,
        client: Any = None,
    ) -> Result:
        client = client or self.client
        extra = {}
        if cookie is not None:
            # Into META directly: the client's cookie jar would quote hostile values.
            extra["HTTP_COOKIE"] = joined_by_a_wsgi_server(cookie)
        client.cookies.clear()  # stateless, like the other drivers
        response = client.generic(method, path, secure=scheme == "https", headers=headers, **extra)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return make_result(response.status_code, body, django_response_headers(response))


def middleware_in(handler: Any) -> Any:
    """Our middleware in a Django *handler*: Django keeps only the chain, whose
    outermost wrapper wraps the first middleware of ``MIDDLEWARE`` (ours, in the tests)."""
    from hr_middleware.django import TrackingUserMiddleware

    middleware = handler._middleware_chain.__wrapped__
    assert isinstance(middleware, TrackingUserMiddleware)
    return middleware


def django_response_headers(response: Any) -> list[tuple[str, str]]:
    """The header lines Django's handlers send for *response* (its headers, then its cookies)."""
    cookies = [("Set-Cookie", morsel.output(header="").strip()) for morsel in response.cookies.values()]
    return [*response.items(), *cookies]


class DjangoAsyncDriver(DjangoDriver):
    """Async views through Django's real ASGI handler: the middleware runs on an async stack."""

    name = "django_async"
    urlconf = "tests.django_site.async_urls"

    def _build(self) -> Any:
        import asyncio

        import httpx
        from django.core.handlers.asgi import ASGIHandler

        self._handler = ASGIHandler()
        self._transport = httpx.ASGITransport(app=self._handler)  # type: ignore[arg-type]
        self._loop = asyncio.new_event_loop()
        return middleware_in(self._handler)

    def wrap_in_outer_instance(self) -> None:
        """Django's ASGI handler inside our ASGI middleware."""
        self._outer_asgi = asgi.TrackingUserMiddleware(self._handler, settings=self._settings)
        self._transport = httpx.ASGITransport(app=self._outer_asgi)

    def _send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        cookie: CookieLines,
        scheme: str,
        client: Any = None,
    ) -> Result:
        return self._loop.run_until_complete(self._serve(method, path, headers, cookie, scheme))

    async def _serve(self, method: str, path: str, headers: dict[str, str], cookie: CookieLines, scheme: str) -> Result:
        lines = [(k, v.encode("latin-1")) for k, v in headers.items()]
        # Raw headers, as a server passes them (Django joins several with ","); httpx's
        # client would add its own defaults.
        lines += [("Cookie", line) for line in raw_cookie_lines(cookie, "latin-1")]
        request = httpx.Request(method, f"{scheme}://shop.test{path}", headers=lines)
        response = await self._transport.handle_async_request(request)
        body = await response.aread()
        return make_result(response.status_code, body, response.headers.multi_items())

    def get_at_once(self, count: int, path: str = "/", *, headers: Mapping[str, str] | None = None) -> list[Result]:
        """*count* requests as tasks on the driver's loop, all in flight at once."""
        serve = functools.partial(self._serve, "GET", path, dict(headers or PAGE), None, "http")
        with self.settings():
            return self._loop.run_until_complete(at_once([serve] * count))

    def close(self) -> None:
        loop = self._loop
        try:
            loop.run_until_complete(self.middleware.aclose())
            if getattr(self, "_outer_asgi", None) is not None:
                loop.run_until_complete(self._outer_asgi.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


DRIVERS: dict[str, Callable[[Settings], Any]] = {
    "wsgi": WSGIDriver,
    "flask": FlaskDriver,
    "asgi": ASGIDriver,
    "fastapi": FastAPIDriver,
    "django": DjangoDriver,
    "django_async": DjangoAsyncDriver,
}
