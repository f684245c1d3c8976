"""Customer linking: the client's call, the fake's answer, and ``link_customer()`` at login over every adapter."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

import pytest

from hr_middleware import OPT_OUT_ID
from hr_middleware._core.customers import LINK_FAILED, CustomerLinks, LinkOutcome, customer_key
from hr_middleware._hello_retail import endpoints
from hr_middleware.client import AsyncHelloRetailClient, HelloRetailClient, tracked
from hr_middleware.customers import current_customer_id, link_customer
from hr_middleware.testing import FakeHelloRetail, Mode

from .drivers import PAGE, Clock, breaker_on
from .ids import LINK, SDK, SERVER, UUID, A, B
from .loops import LOOPS, run_on
from .test_event_loops import settle
from .test_policy import Facts

#: A login: a form post from the page, with the visitor's cookies.
LOGIN = {"User-Agent": PAGE["User-Agent"], "Accept": "text/html", "Sec-Fetch-Dest": "document"}


def declined(request: Any) -> bool:
    return False


def links(fake: FakeHelloRetail) -> list[tuple[str, str]]:
    return list(fake.customer_links)


def link_calls(fake: FakeHelloRetail) -> int:
    return len(fake.api_requests(endpoints.CUSTOMER_LINK))


def login(driver: Any, customer: str, cookies: dict[str, str], path: str = "/login") -> Any:
    return driver.get(f"{path}?customer={customer}", method="POST", headers=LOGIN, cookies=cookies)


# -- the client's call and the fake's answer -------------------------------------------------


def test_the_client_sends_the_id_the_website_and_the_customer_without_the_api_key(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings(api_key="the-shops-key")) as client:
        answer = client.link_customer(53967, tracking_user_id=A)

    assert answer == {"success": True, "message": "Customer linked"}
    (sent,) = fake_hello_retail.api_requests(endpoints.CUSTOMER_LINK)
    assert sent.json == {"trackingUserId": A, "websiteUuid": UUID, "id": "53967"}
    assert sent.query == ""  # no ?apiKey=: the visitor is named by the id
    assert fake_hello_retail.customer_links == [(A, "53967")]


def test_the_async_client_sends_the_same(fake_hello_retail: FakeHelloRetail) -> None:
    async def call() -> Any:
        async with AsyncHelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
            return await client.link_customer("c-1", tracking_user_id=B)

    assert asyncio.run(call())["success"] is True
    (sent,) = fake_hello_retail.api_requests(endpoints.CUSTOMER_LINK)
    assert sent.json == {"trackingUserId": B, "websiteUuid": UUID, "id": "c-1"}
    assert fake_hello_retail.customer_links == [(B, "c-1")]


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        pytest.param(
            {"trackingUserId": "not-an-id", "websiteUuid": UUID, "id": "1"},
            400,
            {"success": False, "message": "Invalid trackingUserId: must be 24-character hex string"},
            id="malformed-id",
        ),
        pytest.param(
            {"trackingUserId": A, "websiteUuid": UUID},
            400,
            {"success": False, "message": "id is required"},
            id="no-customer",
        ),
        pytest.param(
            {"trackingUserId": A, "id": "1"},
            400,
            {"success": False, "message": "websiteUuid is required"},
            id="no-website",
        ),
        pytest.param(
            {"trackingUserId": OPT_OUT_ID, "websiteUuid": UUID, "id": "1"},
            200,
            {"success": True, "message": "Not tracked for anonymous user"},
            id="opted-out",
        ),
    ],
)
def test_the_fake_refuses_what_it_cannot_link(
    body: dict[str, Any], status: int, answer: dict[str, Any], fake_hello_retail: FakeHelloRetail
) -> None:
    from hr_middleware._hello_retail.transport import SyncTransport

    transport = SyncTransport()
    try:
        got = transport.post(fake_hello_retail.url + endpoints.CUSTOMER_LINK, json.dumps(body).encode(), timeout=5)
    finally:
        transport.close()

    assert (got.status, got.json()) == (status, answer)
    assert fake_hello_retail.customer_links == []
    assert not tracked(got.json())


@pytest.mark.parametrize("customer_id", [None, True, 1.5, b"7"])
def test_a_customer_id_that_is_not_one_is_the_callers_bug(customer_id: Any) -> None:
    with pytest.raises(TypeError, match="customer_id"):
        customer_key(customer_id)


@pytest.mark.parametrize("customer_id", ["", "x" * 257])
def test_an_empty_or_huge_customer_id_is_refused(customer_id: str) -> None:
    with pytest.raises(ValueError, match="customer_id"):
        customer_key(customer_id)


# -- the link cookie -----------------------------------------------------------------------


def test_the_link_cookie_never_holds_the_customer_id_and_is_keyed_with_the_secret_key(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    plain = CustomerLinks(fake_hello_retail.settings())
    keyed = CustomerLinks(fake_hello_retail.settings(secret_key="a-secret-key-of-some-length"))
    rotated = CustomerLinks(
        fake_hello_retail.settings(secret_key=["a-newer-secret-key-123", "a-secret-key-of-some-length"])
    )
    request = Facts(f"{LINK}={keyed.digest(A, '53967')}")

    digests = {plain.digest(A, "53967"), keyed.digest(A, "53967"), plain.digest(B, "53967"), plain.digest(A, "53968")}
    assert len(digests) == 4  # the visitor, the customer and the key each change it
    assert all("53967" not in d and A not in d and len(d) == 24 for d in digests)
    # A link remembered under the previous key still counts after rotation.
    assert rotated.decide(request, {}, A, None, "53967").outcome is LinkOutcome.ALREADY_LINKED
    assert plain.decide(request, {}, A, None, "53967").outcome is None  # another key: not this link


# -- link_customer() at login, over every adapter --------------------------------------------


def test_a_login_links_once_and_later_logins_and_pages_do_not_call_again(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter)
    cookies = {SERVER: A, SDK: A}

    first = login(driver, "53967", cookies)

    assert (first.status, first.seen["link"], first.seen["customer"]) == (200, "linked", "53967")
    assert fake_hello_retail.customer_links == [(A, "53967")]
    written = first.set_cookies[LINK]
    assert "53967" not in written.raw
    assert "httponly" in written.attributes
    assert first.header("cache-control") == "private"
    cookies[LINK] = written.value

    for _ in range(3):
        again = login(driver, "53967", cookies)
        page = driver.get("/", cookies=cookies)
        assert again.seen["link"] == "already_linked"
        assert (again.status, page.status) == (200, 200)
        assert LINK not in again.set_cookies
    assert link_calls(fake_hello_retail) == 1

    other = login(driver, "70001", cookies)  # another customer on this browser

    assert other.seen["link"] == "linked"
    assert fake_hello_retail.customer_links == [(A, "53967"), (A, "70001")]


def test_an_opted_out_visitor_is_never_linked(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter, consent=declined)
    plain = CustomerLinks(fake_hello_retail.settings())

    result = login(driver, "53967", {SERVER: A, SDK: A, LINK: plain.digest(A, "53967")})

    assert result.seen["id"] == OPT_OUT_ID
    assert (result.seen["link"], result.seen["customer"]) == ("opted_out", None)
    assert fake_hello_retail.requests == []  # not a single call to Hello Retail
    assert result.set_cookies[LINK].deleted  # a link remembered from before the visitor declined goes


def test_a_visitor_without_an_id_is_linked_at_a_later_login(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter)

    result = login(driver, "53967", {})  # a form post mints nothing, and there is no cookie yet

    assert (result.seen["link"], result.seen["customer"]) == ("no_id", "53967")
    assert fake_hello_retail.requests == []
    assert LINK not in result.set_cookies
    assert login(driver, "53967", {SERVER: A, SDK: A}).seen["link"] == "linked"


@pytest.mark.parametrize("failure", [Mode.SERVER_ERROR, Mode.HANG, Mode.NOT_JSON, Mode.SUCCESS_FALSE])
def test_hello_retail_down_serves_the_login_and_the_next_login_links(
    adapter: str, failure: Mode, make_driver: Any, fake_hello_retail: FakeHelloRetail, hr_log: Any
) -> None:
    driver = make_driver(adapter, timeout=0.2)
    fake_hello_retail.api_mode = failure

    failed = login(driver, "53967", {SERVER: A, SDK: A})

    assert (failed.status, failed.seen["link"]) == (200, "failed")
    assert LINK not in failed.set_cookies  # nothing remembered: tried again later
    assert fake_hello_retail.customer_links == []
    warnings = [r for r in hr_log.records if r.levelno == logging.WARNING and r.msg == LINK_FAILED]
    assert len(warnings) == 1
    assert "53967" not in warnings[0].getMessage()

    fake_hello_retail.api_mode = Mode.OK
    assert login(driver, "53967", {SERVER: A, SDK: A}).seen["link"] == "linked"
    assert fake_hello_retail.customer_links == [(A, "53967")]


def test_an_open_circuit_skips_the_call(adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver(adapter, breaker_threshold=1)
    breaker = breaker_on(driver, Clock())
    breaker.record_failure()  # the mints found Hello Retail down

    result = login(driver, "53967", {SERVER: A, SDK: A})

    assert (result.status, result.seen["link"]) == (200, "failed")
    assert fake_hello_retail.requests == []


# A returning visitor's visit keeps no event loop (the hot path stays as it is): its link is sent
# on a loop of the worker thread's own. A visit that went the long way (here: the SDK cookie is
# written) keeps the request's loop, and the link is sent there.
@pytest.mark.parametrize(
    "cookies",
    [pytest.param({SERVER: A, SDK: A}, id="returning-own-loop"), pytest.param({SERVER: A}, id="request-loop")],
)
def test_a_sync_endpoint_of_an_async_app_links_through_the_loop(
    cookies: dict[str, str], make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    result = login(make_driver("asgi"), "53967", cookies, path="/login-sync")

    assert result.seen["link"] == "linked"
    assert fake_hello_retail.customer_links == [(A, "53967")]


@pytest.mark.loopback
@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(f"{SERVER}={A}; {SDK}={A}", id="returning-own-loop"),
        pytest.param(f"{SERVER}={A}", id="request-loop"),
    ],
)
def test_sync_links_with_a_loop_per_request_on_asyncio_and_uvloop_leave_no_connection_open(
    loop: str, cookie: str, fake_hello_retail: FakeHelloRetail
) -> None:
    """Each request on a loop of its own (as asgiref, a test client or a bridge may run them), on
    asyncio's loop and on uvloop (uvicorn's default): the link is sent, and the connection it
    opened closes with its loop (the request's, or the worker thread's own)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from hr_middleware.asgi import TrackingUserMiddleware

    def sync_login(request: Request) -> PlainTextResponse:  # run in a worker thread
        return PlainTextResponse(str(link_customer(request.query_params["customer"])))

    middleware = TrackingUserMiddleware(
        Starlette(routes=[Route("/login", sync_login, methods=["POST"])]),
        # No renewal: the bare ids of the cookies are then a returning visitor's. The timeout is
        # a budget only: a loaded machine may be slow.
        settings=fake_hello_retail.settings(timeout=5.0, renew_after=None),
    )

    async def one(customer: int) -> str:
        transport = httpx.ASGITransport(app=middleware)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            response = await client.post(f"/login?customer={customer}", headers={**LOGIN, "Cookie": cookie})
            return response.text

    outcomes = [run_on(loop, functools.partial(one, customer)) for customer in (70001, 70002, 70003)]
    still_open = settle(fake_hello_retail)

    assert outcomes == ["linked"] * 3
    assert fake_hello_retail.customer_links == [(A, "70001"), (A, "70002"), (A, "70003")]
    assert still_open == set()


