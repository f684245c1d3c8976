"""What real deployments send, on every adapter: odd bytes, joined header lines, the app's own cookies, CDNs."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from hr_middleware import asgi, wsgi
from hr_middleware._core.log import INTERNAL_ERROR
from hr_middleware.consent import cookie_consent, cookiebot, onetrust
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE
from .ids import SDK, SERVER, A, B, cookie_id, fresh
from .servers import free_port, running

COOKIEBOT_YES = "CookieConsent={stamp:%27x%27%2Cnecessary:true%2Cmarketing:true}"


@pytest.mark.parametrize(
    ("consent", "consenting"),
    [
        pytest.param(cookiebot("marketing"), COOKIEBOT_YES, id="cookiebot"),
        pytest.param(cookie_consent("tracking_ok"), "tracking_ok=1", id="cookie-consent"),
    ],
)
def test_a_byte_that_is_not_utf8_in_another_cookie_changes_nothing(
    adapter: str, make_driver: Any, consent: Any, consenting: str, hr_log: pytest.LogCaptureFixture
) -> None:
    """An old site's latin-1 cookie (``caf\\xe9``) once made consent unknown: the
    visitor was opted out, their cookies deleted, a traceback logged per request."""
    driver = make_driver(adapter, consent=consent)
    header = f"legacy=caf\xe9; {consenting}; {SERVER}={A}; {SDK}={A}".encode("latin-1")

    result = driver.get("/", cookies=header)

    assert result.status == 200
    assert (result.app_id, result.seen["origin"]) == (A, "cookie")
    assert result.set_cookies == {}
    assert [r for r in hr_log.records if r.levelname in ("WARNING", "ERROR")] == []


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f"a=1; {SERVER}={A}, {SDK}={A}; b=2", id="ids-on-two-lines"),
        pytest.param(f"{SERVER}={A}; a=1, b=2; {SDK}={A}", id="ids-beside-joined-lines"),
        pytest.param(f"a=1, {SERVER}={A}; {SDK}={A}", id="ids-on-the-second-line"),
    ],
)
def test_two_cookie_lines_joined_by_the_server_keep_the_visitor(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, header: str
) -> None:
    """gunicorn, werkzeug and wsgiref join two Cookie lines with ", " (HTTP/2 splits
    the header; a proxy may pass the pieces on as lines)."""
    result = make_driver(adapter).get("/", cookies=header)

    assert result.app_id == A
    assert result.set_cookies == {}
    assert fake_hello_retail.mint_count == 0


#: The hardening issue's two requests (a FastAPI worker on uvicorn+httptools froze for
#: 12.5 s and 4.6 s): 33,000 Cookie lines in 1.3 MB, and one 4 MB line of an empty id cookie.
HOSTILE_LINES = ["helloRetailTrackingUserId=nothex"] * 33_000
HOSTILE_LINE = "helloRetailTrackingUserId=," * (4_000_000 // 27)
IDS = f"{SERVER}={A}; {SDK}={A}"


@pytest.mark.parametrize(
    ("ids_first", "ids_last"),
    [
        pytest.param([IDS, *HOSTILE_LINES], [*HOSTILE_LINES, IDS], id="33000-lines"),
        pytest.param(f"{IDS}; {HOSTILE_LINE}", f"{HOSTILE_LINE}; {IDS}", id="4MB-line"),
    ],
)
def test_a_cookie_header_far_beyond_what_browsers_send_is_read_up_to_the_bound(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, ids_first: Any, ids_last: Any
) -> None:
    """Served, and read up to 32 KiB (``COOKIE_HEADER_LIMIT``): the ids there are the
    visitor's, ids only past it are not read. (What it costs: ``make bench``, the hostile row.)"""
    driver = make_driver(adapter)

    returning = driver.get("/", cookies=ids_first)
    past_the_bound = driver.get("/", cookies=ids_last)

    assert (returning.status, returning.app_id, returning.seen["origin"]) == (200, A, "cookie")
    # Where the server joined the lines with "," (WSGI servers, Django), the bound cuts the
    # first line after its first cookie: the SDK cookie may be written again, with the same id.
    assert SERVER not in returning.set_cookies
    assert {cookie.value for cookie in returning.set_cookies.values()} <= {A}
    assert past_the_bound.status == 200
    assert past_the_bound.app_id == fake_hello_retail.minted[0]  # a first visit
    assert fake_hello_retail.mint_count == 1
    assert past_the_bound.set_cookies[SERVER].value == fake_hello_retail.minted[0]


