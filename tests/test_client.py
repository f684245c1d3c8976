"""The downstream client, sync and async, against the fake Hello Retail over loopback.

The visitor's id comes from a real request context: a visit that the
middleware's engine decided for a real WSGI environ, installed the way
the adapters install it (``set_visit`` ... ``reset_visit``), or a real
middleware around a real app.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from werkzeug.test import Client, EnvironBuilder

from hr_middleware import OPT_OUT_ID, get_tracking_user_id
from hr_middleware._core.settings import Settings
from hr_middleware._hello_retail.errors import (
    APIError,
    HelloRetailError,
    InvalidResponseError,
    RequestTimeoutError,
    TransportError,
)
from hr_middleware._hello_retail.transport import SyncTransport
from hr_middleware._serving import Engine, Visit
from hr_middleware._serving import enter as set_visit
from hr_middleware._serving import leave as reset_visit
from hr_middleware.client import AsyncHelloRetailClient, HelloRetailClient, parse_answer, tracked
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode
from hr_middleware.wsgi import TrackingUserMiddleware, WSGIRequestFacts

from .drivers import ASSET, BOT, PAGE
from .ids import A, B

pytestmark = pytest.mark.anyio

W = DEFAULT_WEBSITE_UUID
NOT_TRACKED = {"success": True, "message": "Not tracked for anonymous user"}
API_KEY = "test-shop-api-key"
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 0.5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # AsyncTransport bounds the exchange with asyncio.wait_for


@pytest.fixture(params=["sync", "async"])
async def client(request: pytest.FixtureRequest, fake_hello_retail: FakeHelloRetail) -> AsyncIterator[Any]:
    """Each client in turn, pointed at the fake; call its methods through :func:`call`."""
    settings = fake_hello_retail.settings(timeout=TIMEOUT, api_key=API_KEY)
    if request.param == "sync":
        with HelloRetailClient.from_settings(settings) as sync_client:
            yield sync_client
    else:
        async with AsyncHelloRetailClient.from_settings(settings) as async_client:
            yield async_client


async def call(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """``client.method(...)``, awaited when the client is the async one."""
    result = getattr(client, method)(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


# -- the request context ------------------------------------------------------------


def begin_visit(settings: Settings, headers: dict[str, str], cookie: str | None = None) -> Visit:
    """The Visit the core decides for a request with *headers* and *cookie*."""
    environ = EnvironBuilder("/", headers=headers).get_environ()
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return Engine(settings, WSGIRequestFacts, visit=Visit).serve(environ)


@contextmanager
def serving(visit: Visit | None) -> Iterator[Visit | None]:
    """Inside the request of *visit*, as an adapter sets it up (None: outside any request)."""
    if visit is None:
        yield None
        return
    token = set_visit(visit)
    try:
        yield visit
    finally:
        reset_visit(token)


def visit_of(situation: str, settings: Settings) -> Visit | None:
    if situation == "returning":
        return begin_visit(settings, PAGE, f"helloRetailTrackingUserId={A}")
    if situation == "opted-out":
        return begin_visit(settings.replace(consent=lambda request: False), PAGE, f"hello_retail_id={A}")
    if situation == "no-id":  # an asset request of a new visitor: nothing is minted
        return begin_visit(settings, ASSET)
    assert situation == "outside-request"
    return None


def test_the_situations_are_what_they_say(fake_hello_retail: FakeHelloRetail) -> None:
    settings = fake_hello_retail.settings()
    seen = {}
    for situation in ("returning", "opted-out", "no-id", "outside-request"):
        with serving(visit_of(situation, settings)):
            seen[situation] = get_tracking_user_id()
    assert seen == {"returning": A, "opted-out": OPT_OUT_ID, "no-id": None, "outside-request": None}


# -- bodies: every endpoint x every way of having (or not having) an id -----------------

# method, positional arguments, path on the wire, the body without trackingUserId
ENDPOINTS = [
    pytest.param(
        "recommendations",
        ([{"key": "frontpage-1", "format": "json"}],),
        "/serve/recoms",
        {"requests": [{"key": "frontpage-1", "format": "json"}], "websiteUuid": W},
        id="recommendations",
    ),
    pytest.param(
        "search", ("search-key", "shoes"), "/serve/search", {"key": "search-key", "query": "shoes"}, id="search"
    ),
    pytest.param(
        "page",
        ("category/shoes & boots", "https://shop.test/shoes"),
        "/serve/pages/category%2Fshoes%20%26%20boots",
        {"url": "https://shop.test/shoes", "format": "json"},
        id="page",
    ),
    pytest.param(
        "track_pageview",
        ("https://shop.test/p/1",),
        "/serve/collect/pageview",
        {"location": "https://shop.test/p/1", "websiteUuid": W},
        id="pageview",
    ),
    pytest.param(
        "track_click", ("abc123",), "/serve/collect/click", {"source": "abc123", "websiteUuid": W}, id="click"
    ),
    pytest.param("track_cart", (), "/serve/collect/cart", {"websiteUuid": W}, id="cart"),
    pytest.param("track_conversion", (), "/serve/collect/conversion", {"websiteUuid": W}, id="conversion"),
]

# method and positional arguments, where the rest does not matter
CALLS = [pytest.param(*param.values[:2], id=param.id) for param in ENDPOINTS]

# the request situation, the id argument (absent: from the context), the trackingUserId sent:
# never omitted, the opt-out id when there is none (Hello Retail: "always send the real id or
# the opted-out sentinel")
IDS = [
    pytest.param("returning", {}, A, id="context-id"),
    pytest.param("opted-out", {}, OPT_OUT_ID, id="context-opt-out"),
    pytest.param("no-id", {}, OPT_OUT_ID, id="context-without-id"),
    pytest.param("outside-request", {}, OPT_OUT_ID, id="outside-request"),
    pytest.param("returning", {"tracking_user_id": B}, B, id="explicit-overrides-context"),
    pytest.param("returning", {"tracking_user_id": OPT_OUT_ID}, OPT_OUT_ID, id="explicit-opt-out"),
    pytest.param("returning", {"tracking_user_id": None}, OPT_OUT_ID, id="explicit-none-is-no-id"),
    pytest.param("outside-request", {"tracking_user_id": B}, B, id="explicit-outside-request"),
    pytest.param("outside-request", {"trackingUserId": B}, B, id="explicit-as-body-field"),
]


@pytest.mark.parametrize(("method", "args", "path", "fields"), ENDPOINTS)
@pytest.mark.parametrize(("situation", "id_argument", "sent_id"), IDS)
async def test_body(
    client: Any,
    fake_hello_retail: FakeHelloRetail,
    method: str,
    args: tuple[Any, ...],
    path: str,
    fields: dict[str, Any],
    situation: str,
    id_argument: dict[str, Any],
    sent_id: str | None,
) -> None:
    with serving(visit_of(situation, fake_hello_retail.settings())):
        try:
            answer = await call(client, method, *args, **id_argument)
        except APIError as refused:  # a click without an identity, refused as Hello Retail does
            answer = refused

    (request,) = fake_hello_retail.api_requests()
    assert request.path == path
    assert request.headers["content-type"] == "application/json"
    expected = {**fields, "trackingUserId": sent_id}
    if method == "page":
        expected["firstLoad"] = True  # a page's first load, tracked
    assert request.json == expected
    assert request.query == ""  # the API key goes only with email/customerId
    if method == "track_click" and sent_id is None:
        assert isinstance(answer, APIError)
        assert answer.status == 400
    elif method in ("track_cart", "track_conversion") and sent_id in (None, OPT_OUT_ID):
        assert answer == NOT_TRACKED  # a result, not an error
        assert not tracked(answer)
    else:
        assert isinstance(answer, dict)
        assert answer["success"] is True


async def test_reading_the_id_marks_the_response_as_varying(client: Any, fake_hello_retail: FakeHelloRetail) -> None:
    with serving(visit_of("returning", fake_hello_retail.settings())) as visit:
        assert visit is not None
        assert not visit.accessed
        await call(client, "track_pageview", "https://shop.test/")
        assert visit.accessed  # so the page gets Vary: Cookie


@pytest.mark.parametrize("field", ["email", "customerId"])
@pytest.mark.parametrize("situation", ["returning", "opted-out", "outside-request"])
async def test_recommendations_by_email_or_customer_id_send_no_tracking_user_id(
    client: Any, fake_hello_retail: FakeHelloRetail, field: str, situation: str
) -> None:
    with serving(visit_of(situation, fake_hello_retail.settings())):
        answer = await call(client, "recommendations", [{"key": "k"}], **{field: "42"})

    (request,) = fake_hello_retail.api_requests()
    assert request.json == {"requests": [{"key": "k"}], "websiteUuid": W, field: "42"}
    assert request.params == {"apiKey": API_KEY}
    assert answer["success"] is True


@pytest.mark.parametrize("situation", ["no-id", "outside-request"])
@pytest.mark.parametrize("id_argument", [{}, {"tracking_user_id": None}], ids=["from-context", "explicit-none"])
@pytest.mark.parametrize("method", ["track_pageview", "track_click", "track_cart", "track_conversion"])
async def test_a_customer_id_on_collect_names_the_visitor_when_there_is_no_id(
    client: Any, fake_hello_retail: FakeHelloRetail, method: str, id_argument: dict[str, Any], situation: str
) -> None:
    # customerId is an identity on the collect endpoints: with no id, no opt-out id is added
    # (it would make the customer anonymous), and the key goes along.
    args = {"track_pageview": ("https://shop.test/",), "track_click": ("abc",)}.get(method, ())
    with serving(visit_of(situation, fake_hello_retail.settings())):
        answer = await call(client, method, *args, customerId="42", **id_argument)

    (request,) = fake_hello_retail.api_requests()
    assert "trackingUserId" not in request.json
    assert request.json["customerId"] == "42"
    assert request.params == {"apiKey": API_KEY}
    assert tracked(answer)


@pytest.mark.parametrize("method", ["track_cart", "track_conversion"])
@pytest.mark.parametrize("situation", ["returning", "no-id", "outside-request"])
async def test_email_on_cart_and_conversion_is_data_not_an_identity(
    client: Any, fake_hello_retail: FakeHelloRetail, method: str, situation: str
) -> None:
    # Hello Retail's own examples send trackingUserId + email (for abandoned-cart mails), no key.
    with serving(visit_of(situation, fake_hello_retail.settings())):
        await call(client, method, email="a@shop.test", total=10.5)

    (request,) = fake_hello_retail.api_requests()
    assert request.json["email"] == "a@shop.test"
    assert request.json["trackingUserId"] == (A if situation == "returning" else OPT_OUT_ID)
    assert request.query == ""  # the secret does not leave for email


@pytest.mark.parametrize(("method", "args"), CALLS)
async def test_an_api_log_tag_goes_in_the_query_with_the_key_on_both_clients(
    client: Any, fake_hello_retail: FakeHelloRetail, method: str, args: tuple[Any, ...]
) -> None:
    await call(client, method, *args, tracking_user_id=A, api_log_tag="nightly job")
    await call(client, method, *args, tracking_user_id=None, customerId="42", api_log_tag="nightly job")

    plain, by_customer = fake_hello_retail.api_requests()
    assert plain.params == {"apiLogTag": "nightly job"}
    needs_key = method in ("recommendations", "track_pageview", "track_click", "track_cart", "track_conversion")
    assert by_customer.params == ({"apiLogTag": "nightly job", "apiKey": API_KEY} if needs_key else plain.params)


@pytest.mark.parametrize("field", ["email", "customerId"])
async def test_recommendations_refuse_an_explicit_id_with_email_or_customer_id(
    client: Any, fake_hello_retail: FakeHelloRetail, field: str
) -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        await call(client, "recommendations", [{"key": "k"}], tracking_user_id=A, **{field: "42"})
    assert fake_hello_retail.api_requests() == []


async def test_conversion_keeps_both_email_and_the_id(client: Any, fake_hello_retail: FakeHelloRetail) -> None:
    # Only recommendations treat them as exclusive.
    with serving(visit_of("returning", fake_hello_retail.settings())):
        await call(client, "track_conversion", email="a@shop.test", customerId="42", total=10.5, orderNumber="1001")

    (request,) = fake_hello_retail.api_requests()
    assert request.json == {
        "email": "a@shop.test",
        "customerId": "42",
        "total": 10.5,
        "orderNumber": "1001",
        "websiteUuid": W,
        "trackingUserId": A,
    }


NOT_IDS = [
    pytest.param("", id="empty"),
    pytest.param(A.upper(), id="upper-case"),
    pytest.param(A + "0", id="too-long"),
    pytest.param(A[:-1], id="too-short"),
    pytest.param("g" * 24, id="not-hex"),
    pytest.param("null", id="null-string"),
    pytest.param(12345, id="number"),
    pytest.param("<script>alert(1)</script>", id="markup"),
]


@pytest.mark.parametrize("value", NOT_IDS)
@pytest.mark.parametrize(("method", "args"), CALLS)
async def test_an_explicit_id_that_is_not_an_id_is_refused_and_nothing_is_sent(
    client: Any, fake_hello_retail: FakeHelloRetail, method: str, args: tuple[Any, ...], value: object
) -> None:
    with serving(visit_of("returning", fake_hello_retail.settings())):
        with pytest.raises(ValueError, match="tracking_user_id"):
            await call(client, method, *args, tracking_user_id=value)
        with pytest.raises(ValueError, match="tracking_user_id"):
            await call(client, method, *args, trackingUserId=value)
    assert fake_hello_retail.api_requests() == []


async def test_the_id_given_twice_is_refused(client: Any, fake_hello_retail: FakeHelloRetail) -> None:
    with pytest.raises(TypeError, match="not both"):
        await call(client, "track_click", "abc", tracking_user_id=A, trackingUserId=A)
    assert fake_hello_retail.api_requests() == []


async def test_unknown_fields_pass_through_untouched(client: Any, fake_hello_retail: FakeHelloRetail) -> None:
    extra = {
        "format": "json",
        "deviceType": "DESKTOP",
        "products": {"start": 10, "count": 2, "filters": ["brand:Acme"], "sorting": ["price desc"]},
        "someFutureField": {"nested": [1, "two", None, True]},
        "unicodeField": "blå æbler",
    }
    answer = await call(client, "search", "search-key", "æbler", tracking_user_id=A, **extra)

    (request,) = fake_hello_retail.api_requests()
    assert request.json == {"key": "search-key", "query": "æbler", **extra, "trackingUserId": A}
    assert answer["products"]["start"] == 10
    assert answer["products"]["requestedCount"] == answer["products"]["returnedCount"] == 2
    assert len(answer["products"]["results"]) == 2


async def test_a_website_uuid_of_the_caller_wins(client: Any, fake_hello_retail: FakeHelloRetail) -> None:
    other = "11111111-1111-4111-8111-111111111111"
    fake_hello_retail.website_uuids.add(other)  # another website of the shop's, known to Hello Retail
    await call(client, "track_pageview", "https://shop.test/", websiteUuid=other, tracking_user_id=None)

    (request,) = fake_hello_retail.api_requests()
    assert request.json == {"location": "https://shop.test/", "websiteUuid": other, "trackingUserId": OPT_OUT_ID}


async def test_recommendations_answer_in_request_order(client: Any, fake_hello_retail: FakeHelloRetail) -> None:
    answer = await call(
        client,
        "recommendations",
        [{"key": "a"}, {"trackingKey": "b", "count": 2, "sources": [{"type": "TOP"}]}],
        tracking_user_id=A,
    )

    assert [response.get("key") or response["trackingKey"] for response in answer["responses"]] == ["a", "b"]
    assert answer["responses"][1]["countAfterSource"] == "0. TOP (1ms): 2"
    assert [len(response["products"]) for response in answer["responses"]] == [4, 2]
    product = answer["responses"][0]["products"][0]
    assert set(product) == {"title", "url", "originalUrl", "price", "productNumber", "imgUrl", "brand", "trackingCode"}


# -- errors: every failure mode of the fake, for both clients -----------------------

# the fake's api_mode, the exception (exactly this class), its attributes
ERRORS = [
    pytest.param(
        Mode.SERVER_ERROR,
        APIError,
        {"status": 500, "code": "UNEXPECTED ERROR", "message": "Unexpected error, please contact Hello Retail support"},
        id="http-500-json",
    ),
    pytest.param(
        Mode.BAD_REQUEST, APIError, {"status": 400, "code": None, "message": "Bad request"}, id="http-400-json"
    ),
    pytest.param(Mode.GATEWAY_ERROR, APIError, {"status": 502, "code": None, "message": None}, id="http-502-html"),
    pytest.param(
        Mode.SUCCESS_FALSE,
        APIError,
        {"status": 200, "code": "INVALID REQUEST", "message": "Request could not be served"},
        id="http-200-success-false",
    ),
    pytest.param(Mode.NOT_JSON, InvalidResponseError, {"status": 200}, id="http-200-html"),
    pytest.param(Mode.HUGE, InvalidResponseError, {}, id="oversized"),
    pytest.param(Mode.DROP, TransportError, {}, id="dropped"),
    pytest.param(Mode.RESET, TransportError, {}, id="reset"),
    pytest.param(Mode.HANG, RequestTimeoutError, {}, id="hangs"),
    pytest.param(Mode.DRIP, RequestTimeoutError, {}, id="drips"),
    pytest.param(Mode.DRIP_HEADERS, RequestTimeoutError, {}, id="drips-headers"),
]
#: Modes about mints only: the other endpoints answer normally in them.
MINT_ONLY_MODES = {Mode.NO_ID, Mode.INVALID_ID, Mode.ID_ONLY}


def test_the_error_table_covers_every_failure_mode() -> None:
    assert {param.values[0] for param in ERRORS} | MINT_ONLY_MODES | {Mode.OK} == set(Mode)


@pytest.mark.parametrize(("mode", "error", "attributes"), ERRORS)
@pytest.mark.parametrize(("method", "args"), CALLS)
async def test_error_mapping(
    client: Any,
    fake_hello_retail: FakeHelloRetail,
    mode: Mode,
    error: type[Exception],
    attributes: dict[str, Any],
    method: str,
    args: tuple[Any, ...],
) -> None:
    fake_hello_retail.api_mode = mode
    started = time.monotonic()

    with pytest.raises(error) as caught:
        await call(client, method, *args, tracking_user_id=A)

    assert type(caught.value) is error
    for name, value in attributes.items():
        assert getattr(caught.value, name) == value
    assert time.monotonic() - started < 3 * TIMEOUT  # the time budget, with a margin for a loaded machine
    assert fake_hello_retail.api_attempts == 1
    assert fake_hello_retail.mint_attempts == 0


@pytest.mark.parametrize("mode", sorted(MINT_ONLY_MODES), ids=str)
async def test_mint_only_modes_do_not_affect_other_endpoints(
    client: Any, fake_hello_retail: FakeHelloRetail, mode: Mode
) -> None:
    fake_hello_retail.api_mode = mode
    assert (await call(client, "track_click", "abc", tracking_user_id=A)) == CLICK_TRACKED


@pytest.mark.loopback  # the reset connection must leave the pool usable: memory has no connection
async def test_the_client_works_again_after_a_failure(client: Any, fake_hello_retail: FakeHelloRetail) -> None:
    fake_hello_retail.api_mode = Mode.RESET
    with pytest.raises(TransportError):
        await call(client, "track_click", "abc", tracking_user_id=A)
    fake_hello_retail.api_mode = Mode.OK
    assert (await call(client, "track_click", "abc", tracking_user_id=A)) == CLICK_TRACKED


CLICK_TRACKED = {"success": True, "message": "Click tracked"}


def test_every_error_is_a_hello_retail_error() -> None:
    for error in (APIError, InvalidResponseError, TransportError, RequestTimeoutError):
        assert issubclass(error, HelloRetailError)
    assert issubclass(RequestTimeoutError, TransportError)


# -- the fake checks ids like Hello Retail; the parser maps its answers -----------------


def post_raw(fake: FakeHelloRetail, path: str, body: dict[str, Any]) -> Any:
    """POST *body* as it is (no client in between) and parse the answer."""
    transport = SyncTransport()
    try:
        return parse_answer(transport.post(fake.url + path, json.dumps(body).encode(), timeout=TIMEOUT))
    finally:
        transport.close()


@pytest.mark.parametrize("endpoint", ["pageview", "click", "cart", "conversion"])
@pytest.mark.parametrize("bad", [None, "", A.upper(), A[:-1], 0], ids=repr)
def test_collect_endpoints_answer_400_to_a_malformed_id(
    fake_hello_retail: FakeHelloRetail, endpoint: str, bad: object
) -> None:
    with pytest.raises(APIError) as caught:
        post_raw(fake_hello_retail, f"/serve/collect/{endpoint}", {"websiteUuid": W, "trackingUserId": bad})

    assert caught.value.status == 400
    # Hello Retail's conversion endpoint leaves out the last word.
    wording = "must be 24-character hex" if endpoint == "conversion" else "must be 24-character hex string"
    assert caught.value.message == f"Invalid trackingUserId: {wording}"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [("pageview", {"success": True, "message": "Page view tracked"}), ("cart", NOT_TRACKED)],
)
def test_collect_endpoints_accept_the_opt_out_id(
    fake_hello_retail: FakeHelloRetail, endpoint: str, expected: Any
) -> None:
    body = {"websiteUuid": W, "trackingUserId": OPT_OUT_ID, "url": "https://shop.test/"}
    assert post_raw(fake_hello_retail, f"/serve/collect/{endpoint}", body) == expected


def test_recommendations_reject_two_ways_of_naming_the_visitor(fake_hello_retail: FakeHelloRetail) -> None:
    body = {"websiteUuid": W, "trackingUserId": A, "email": "a@shop.test", "requests": [{"key": "k"}]}
    with pytest.raises(APIError) as caught:
        post_raw(fake_hello_retail, "/serve/recoms", body)

    assert caught.value.status == 500
    assert caught.value.code == "INVALID REQUEST"
    assert caught.value.message == "Only one of email, customerId, or trackingUserId can be provided"


async def test_canned_products_follow_the_visitor(client: Any) -> None:
    async def products(**id_argument: Any) -> list[str]:
        answer = await call(client, "recommendations", [{"key": "k"}], **id_argument)
        return [p["productNumber"] for p in answer["responses"][0]["products"]]

    assert await products(tracking_user_id=A) == await products(tracking_user_id=A)
    assert await products(tracking_user_id=A) != await products(tracking_user_id=B)
    assert await products(tracking_user_id=OPT_OUT_ID) == await products(tracking_user_id=None)


# -- lifecycle ----------------------------------------------------------------------


CLIENTS = {"sync": HelloRetailClient, "async": AsyncHelloRetailClient}


@asynccontextmanager
async def entered(client: Any) -> AsyncIterator[Any]:
    """``with client`` or ``async with client``, whichever it is."""
    if isinstance(client, AsyncHelloRetailClient):
        async with client as inside:
            yield inside
    else:
        with client as inside:
            yield inside


@pytest.mark.loopback
@pytest.mark.parametrize("kind", CLIENTS)
async def test_the_client_pools_its_connection_and_closes_it_on_exit(
    fake_hello_retail: FakeHelloRetail, kind: str
) -> None:
    async with entered(CLIENTS[kind].from_settings(fake_hello_retail.settings())) as client:
        await call(client, "track_click", "a", tracking_user_id=A)
        await call(client, "track_click", "b", tracking_user_id=A)
        first, second = fake_hello_retail.api_requests()
        assert first.peer == second.peer  # one pooled keep-alive connection
        assert first.peer in fake_hello_retail.open_peers

    assert client.closed
    assert await anyio.to_thread.run_sync(fake_hello_retail.wait_disconnected, first.peer)
    assert first.peer not in fake_hello_retail.open_peers
    with pytest.raises(RuntimeError, match="closed"):
        await call(client, "track_click", "c", tracking_user_id=A)
    assert len(fake_hello_retail.api_requests()) == 2


def test_from_settings_takes_the_shop_address_and_time_budget(fake_hello_retail: FakeHelloRetail) -> None:
    settings = fake_hello_retail.settings(timeout=0.25)
    with HelloRetailClient.from_settings(settings) as client:
        assert (client.website_uuid, client.api_url, client.timeout) == (W, fake_hello_retail.url, 0.25)
    with HelloRetailClient.from_settings(settings, timeout=3) as client:
        assert client.timeout == 3


def test_a_middleware_s_settings_make_a_client(fake_hello_retail: FakeHelloRetail) -> None:
    middleware = TrackingUserMiddleware(lambda environ, start_response: [], settings=fake_hello_retail.settings())
    try:
        with HelloRetailClient.from_settings(middleware.settings) as client:
            assert client.api_url == fake_hello_retail.url
    finally:
        middleware.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"website_uuid": "shop-1"}, "website_uuid", id="not-a-uuid"),
        pytest.param({"website_uuid": W, "api_url": "core.helloretail.com"}, "api_url", id="no-scheme"),
        pytest.param({"website_uuid": W, "timeout": 0}, "timeout", id="zero-timeout"),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HelloRetailClient(**options)


@pytest.mark.parametrize("requests", ["frontpage", {"key": "frontpage"}], ids=["string", "dict"])
def test_recommendations_want_a_list_of_requests(fake_hello_retail: FakeHelloRetail, requests: Any) -> None:
    with (
        HelloRetailClient.from_settings(fake_hello_retail.settings()) as client,
        pytest.raises(TypeError, match="list"),
    ):
        client.recommendations(requests)


# -- inside a real middleware ---------------------------------------------------------


def test_a_first_visit_s_new_id_reaches_the_call_in_the_same_request(fake_hello_retail: FakeHelloRetail) -> None:
    settings = fake_hello_retail.settings()
    hr = HelloRetailClient.from_settings(settings)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        answer = hr.recommendations([{"key": "frontpage"}])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    middleware = TrackingUserMiddleware(app, settings=settings)
    browser = Client(middleware)
    try:
        browser.get("/", headers=PAGE)
        browser.get("/", headers=PAGE)
    finally:
        middleware.close()
        hr.close()

    (minted,) = fake_hello_retail.minted
    first, second = fake_hello_retail.api_requests("/serve/recoms")
    assert first.json["trackingUserId"] == second.json["trackingUserId"] == minted


@pytest.mark.parametrize("case", ["bot", "mint-failed", "asset"])
def test_a_request_without_an_id_sends_the_opt_out_id_through_a_real_middleware(
    fake_hello_retail: FakeHelloRetail, case: str
) -> None:
    # Hello Retail: always send the real id or the opted-out sentinel, never nothing.
    settings = fake_hello_retail.settings()
    hr = HelloRetailClient.from_settings(settings)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        hr.track_pageview("https://shop.test/")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    if case == "mint-failed":
        fake_hello_retail.mode = Mode.SERVER_ERROR
    middleware = TrackingUserMiddleware(app, settings=settings)
    try:
        response = Client(middleware).get("/", headers={"bot": BOT, "mint-failed": PAGE, "asset": ASSET}[case])
    finally:
        middleware.close()
        hr.close()

    assert response.status_code == 200
    mints = [r for r in fake_hello_retail.requests if r.path == "/serve/trackingUser"]
    assert len(mints) == (1 if case == "mint-failed" else 0)  # asked, and answered 500
    (pageview,) = fake_hello_retail.api_requests()
    assert pageview.json["trackingUserId"] == OPT_OUT_ID


def test_a_document_nested_too_deep_is_an_invalid_response_not_a_crash() -> None:
    from hr_middleware._hello_retail.transport import Answer

    with pytest.raises(InvalidResponseError, match="not JSON"):
        parse_answer(Answer(200, b"[" * 100_000))


# -- the API key and error reporters ------------------------------------------------------------------

#: Characters a URL quotes, so that the key's quoted form is looked for too.
SENTRY_KEY = "Sup3r/Secret+Key=42"
SENTRY_KEY_FORMS = (SENTRY_KEY, "Sup3r%2FSecret%2BKey%3D42", "Sup3r%2fSecret%2bKey%3d42")


def test_the_api_key_reaches_no_sentry_event_breadcrumb_or_frame_variable() -> None:
    # tests/sentry_events.py: real sentry_sdk.init with its default options (local variables and HTTP
    # breadcrumbs on), both clients failing in each way and succeeding, on every call that sends the key.
    done = subprocess.run(
        [sys.executable, "-m", "tests.sentry_events"],
        input=SENTRY_KEY + "\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    captured = json.loads(done.stdout)

    cases = {c["case"] for c in captured}
    assert len(cases) == len(captured) == 40  # one event per call: 2 clients x 5 outcomes x 4 calls
    leaks = [c["case"] for c in captured if any(form in json.dumps(c["event"]) for form in SENTRY_KEY_FORMS)]
    assert leaks == []
    # Not vacuous: the events hold the frame that sent the request, with its variables ...
    errors = [c["event"] for c in captured if "exception" in c["event"]]
    assert {c["case"].split()[1] for c in captured if "exception" in c["event"]} == {
        "refused",
        "timeout",
        "http-500",
        "not-json",
    }
    for event in errors:
        frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
        (sending,) = [f for f in frames if f["function"] == "_send"]
        assert "apiKey=***" in sending["vars"]["request"]
    # ... and the HTTP breadcrumbs Sentry's httpx integration records, with the query redacted.
    queries = {
        crumb["data"].get("http.query")
        for c in captured
        for crumb in c["event"].get("breadcrumbs", {}).get("values", [])
        if crumb.get("type") == "http"
    }
    assert queries == {"apiKey=***"}


@pytest.mark.loopback
async def test_a_cancelled_call_leaves_no_frame_holding_the_key_on_its_traceback(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    # A cancellation (the visitor went away) is not an Exception: it goes on as it is, but the
    # frames it passed through below the client (the transport's, whose variables hold the URL) are cut.
    fake_hello_retail.api_mode = Mode.HANG
    client = AsyncHelloRetailClient.from_settings(fake_hello_retail.settings(timeout=30.0, api_key=SENTRY_KEY))
    seen: list[BaseException] = []

    async def call() -> None:
        try:
            await client.recommendations([{"key": "k"}], customerId="42")
        except BaseException as exc:
            seen.append(exc)
            raise

    task = asyncio.get_running_loop().create_task(call())
    # Until the request reached the fake, which holds it (waited for off the loop, which sends it).
    assert await asyncio.to_thread(fake_hello_retail.wait_for_requests, 1, 30.0)
    assert fake_hello_retail.api_attempts == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    fake_hello_retail.api_mode = Mode.OK
    await client.aclose()

    (cancelled,) = seen
    assert isinstance(cancelled, asyncio.CancelledError)
    frames = [frame for frame, _ in traceback.walk_tb(cancelled.__traceback__)]
    assert [f.f_code.co_name for f in frames][-2:] == ["call", "_send"]  # none of the transport's
    shown = repr([frame.f_locals for frame in frames])
    assert not [form for form in SENTRY_KEY_FORMS if form in shown]
    assert cancelled.__context__ is None