def test_the_blocking_link_on_the_event_loop_of_an_async_app_raises(fake_hello_retail: FakeHelloRetail) -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from hr_middleware.asgi import TrackingUserMiddleware

    async def wrong_login(request: Request) -> PlainTextResponse:
        try:
            link_customer(7)  # the shop's bug: blocking on the loop; it must say so, not hang the loop
        except RuntimeError as exc:
            return PlainTextResponse(str(exc))
        return PlainTextResponse("no error")

    middleware = TrackingUserMiddleware(
        Starlette(routes=[Route("/login", wrong_login, methods=["POST"])]), settings=fake_hello_retail.settings()
    )

    async def post() -> str:
        transport = httpx.ASGITransport(app=middleware)  # type: ignore[arg-type]
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
                response = await client.post("/login", headers={**LOGIN, "Cookie": f"{SERVER}={A}; {SDK}={A}"})
                return response.text
        finally:
            await middleware.aclose()

    text = asyncio.run(post())

    assert "await alink_customer()" in text
    assert fake_hello_retail.requests == []


def test_two_links_in_one_request_call_once(fake_hello_retail: FakeHelloRetail) -> None:
    from hr_middleware.wsgi import TrackingUserMiddleware

    from .drivers import wsgi_send

    outcomes = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        outcomes.extend([link_customer(7), link_customer("7"), current_customer_id()])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    try:
        wsgi_send(middleware, "POST", "/login", LOGIN, f"{SERVER}={A}; {SDK}={A}", "http")
    finally:
        middleware.close()

    assert outcomes == [LinkOutcome.LINKED, LinkOutcome.ALREADY_LINKED, "7"]
    assert link_calls(fake_hello_retail) == 1


