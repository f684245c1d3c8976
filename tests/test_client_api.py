"""What a shop's backend needs from the client: the API key (sent only where needed, never shown),
page views by location, JSON pages, tracked-or-not, string error codes, paging and facets."""

from __future__ import annotations

import dataclasses
import logging
import traceback
import typing
from typing import Any

import anyio
import pytest
from flask import Flask

from hr_middleware import OPT_OUT_ID, Settings
from hr_middleware._hello_retail.errors import (
    APIError,
    HelloRetailError,
    InvalidResponseError,
    RequestTimeoutError,
    TransportError,
)
from hr_middleware.client import (
    AsyncHelloRetailClient,
    Facet,
    FacetValue,
    HelloRetailClient,
    Paging,
    PreparedRequest,
    facets,
    next_page,
    paging,
    tracked,
    with_filter,
)
from hr_middleware.django import read_settings
from hr_middleware.flask import HelloRetail
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode

from .ids import A
from .servers import free_port

# Characters that a URL would quote, so that every written form of it is looked for.
SECRET = "Sup3r/Secret+Key=42"
SECRET_FORMS = (SECRET, "Sup3r%2FSecret%2BKey%3D42")


def assert_no_secret(text: str) -> None:
    for form in SECRET_FORMS:
        assert form not in text


# -- the option ------------------------------------------------------------------------


def test_the_api_key_is_an_option_of_settings_flask_and_django(fake_hello_retail: FakeHelloRetail) -> None:
    app = Flask("shop")
    app.config.update(
        HELLO_RETAIL_WEBSITE_UUID=DEFAULT_WEBSITE_UUID,
        HELLO_RETAIL_API_URL=fake_hello_retail.url,
        HELLO_RETAIL_API_KEY=SECRET,
    )
    HelloRetail(app)
    django = read_settings({"WEBSITE_UUID": DEFAULT_WEBSITE_UUID, "API_KEY": SECRET})

    assert HelloRetail.settings(app).api_key == django.api_key == SECRET
    assert Settings(website_uuid=DEFAULT_WEBSITE_UUID).api_key is None
    with HelloRetailClient.from_settings(HelloRetail.settings(app)) as client:
        client.recommendations([{"key": "k"}], customerId="42")
    (request,) = fake_hello_retail.api_requests("/serve/recoms")
    assert request.params == {"apiKey": SECRET}


@pytest.mark.parametrize("bad", ["", "two words", "tab\there", "line\nbreak"], ids=repr)
def test_a_bad_api_key_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(ValueError, match="api_key") as caught:
        Settings(website_uuid=DEFAULT_WEBSITE_UUID, api_key=bad)
    if bad:
        assert bad not in str(caught.value)
    with pytest.raises(TypeError, match="api_key"):
        Settings(website_uuid=DEFAULT_WEBSITE_UUID, api_key=12345)  # type: ignore[arg-type]


def test_the_api_key_is_in_no_repr(fake_hello_retail: FakeHelloRetail) -> None:
    settings = fake_hello_retail.settings(api_key=SECRET)
    with HelloRetailClient.from_settings(settings) as client:
        prepared = client._prepare(client_endpoint(), {"requests": [], "customerId": "42"}, None)
        assert SECRET_FORMS[1] in prepared.url  # it is there to be sent (URL-quoted) ...
        for shown in (repr(settings), str(settings), repr(client), repr(prepared), str(prepared)):
            assert_no_secret(shown)  # ... and shown nowhere
    assert [f.name for f in dataclasses.fields(Settings) if f.name == "api_key" and not f.repr] == ["api_key"]
    assert isinstance(prepared, PreparedRequest)


def client_endpoint() -> Any:
    from hr_middleware.client import RECOMMENDATIONS

    return RECOMMENDATIONS


# -- sent only where the visitor is named by email or customerId ---------------------------