@pytest.mark.parametrize(
    "cookies",
    [
        pytest.param(f"{SERVER}={A}; {SDK}={A}, tracking_ok=1", id="joined-with-comma-blank"),
        pytest.param(f"{SERVER}={A}; {SDK}={A},tracking_ok=1", id="joined-with-comma"),
        pytest.param([f"{SERVER}={A}; {SDK}={A}", "tracking_ok=1"], id="two-lines-joined-by-the-server"),
    ],
)
def test_consent_on_the_second_of_two_joined_lines_is_read(adapter: str, make_driver: Any, cookies: Any) -> None:
    """werkzeug and wsgiref join two lines with ", ", gunicorn 27 and Django's ASGI handler with ","."""
    driver = make_driver(adapter, consent=cookie_consent("tracking_ok"))

    result = driver.get("/", cookies=cookies)

    assert (result.app_id, result.set_cookies) == (A, {})


#: OneTrust's OptanonConsent as some sites leave it: partly percent-encoded, the lists'
#: ":" and "," raw, and its host and vendor lists ending with "," (so ",&genVendors=" and
#: ",&consentId=": a "," then what looks like a cookie's "name=").
ONETRUST_MIXED = (
    "isGpcEnabled=0&datestamp=Wed+Mar+06+2024+14%3A21%3A09+GMT%2B0100+(Central+European+Standard+Time)"
    "&version=202401.2.0&browserGpcFlag=0&isIABGlobal=false&hosts=H12:1,H31:1,&genVendors=V2:1,V1:1,"
    "&consentId=0b8e4c1a-5f7d-4c39-9e21-7a6f3c2d1b0e&interactionCount=1&landingPath=NotLandingPage"
    "&groups=C0001:1,C0002:1,C0003:1,C0004:1&AwaitingReconsent=false&geolocation=DK%3B84"
)


def test_a_consent_cookie_holding_comma_name_equals_is_read_whole(adapter: str, make_driver: Any) -> None:
    """Read as ", "-joined lines first, it was cut at ",&genVendors=": no groups, consent
    unknown, so declined, and the visitor's id cookies deleted."""
    driver = make_driver(adapter, consent=onetrust("C0004"))

    result = driver.get(
        "/", cookies=f"OptanonAlertBoxClosed=2024-03-06T13:21:09.123Z; {IDS}; OptanonConsent={ONETRUST_MIXED}"
    )

    assert (result.app_id, result.seen["origin"]) == (A, "cookie")
    assert result.set_cookies == {}