def test_outside_a_request_nothing_is_done(fake_hello_retail: FakeHelloRetail) -> None:
    assert link_customer(7) is LinkOutcome.OUTSIDE_REQUEST
    assert current_customer_id() is None
    assert fake_hello_retail.requests == []


# consent origin, id, link cookie held -> outcome, cookie written ("set", "deleted" or None)
DECISIONS = [
    pytest.param(None, A, None, None, "set", id="first-link"),
    pytest.param(None, A, "held", LinkOutcome.ALREADY_LINKED, None, id="remembered"),
    pytest.param(None, A, "1.junk", None, "set", id="junk-cookie-links-again"),
    pytest.param(None, None, None, LinkOutcome.NO_ID, None, id="no-id"),
    pytest.param("opt_out", OPT_OUT_ID, None, LinkOutcome.OPTED_OUT, None, id="opted-out"),
    pytest.param("opt_out", OPT_OUT_ID, "held", LinkOutcome.OPTED_OUT, "deleted", id="opted-out-forgets"),
]


@pytest.mark.parametrize(("origin", "tracking_user_id", "held", "outcome", "written"), DECISIONS)
def test_the_link_decision(
    origin: str | None,
    tracking_user_id: str | None,
    held: str | None,
    outcome: LinkOutcome | None,
    written: str | None,
    fake_hello_retail: FakeHelloRetail,
) -> None:
    from hr_middleware import Origin

    links = CustomerLinks(fake_hello_retail.settings())
    value = links.digest(A, "53967") if held == "held" else held
    request = Facts(f"{LINK}={value}" if value is not None else "", scheme="https")

    plan = links.decide(request, {}, tracking_user_id, Origin(origin) if origin else None, "53967")

    assert plan.outcome is outcome
    if written is None:
        assert plan.cookie is None
    else:
        assert plan.cookie is not None
        assert plan.cookie.secure  # as the id cookies: Secure over https
        assert plan.cookie.deletes is (written == "deleted")


@pytest.mark.loopback
@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_link_over_the_transports_sockets(adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver(adapter)

    result = login(driver, "53967", {SERVER: A, SDK: A})

    assert result.seen["link"] == "linked"
    (sent,) = fake_hello_retail.api_requests(endpoints.CUSTOMER_LINK)
    assert sent.peer is not None  # over a socket, not in memory
    assert fake_hello_retail.customer_links == [(A, "53967")]


def test_a_request_the_middleware_could_not_serve_has_no_id_to_link(fake_hello_retail: FakeHelloRetail) -> None:
    from hr_middleware._serving import Visit, enter, leave

    token = enter(Visit.failed())  # as a request is served when deciding it failed
    try:
        assert link_customer(7) is LinkOutcome.NO_ID
    finally:
        leave(token)
    assert fake_hello_retail.requests == []