CALLS = [
    pytest.param("recommendations", ([{"key": "k"}],), {"customerId": "42"}, True, id="recoms-customer-id"),
    pytest.param("recommendations", ([{"key": "k"}],), {"email": "a@shop.test"}, True, id="recoms-email"),
    pytest.param("recommendations", ([{"key": "k"}],), {"tracking_user_id": A}, False, id="recoms-id"),
    pytest.param("track_pageview", ("https://shop.test/",), {"customerId": "42"}, True, id="pageview-customer-id"),
    pytest.param("track_pageview", ("https://shop.test/",), {"tracking_user_id": A}, False, id="pageview-id"),
    pytest.param("track_click", ("code",), {"customerId": "42", "tracking_user_id": None}, True, id="click-customer"),
    pytest.param("track_cart", (), {"customerId": "42", "tracking_user_id": None}, True, id="cart-customer-id"),
    pytest.param("track_cart", (), {"tracking_user_id": A, "total": 1}, False, id="cart-id"),
    pytest.param("track_conversion", (), {"email": "a@shop.test", "tracking_user_id": None}, False, id="conv-email"),
    pytest.param("track_conversion", (), {"email": "a@shop.test", "tracking_user_id": A}, False, id="conv-id-email"),
    pytest.param("track_cart", (), {"email": "a@shop.test", "tracking_user_id": A}, False, id="cart-id-email"),
    pytest.param("track_conversion", (), {"customerId": "42", "email": "a@shop.test"}, True, id="conv-customer"),
    pytest.param("customer_bias", (["brand"],), {"tracking_user_id": A}, False, id="bias-id"),
    pytest.param("search", ("key", "q"), {"customerId": "42", "tracking_user_id": A}, False, id="search-never"),
    pytest.param("page", ("key", "https://shop.test/"), {"customerId": "42"}, False, id="page-never"),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "sent"), CALLS)
def test_the_api_key_goes_only_where_the_identity_needs_it(
    fake_hello_retail: FakeHelloRetail, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], sent: bool
) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings(api_key=SECRET)) as client:
        getattr(client, method)(*args, **kwargs)

    (request,) = fake_hello_retail.api_requests()
    assert request.params == ({"apiKey": SECRET} if sent else {})
    assert (SECRET_FORMS[1] in request.query) is sent