def test_the_apps_own_id_cookie_is_the_only_one_of_its_name(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    """A login that restores a known visitor's id sets our cookie itself: one Set-Cookie per name, the app's."""
    driver = make_driver(adapter)

    result = driver.get(f"/headers?set_cookie={SERVER}={B}")

    names = [line.partition("=")[0].strip() for line in result.header_lines("set-cookie")]
    assert names.count(SERVER) == 1
    assert result.set_cookies[SERVER].value == B
    assert result.set_cookies[SDK].value == fake_hello_retail.minted[0]  # ours: the app left it alone
    assert "private" in (result.header("cache-control") or "")


@pytest.mark.parametrize("django", ["django", "django_async"])
def test_a_django_view_that_writes_our_set_cookie_header_itself_keeps_it(
    django: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    """``response.headers["Set-Cookie"] = ...`` rather than ``set_cookie()``: Django sends
    that line and ``response.cookies``' lines; ours was added after the app's, and won."""
    query = urlencode({"set_cookie": f"{SERVER}={B}; Path=/; Max-Age=31536000", "set_cookie_as": "header"})

    result = make_driver(django).get(f"/headers?{query}")

    names = [line.partition("=")[0].strip() for line in result.header_lines("set-cookie")]
    assert names.count(SERVER) == 1
    assert result.set_cookies[SERVER].value == B
    assert result.set_cookies[SDK].value == fake_hello_retail.minted[0]  # ours: the app left it alone


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            {"cc": 'private="Set-Cookie", max-age=600'},
            {"cache-control": "private, max-age=600"},
            id="qualified-private-is-not-private",
        ),
        pytest.param(
            {"cdn": "max-age=600", "surrogate": "max-age=600, stale-while-revalidate=60"},
            {"cdn-cache-control": "no-store", "surrogate-control": "no-store", "cache-control": "private"},
            id="cdn-headers",
        ),
    ],
)
def test_a_page_that_sets_the_id_is_kept_out_of_every_shared_cache(
    adapter: str, make_driver: Any, query: dict[str, str], expected: dict[str, str]
) -> None:
    result = make_driver(adapter).get("/headers?" + urlencode(query))

    assert result.set_cookies  # a first visit: the id is set
    assert {name: result.header(name) for name in expected} == expected


#: The fields CDNs obey instead of Cache-Control, each with a value that lets them store the page.
CDN_FIELDS = [
    pytest.param("CDN-Cache-Control", "public, max-age=600", id="cdn-cache-control"),
    pytest.param("Surrogate-Control", "max-age=600", id="surrogate-control"),
    pytest.param("Cloudflare-CDN-Cache-Control", "max-age=600", id="cloudflare"),
    pytest.param("Vercel-CDN-Cache-Control", "max-age=600, stale-while-revalidate=60", id="vercel"),
    pytest.param("Netlify-CDN-Cache-Control", "public, durable, s-maxage=600", id="netlify"),
    pytest.param("Fastly-CDN-Cache-Control", "max-age=600", id="any-targeted-field"),  # RFC 9213
    pytest.param("Akamai-Cache-Control", "public, max-age=600", id="akamai"),
    pytest.param("Edge-Control", "!no-store, cache-maxage=600s", id="edge-control"),
]
SHARED = "public, s-maxage=600"


@pytest.mark.parametrize(("field", "value"), CDN_FIELDS)
def test_a_page_that_read_the_id_is_stored_by_no_shared_cache(
    adapter: str, make_driver: Any, field: str, value: str
) -> None:
    """A returning visitor's page writes no cookie: ``Vary: Cookie`` alone, which Cloudflare
    and most CDNs ignore, once let them store it for the next visitor."""
    query = urlencode({"cc": SHARED, "header": f"{field}: {value}"})

    result = make_driver(adapter).get(f"/headers?{query}", cookies={SERVER: A, SDK: A})

    assert (result.app_id, result.set_cookies) == (A, {})
    assert result.header_lines("cache-control") == ["private, s-maxage=600"]
    assert result.header_lines(field) == ["no-store"]
    assert result.header_lines("vary") == ["Cookie"]


def test_a_page_that_read_the_id_and_says_nothing_of_caches_is_made_private(adapter: str, make_driver: Any) -> None:
    result = make_driver(adapter).get("/", cookies={SERVER: A, SDK: A})

    assert (result.app_id, result.set_cookies) == (A, {})
    assert result.header_lines("cache-control") == ["private"]
    assert result.header_lines("vary") == ["Cookie"]