def test_without_an_api_key_hello_retail_denies_recommendations_and_does_not_track(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        with pytest.raises(APIError) as caught:
            client.recommendations([{"key": "k"}], customerId="42")
        cart = client.track_cart(customerId="42", productNumbers=["1"], tracking_user_id=None)
        with_id = client.track_cart(productNumbers=["1"], tracking_user_id=A)

    assert (caught.value.status, caught.value.code) == (500, "ACCESS DENIED")
    assert caught.value.message is not None
    assert "email or customerId" in caught.value.message
    assert cart == {"success": True, "message": "Not tracked for anonymous user"}
    assert not tracked(cart)
    assert tracked(with_id)
    assert with_id == {"success": True, "message": "Cart tracked"}


# -- never in an exception, a traceback or a log line ------------------------------------


def call_failing(client: Any) -> Any:
    return client.recommendations([{"key": "k"}], customerId="42")


@pytest.mark.parametrize("failure", ["refused", "timeout", "http-500", "not-json"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_api_key_is_in_no_exception_traceback_or_log_line(
    fake_hello_retail: FakeHelloRetail, caplog: pytest.LogCaptureFixture, failure: str, kind: str
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the HTTP libraries' too
    api_url = f"http://127.0.0.1:{free_port()}" if failure == "refused" else fake_hello_retail.url
    fake_hello_retail.api_mode = {"timeout": Mode.HANG, "http-500": Mode.SERVER_ERROR, "not-json": Mode.NOT_JSON}.get(
        failure, Mode.OK
    )
    options = {"website_uuid": DEFAULT_WEBSITE_UUID, "api_url": api_url, "timeout": 0.3, "api_key": SECRET}
    expected = {"refused": TransportError, "timeout": RequestTimeoutError, "http-500": APIError}.get(
        failure, InvalidResponseError
    )

    if kind == "sync":
        with HelloRetailClient(**options) as client, pytest.raises(expected) as caught:
            call_failing(client)
    else:

        async def go() -> None:
            async with AsyncHelloRetailClient(**options) as client:
                await call_failing(client)

        with pytest.raises(expected) as caught:
            anyio.run(go)
    fake_hello_retail.api_mode = Mode.OK  # free a hanging handler

    error = caught.value
    assert isinstance(error, HelloRetailError)
    assert_no_secret(str(error))
    assert_no_secret(repr(error))
    assert_no_secret("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    assert_no_secret(repr(vars(error)))
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_no_secret(caplog.text)
    assert_no_secret(repr([(r.msg, r.args) for r in caplog.records]))


@pytest.mark.loopback
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_http_libraries_log_lines_show_the_url_without_the_key(
    fake_hello_retail: FakeHelloRetail, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG)
    options = {"website_uuid": DEFAULT_WEBSITE_UUID, "api_url": fake_hello_retail.url, "api_key": SECRET}
    if kind == "sync":
        with HelloRetailClient(**options) as client:
            call_failing(client)
    else:

        async def go() -> None:
            async with AsyncHelloRetailClient(**options) as client:
                await call_failing(client)

        anyio.run(go)

    assert fake_hello_retail.api_requests()[0].params == {"apiKey": SECRET}  # it was sent
    assert "/serve/recoms?apiKey=***" in caplog.text  # urllib3 (DEBUG) and httpx (INFO) log the URL
    assert_no_secret(caplog.text)


# -- page views, pages, tracked ----------------------------------------------------------


def test_track_pageview_sends_the_page_as_location_and_the_canonical_url_only_when_it_differs(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        first = client.track_pageview(
            "https://shop.test/p/1?utm_source=mail",
            url="https://shop.test/p/1",
            referrer="https://shop.test/",
            product_number="1001",
            tracking_user_id=A,
        )
        client.track_pageview("https://shop.test/p/1", url="https://shop.test/p/1", tracking_user_id=A)

    one, two = fake_hello_retail.api_requests("/serve/collect/pageview")
    assert one.json == {
        "location": "https://shop.test/p/1?utm_source=mail",
        "url": "https://shop.test/p/1",
        "referrer": "https://shop.test/",
        "productNumber": "1001",
        "websiteUuid": DEFAULT_WEBSITE_UUID,
        "trackingUserId": A,
    }
    assert two.json == {"location": "https://shop.test/p/1", "websiteUuid": DEFAULT_WEBSITE_UUID, "trackingUserId": A}
    assert first == {"success": True, "message": "Page view tracked"}
    assert tracked(first)


def test_page_asks_for_json_unless_told_otherwise(fake_hello_retail: FakeHelloRetail) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        data = client.page("category", "https://shop.test/c", tracking_user_id=A, firstLoad=True)
        rendered = client.page("category", "https://shop.test/c", tracking_user_id=A, format="html")

    assert [r.json["format"] for r in fake_hello_retail.api_requests()] == ["json", "html"]
    assert data["products"]["html"] is None
    assert len(data["products"]["result"]) == 10
    assert data["firstLoad"] is True
    assert data["errors"] == []
    assert isinstance(rendered["products"]["html"], str)
    assert rendered["firstLoad"] is True  # a first load by default, whatever the format


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"success": True, "message": "Cart tracked"}, True),
        ({"success": True, "message": "Page view tracked"}, True),
        ({"success": True}, True),
        ({"success": True, "message": "Not tracked for anonymous user"}, False),
        ({"success": False, "message": "Website not found"}, False),
        ("Not tracked for anonymous user", False),
        (None, False),
    ],
)
def test_tracked(answer: Any, expected: bool) -> None:
    assert tracked(answer) is expected


# -- paging and facets -------------------------------------------------------------------


def test_paging_through_a_search_to_the_last_page(fake_hello_retail: FakeHelloRetail) -> None:
    query: Any = {"start": 0, "count": 30, "fields": ["title", "url"]}
    pages = []
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        while query is not None:
            answer = client.search("search-key", "shoes", tracking_user_id=A, products=query)
            pages.append((paging(answer), len(answer["products"]["results"])))
            query = next_page(query, answer)

    assert pages == [
        (Paging(0, 30, 100), 30),
        (Paging(30, 30, 100), 30),
        (Paging(60, 30, 100), 30),
        (Paging(90, 30, 100), 10),
    ]
    assert [p.page for p, _ in pages] == [1, 2, 3, 4]
    assert {p.pages for p, _ in pages} == {4}
    assert [p.has_next for p, _ in pages] == [True, True, True, False]
    assert [r.json["products"]["fields"] for r in fake_hello_retail.api_requests()] == [["title", "url"]] * 4


def test_paging_reads_page_answers_too(fake_hello_retail: FakeHelloRetail) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        answer = client.page("category", "https://shop.test/c", tracking_user_id=A, products={"start": 96, "count": 8})

    assert paging(answer) == Paging(96, 8, 100)
    assert not paging(answer).has_next
    assert next_page({"start": 96, "count": 8}, answer) is None
    assert paging({"products": {"start": 0, "count": 0, "total": 0}}).pages == 1
    with pytest.raises(InvalidResponseError):
        paging({"success": True}, "categories")


def test_a_facet_query_is_the_next_filter(fake_hello_retail: FakeHelloRetail) -> None:
    query: Any = {"start": 20, "count": 10, "returnFilters": True}
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        first = client.search("search-key", "shoes", tracking_user_id=A, products=query)
        brand = next(f for f in facets(first) if f.name == "brand")
        acme = brand.values[0]
        query = with_filter(query, acme.query)
        second = client.search("search-key", "shoes", tracking_user_id=A, products=query)

    assert acme == FacetValue("Acme", 25, "brand:Acme", False)
    assert query == {"start": 0, "count": 10, "returnFilters": True, "filters": ["brand:Acme"]}
    assert fake_hello_retail.api_requests()[1].json["products"]["filters"] == ["brand:Acme"]
    assert paging(second).total < paging(first).total
    assert next(f for f in facets(second) if f.name == "brand").values[0].selected
    price = next(f for f in facets(second) if f.type == "RANGE")
    assert price == Facet("price", "RANGE", "Price", (), "5.0", "205.0")
    assert with_filter(query, "brand:Acme")["filters"] == []  # a second time: off again


def test_facets_skip_what_is_not_a_facet() -> None:
    answer = {"products": {"filters": [None, {"title": "no name"}, {"name": "size", "values": [{"title": "M"}]}]}}
    assert facets(answer) == [Facet("size", "LIST", "size", ())]
    assert facets({"products": {}}) == []


def test_facets_keep_a_range_s_selected_bounds_and_the_settings_texts() -> None:
    # Shapes from Hello Retail's pages and search notes: a RANGE facet may carry the visitor's
    # selectedMin/selectedMax next to min/max (numeric strings); page facet settings carry
    # filteringText and negatedFilteringText.
    answer = {
        "products": {
            "filters": [
                {
                    "name": "price",
                    "settings": {"name": "price", "type": "RANGE", "title": "Price"},
                    "min": "5.0",
                    "max": "205.0",
                    "selectedMin": "10",
                    "selectedMax": 50.5,
                },
                {
                    "name": "hierarchies",
                    "settings": {
                        "name": "hierarchies",
                        "type": "LIST",
                        "title": "Categories",
                        "filteringText": "Showing",
                        "negatedFilteringText": "",
                    },
                    "values": [
                        {"title": "snowboard$", "count": 5, "query": "hierarchies:snowboard$", "selected": False}
                    ],
                },
                {"name": "weight", "settings": {"type": "RANGE"}, "min": "1", "max": "9", "selectedMin": True},
            ]
        }
    }
    price, hierarchies, weight = facets(answer)

    assert (price.min, price.max, price.selected_min, price.selected_max) == ("5.0", "205.0", "10", "50.5")
    assert (price.filtering_text, price.negated_filtering_text) == (None, None)
    assert (hierarchies.selected_min, hierarchies.selected_max) == (None, None)
    assert (hierarchies.filtering_text, hierarchies.negated_filtering_text) == ("Showing", "")
    assert weight.selected_min is None  # not a number: dropped, as min/max are
    assert Facet("price", "RANGE", "Price", (), "5.0", "205.0") == dataclasses.replace(
        price, selected_min=None, selected_max=None
    )


# -- firstLoad on pages ---------------------------------------------------------------------

FIRST_LOADS = [
    pytest.param({}, True, id="first-load"),
    pytest.param({"products": {"start": 0, "count": 24, "filters": [], "sorting": []}}, True, id="empty-lists"),
    pytest.param({"params": {"filters": {"hierarchies": ["shoes"]}}}, True, id="the-page-s-own-filter"),
    pytest.param({"products": {"start": 24, "count": 24}}, False, id="paging"),
    pytest.param({"products": {"start": 0, "count": 24, "filters": ["brand:Acme"]}}, False, id="filtering"),
    pytest.param({"products": {"start": 0, "count": 24, "sorting": ["price asc"]}}, False, id="sorting"),
    pytest.param({"products": {"start": 24, "count": 24}, "first_load": True}, True, id="explicit-true-wins"),
    pytest.param({"first_load": False}, False, id="explicit-false-wins"),
    pytest.param({"products": {"start": 24}, "firstLoad": True}, True, id="body-field-wins"),
]


@pytest.mark.parametrize(("arguments", "first_load"), FIRST_LOADS)
def test_a_page_s_first_load_is_tracked_and_paging_or_filtering_is_not(
    fake_hello_retail: FakeHelloRetail, arguments: dict[str, Any], first_load: bool
) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        answer = client.page("category", "https://shop.test/c", tracking_user_id=A, **arguments)

    (request,) = fake_hello_retail.api_requests()
    assert request.json["firstLoad"] is first_load
    assert answer["firstLoad"] is first_load
    assert bool(answer["products"]["filters"]) is first_load  # facets come with the first load only


def test_the_helpers_queries_are_not_first_loads(fake_hello_retail: FakeHelloRetail) -> None:
    query: Any = {"start": 0, "count": 50}
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        first = client.page("category", "https://shop.test/c", tracking_user_id=A, products=query)
        following = next_page(query, first)
        client.page("category", "https://shop.test/c", tracking_user_id=A, products=following)
        filtered = with_filter(query, "brand:Acme")
        client.page("category", "https://shop.test/c", tracking_user_id=A, products=filtered)
        # The filter toggled off again: back to page 1 without filters, still not a first load.
        unfiltered = with_filter(filtered, "brand:Acme")
        client.page("category", "https://shop.test/c", tracking_user_id=A, products=unfiltered)

    assert unfiltered == {"start": 0, "count": 50, "filters": []}
    assert [r.json["firstLoad"] for r in fake_hello_retail.api_requests()] == [True, False, False, False]


def test_first_load_given_twice_is_refused(fake_hello_retail: FakeHelloRetail) -> None:
    client = HelloRetailClient.from_settings(fake_hello_retail.settings())
    with client, pytest.raises(TypeError, match="not both"):
        client.page("category", "https://shop.test/c", first_load=True, firstLoad=True)
    assert fake_hello_retail.api_requests() == []


# -- customer bias ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_customer_bias(fake_hello_retail: FakeHelloRetail, kind: str) -> None:
    settings = fake_hello_retail.settings()
    if kind == "sync":
        with HelloRetailClient.from_settings(settings) as client:
            answer = client.customer_bias(["brand", "color"], number_of_values=3, tracking_user_id=A)
            again = client.customer_bias(["brand", "color"], number_of_values=3, tracking_user_id=A)
            anonymous = client.customer_bias(["brand"], tracking_user_id=None)
    else:

        async def go() -> tuple[Any, Any, Any]:
            async with AsyncHelloRetailClient.from_settings(settings) as client:
                return (
                    await client.customer_bias(["brand", "color"], number_of_values=3, tracking_user_id=A),
                    await client.customer_bias(["brand", "color"], number_of_values=3, tracking_user_id=A),
                    await client.customer_bias(["brand"], tracking_user_id=None),
                )

        answer, again, anonymous = anyio.run(go)

    first, _, third = fake_hello_retail.api_requests("/serve/customer/bias")
    assert first.json == {
        "websiteUuid": DEFAULT_WEBSITE_UUID,
        "trackingUserId": A,
        "fields": ["brand", "color"],
        "numberOfValues": 3,
    }
    assert third.json == {"websiteUuid": DEFAULT_WEBSITE_UUID, "trackingUserId": OPT_OUT_ID, "fields": ["brand"]}
    assert first.query == ""
    assert answer["success"] is True
    assert sorted(answer["bias"]) == ["brand", "color"]
    assert all(1 <= len(values) <= 3 for values in answer["bias"].values())
    assert answer == again  # the same visitor leans the same way every time
    assert anonymous == {"success": True, "bias": {"brand": []}}  # nothing known of an opted-out visitor


def test_customer_bias_wants_a_list_of_fields(fake_hello_retail: FakeHelloRetail) -> None:
    client = HelloRetailClient.from_settings(fake_hello_retail.settings())
    with client, pytest.raises(TypeError, match="fields"):
        client.customer_bias("brand", tracking_user_id=A)
    assert fake_hello_retail.api_requests() == []


# -- extra query parameters: apiLogTag ---------------------------------------------------------

EVERY_CALL = [
    pytest.param("recommendations", ([{"key": "k"}],), id="recommendations"),
    pytest.param("search", ("key", "q"), id="search"),
    pytest.param("page", ("key", "https://shop.test/"), id="page"),
    pytest.param("track_pageview", ("https://shop.test/",), id="pageview"),
    pytest.param("track_click", ("code",), id="click"),
    pytest.param("track_cart", (), id="cart"),
    pytest.param("track_conversion", (), id="conversion"),
    pytest.param("customer_bias", (["brand"],), id="customer-bias"),
    pytest.param("link_customer", ("customer-7",), id="link-customer"),
]


@pytest.mark.parametrize(("method", "args"), EVERY_CALL)
def test_every_call_takes_an_api_log_tag(
    fake_hello_retail: FakeHelloRetail, method: str, args: tuple[Any, ...]
) -> None:
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        getattr(client, method)(*args, tracking_user_id=A, api_log_tag="checkout & more")
        getattr(client, method)(*args, tracking_user_id=A)

    tagged, untagged = fake_hello_retail.api_requests()
    assert tagged.params == {"apiLogTag": "checkout & more"}
    assert untagged.query == ""
    assert "apiLogTag" not in tagged.json
    assert "api_log_tag" not in tagged.json


@pytest.mark.loopback  # the HTTP library's own log line of the URL
def test_a_client_wide_api_log_tag_and_the_key_go_together_and_the_key_is_not_logged(
    fake_hello_retail: FakeHelloRetail, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs each URL
    settings = fake_hello_retail.settings(api_key=SECRET)
    with HelloRetailClient.from_settings(settings, api_log_tag="backend") as client:
        client.recommendations([{"key": "k"}], customerId="42")
        client.recommendations([{"key": "k"}], customerId="42", api_log_tag="login")
        client.track_click("code", tracking_user_id=A)

    both, overridden, click = fake_hello_retail.api_requests()
    assert both.params == {"apiKey": SECRET, "apiLogTag": "backend"}
    assert overridden.params == {"apiKey": SECRET, "apiLogTag": "login"}
    assert click.params == {"apiLogTag": "backend"}
    assert "apiLogTag=backend" in caplog.text
    assert "apiKey=***" in caplog.text
    assert_no_secret(caplog.text)


@pytest.mark.parametrize(("tag", "error"), [("", ValueError), (42, TypeError)], ids=repr)
def test_a_bad_api_log_tag_is_refused_before_sending(fake_hello_retail: FakeHelloRetail, tag: Any, error: type) -> None:
    client = HelloRetailClient.from_settings(fake_hello_retail.settings())
    with client, pytest.raises(error, match="api_log_tag"):
        client.search("key", "q", api_log_tag=tag)
    with pytest.raises(error, match="api_log_tag"):
        HelloRetailClient.from_settings(fake_hello_retail.settings(), api_log_tag=tag)
    assert fake_hello_retail.api_requests() == []


# -- typed fields for the documented options ----------------------------------------------------


def test_the_documented_options_are_typed_and_sent_untouched(fake_hello_retail: FakeHelloRetail) -> None:
    from hr_middleware import client as module

    typed = {
        name: set(typing.get_type_hints(getattr(module, name)))
        for name in (
            "RecommendationRequest",
            "RecommendationsBody",
            "ProductsQuery",
            "SearchBody",
            "PageBody",
            "CartBody",
        )
    }
    assert {"hideAdditionalVariants"} <= typed["RecommendationRequest"]
    assert {"includeRetailMediaInReview"} <= typed["RecommendationsBody"]
    assert {"excludeSiblingFilters", "returnInitialContent"} <= typed["ProductsQuery"]
    assert {"id", "includeRetailMediaInReview"} <= typed["SearchBody"]
    assert {"id", "layout", "includeRetailMediaInReview"} <= typed["PageBody"]
    assert {"email", "customerId"} <= typed["CartBody"]

    products: module.ProductsQuery = {
        "start": 0,
        "count": 5,
        "excludeSiblingFilters": ["brand"],
        "returnInitialContent": True,
    }
    search: module.SearchBody = {"id": 1234, "includeRetailMediaInReview": True, "products": products}
    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        client.search("key", "q", tracking_user_id=A, **search)
        client.recommendations(
            [{"key": "k", "hideAdditionalVariants": False}], tracking_user_id=A, includeRetailMediaInReview=True
        )
        client.page("category", "https://shop.test/c", tracking_user_id=A, id=99, layout="grid")
        client.track_cart(tracking_user_id=A, email="a@shop.test", productNumbers=["1"])

    sent_search, sent_recoms, sent_page, sent_cart = (r.json for r in fake_hello_retail.api_requests())
    assert sent_search == {"key": "key", "query": "q", **search, "trackingUserId": A}
    assert sent_recoms["requests"] == [{"key": "k", "hideAdditionalVariants": False}]
    assert sent_recoms["includeRetailMediaInReview"] is True
    assert (sent_page["id"], sent_page["layout"]) == (99, "grid")
    assert sent_cart["email"] == "a@shop.test"