@pytest.mark.parametrize(("field", "value"), CDN_FIELDS)
def test_a_page_that_did_not_read_the_id_keeps_its_caching_headers(
    adapter: str, make_driver: Any, field: str, value: str
) -> None:
    query = urlencode({"cc": SHARED, "header": f"{field}: {value}"})

    result = make_driver(adapter).get(f"/silent-headers?{query}", cookies={SERVER: A, SDK: A})

    assert result.body == b"silent"
    assert result.set_cookies == {}
    assert result.header_lines("cache-control") == [SHARED]
    assert result.header_lines(field) == [value]
    assert result.header("vary") is None


def test_a_returning_visitors_page_tells_cdns_not_to_store_it(adapter: str, make_driver: Any) -> None:
    """Most CDNs ignore ``Vary: Cookie``: a page built for one visitor must not be stored for the next."""
    result = make_driver(adapter).get("/headers?cdn=public,max-age=600", cookies={SERVER: A, SDK: A})

    assert result.app_id == A
    assert result.header("cdn-cache-control") == "no-store"
    assert result.header("vary") == "Cookie"


# -- the response cannot be patched: it still stays out of shared caches ----------------


def test_wsgi_headers_that_cannot_be_patched_still_make_the_page_private(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # A buggy app: a bytes value where PEP 3333 wants str.
        start_response("200 OK", [("Content-Type", "text/html"), ("Cache-Control", b"public, max-age=600")])
        return [b"<p>page</p>"]

    middleware = wsgi.TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    sent: list[tuple[str, list[tuple[str, Any]]]] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http"}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in PAGE.items()})
    try:
        body = b"".join(middleware(environ, lambda status, headers, exc_info=None: sent.append((status, headers))))
    finally:
        middleware.close()

    assert body == b"<p>page</p>"
    assert fake_hello_retail.mint_count == 1
    status, headers = sent[0]
    assert status == "200 OK"
    assert [v for k, v in headers if k.lower() == "cache-control"] == ["private, no-store"]
    assert INTERNAL_ERROR in [r.message for r in hr_log.records]


def test_asgi_headers_that_cannot_be_patched_still_make_the_page_private(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # A buggy app: a str value where ASGI wants bytes.
        headers = [(b"content-type", b"text/html"), (b"cache-control", "public, max-age=600")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<p>page</p>"})

    middleware = asgi.TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "scheme": "http",
            "headers": [(k.lower().encode(), v.encode()) for k, v in PAGE.items()],
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        try:
            await middleware(scope, receive, send)
        finally:
            await middleware.aclose()

    asyncio.run(run())

    assert fake_hello_retail.mint_count == 1
    assert sent[0]["status"] == 200
    assert [v for k, v in sent[0]["headers"] if k == b"cache-control"] == [b"private, no-store"]
    assert sent[1]["body"] == b"<p>page</p>"
    assert INTERNAL_ERROR in [r.message for r in hr_log.records]


# -- a real server ------------------------------------------------------------------------


@pytest.mark.loopback  # the server is another process: in memory its mints could never be counted
def test_gunicorn_joins_two_cookie_lines_and_the_visitor_keeps_the_id(fake_hello_retail: FakeHelloRetail) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "bench.apps:wsgi_app"]
    with running(argv, port=port, env={"HELLO_RETAIL_API_URL": fake_hello_retail.url}):
        request = (
            "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in PAGE.items())
            + f"Cookie: a=1; {SERVER}={fresh(A)}\r\nCookie: {SDK}={A}; b=2\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(request)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert A.encode() in body
    assert b"set-cookie" not in head.lower()
    assert fake_hello_retail.mint_count == 0


@pytest.mark.loopback  # the server is another process: in memory its mints could never be counted
def test_uvicorn_with_httptools_serves_the_hostile_cookie_requests(fake_hello_retail: FakeHelloRetail) -> None:
    """httptools accepts headers of any size: the issue's requests reach the middleware whole."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--http", "httptools", "--port", str(port), "bench.apps:asgi_app"]
    head = "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in PAGE.items()
    )
    ids = f"{SERVER}={fresh(A)}; {SDK}={A}"  # a cookie not due a renewal: the server answers without Set-Cookie
    requests = [
        head + "".join(f"Cookie: {line}\r\n" for line in [ids, *HOSTILE_LINES]) + "\r\n",
        head + f"Cookie: {ids}; {HOSTILE_LINE}\r\n\r\n",
    ]
    with running(argv, port=port, env={"HELLO_RETAIL_API_URL": fake_hello_retail.url}):
        answers = [_answer(port, request.encode()) for request in requests]

    for answer in answers:
        head_bytes, _, body = answer.partition(b"\r\n\r\n")
        assert head_bytes.startswith(b"HTTP/1.1 200")
        assert A.encode() in body
        assert b"set-cookie" not in head_bytes.lower()
    assert fake_hello_retail.mint_count == 0


def _answer(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


# -- error pages: the minted id is delivered wherever the error page passes through the middleware --


def test_a_flask_500_page_carries_the_minted_id(fake_hello_retail: FakeHelloRetail) -> None:
    from flask import Flask

    from hr_middleware import get_tracking_user_id
    from hr_middleware.flask import HelloRetail

    app = Flask("errors")
    app.config.update(
        HELLO_RETAIL_WEBSITE_UUID=fake_hello_retail.website_uuid, HELLO_RETAIL_API_URL=fake_hello_retail.url
    )
    HelloRetail(app)

    @app.get("/")
    def broken() -> str:
        get_tracking_user_id()
        raise RuntimeError("the shop's bug")

    try:
        response = app.test_client().get("/", headers=PAGE, buffered=True)
    finally:
        HelloRetail.middleware(app).close()

    assert response.status_code == 500
    assert {c.split("=")[0] for c in response.headers.getlist("Set-Cookie")} == {SERVER, SDK}
    assert "private" in response.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/error", "/aerror"])
def test_a_django_500_page_carries_the_minted_id(fake_hello_retail: FakeHelloRetail, path: str) -> None:
    from .django_site import configure

    configure()
    from django.test import Client, override_settings

    config = {"WEBSITE_UUID": fake_hello_retail.website_uuid, "API_URL": fake_hello_retail.url}
    with override_settings(HELLO_RETAIL=config, ROOT_URLCONF="tests.django_site.urls"):
        response = Client(raise_request_exception=False).get(path, headers=PAGE)

    assert response.status_code == 500
    assert set(response.cookies) == {SERVER, SDK}
    assert cookie_id(response.cookies[SERVER].value) == fake_hello_retail.minted[0]


def _starlette_app_that_fails() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from hr_middleware import get_tracking_user_id

    async def broken(request: Request) -> Any:
        get_tracking_user_id()
        raise RuntimeError("the shop's bug")

    return Starlette(routes=[Route("/", broken)])


def _get(app: Any) -> Any:
    import httpx

    async def get() -> Any:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            return await client.get("/", headers=PAGE)

    return asyncio.run(get())


def test_a_starlette_500_page_carries_the_minted_id_when_the_middleware_wraps_the_app(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    """Wrapped around the app, the middleware sees Starlette's error page (made by its outermost layer)."""
    app = asgi.TrackingUserMiddleware(_starlette_app_that_fails(), settings=fake_hello_retail.settings())

    response = _get(app)

    assert response.status_code == 500
    assert set(response.cookies) == {SERVER, SDK}


def test_a_starlette_500_page_made_outside_add_middleware_cannot_carry_the_id(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    """Under ``add_middleware`` Starlette makes its 500 page outside every user middleware: the
    README's recipe (wrap the app) is the way to deliver the id there. The page is still served."""
    app = _starlette_app_that_fails()
    app.add_middleware(asgi.TrackingUserMiddleware, settings=fake_hello_retail.settings())

    response = _get(app)

    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "set-cookie" not in response.headers
