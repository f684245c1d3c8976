"""The fake refuses what Hello Retail refuses and answers in its shapes (issue 22), in both its forms.

The contract (``tests/contract/``) holds one request and answer per case, compared by
shape; these tests hold what shapes cannot: which websites the fake knows, the values
it echoes, what its products' links and tracking codes say. Each runs against the fake
over a socket and in memory, through the same transport, so both forms answer alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from hr_middleware import OPT_OUT_ID
from hr_middleware._hello_retail import endpoints
from hr_middleware._hello_retail.transport import SyncTransport
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail

from .ids import A

SITE_A = "0b5e1c7a-1111-4111-8111-00000000000a"
SITE_B = "0b5e1c7a-2222-4222-8222-00000000000b"
UNKNOWN = "0b5e1c7a-3333-4333-8333-00000000000c"
SOURCE = "ps-fd33f6d4|63483b0be52a6801e489b0b4|*|pos:0|per:true|"


@pytest.fixture(params=["socket", "memory"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeHelloRetail]:
    with FakeHelloRetail(in_memory=request.param == "memory") as started:
        yield started


@pytest.fixture(scope="module")
def transport() -> Iterator[SyncTransport]:
    sync = SyncTransport()
    yield sync
    sync.close()


def post(transport: SyncTransport, fake: FakeHelloRetail, path: str, body: Any, query: str = "") -> tuple[int, Any]:
    answer = transport.post(fake.url + path + query, json.dumps(body).encode(), timeout=10)
    return answer.status, answer.json()


# -- 22.1: a click needs an identity ----------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "query", "expected"),
    [
        pytest.param({}, "", (400, "trackingUserId or customerId is required"), id="none"),
        pytest.param({"email": "jane@example.com"}, "", (400, "trackingUserId or customerId is required"), id="email"),
        pytest.param({"trackingUserId": A}, "", (200, "Click tracked"), id="tracking-user-id"),
        pytest.param({"trackingUserId": OPT_OUT_ID}, "", (200, "Click tracked"), id="opt-out"),
        pytest.param({"customerId": "53967"}, "?apiKey=k", (200, "Click tracked"), id="customer-id"),
        pytest.param({"customerId": "53967"}, "", (200, "Not tracked for anonymous user"), id="customer-id-no-key"),
    ],
)
def test_a_click_is_refused_without_an_identity(
    transport: SyncTransport, fake: FakeHelloRetail, identity: dict[str, str], query: str, expected: tuple[int, str]
) -> None:
    body = {"websiteUuid": fake.website_uuid, "source": SOURCE, **identity}

    status, answer = post(transport, fake, endpoints.CLICK, body, query)

    assert (status, answer["message"]) == expected
    assert answer["success"] is (status == 200)


def test_a_pageview_still_needs_no_identity(transport: SyncTransport, fake: FakeHelloRetail) -> None:
    status, answer = post(transport, fake, endpoints.PAGEVIEW, {"websiteUuid": fake.website_uuid, "location": "/"})

    assert (status, answer) == (200, {"success": True, "message": "Page view tracked"})


# -- 22.3 / 23.3: the websites the fake knows ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (endpoints.PAGEVIEW, "website with websiteUuid not found"),
        (endpoints.CLICK, "website with websiteUuid not found"),
        (endpoints.CART, "Website not found"),
        (endpoints.CONVERSION, "Website not found"),
    ],
)
def test_an_unknown_website_is_refused(
    transport: SyncTransport, fake: FakeHelloRetail, path: str, message: str
) -> None:
    body = {"trackingUserId": A, "source": SOURCE, "location": "/", "productNumbers": [], "total": 1}

    known = post(transport, fake, path, {**body, "websiteUuid": DEFAULT_WEBSITE_UUID})
    unknown = post(transport, fake, path, {**body, "websiteUuid": UNKNOWN})

    assert known[0] == 200
    assert unknown == (400, {"success": False, "message": message})


def test_a_fake_of_several_websites_knows_and_mints_for_each(transport: SyncTransport) -> None:
    with FakeHelloRetail(website_uuids=[SITE_A, SITE_B], in_memory=True) as fake:
        minted = {
            site: post(transport, fake, endpoints.MINT, {"websiteUuid": site})[1]["id"] for site in (SITE_A, SITE_B)
        }
        statuses = {
            site: post(transport, fake, endpoints.PAGEVIEW, {"websiteUuid": site, "trackingUserId": minted[SITE_A]})[0]
            for site in (SITE_A, SITE_B, UNKNOWN, SITE_B.upper())
        }

        assert fake.website_uuid == SITE_A  # its settings() name the first
        assert fake.settings().website_uuid == SITE_A
        assert statuses == {SITE_A: 200, SITE_B: 200, UNKNOWN: 400, SITE_B.upper(): 200}
        assert (fake.minted_for(SITE_A), fake.minted_for(SITE_B)) == ([minted[SITE_A]], [minted[SITE_B]])
        assert [r.website_uuid for r in fake.mint_requests()] == [SITE_A, SITE_B]
        assert [r.website_uuid for r in fake.api_requests()] == [SITE_A, SITE_B, UNKNOWN, SITE_B.upper()]


def test_a_mint_for_an_unknown_website_is_answered_and_recorded(
    transport: SyncTransport, fake: FakeHelloRetail
) -> None:
    status, answer = post(transport, fake, endpoints.MINT, {"websiteUuid": UNKNOWN})

    assert status == 200
    assert fake.minted_for(UNKNOWN) == [answer["id"]]
    assert fake.minted_for(fake.website_uuid) == []


def test_the_known_websites_may_change_and_reset_restores_them(transport: SyncTransport, fake: FakeHelloRetail) -> None:
    def pageview(site: str) -> int:
        return post(transport, fake, endpoints.PAGEVIEW, {"websiteUuid": site})[0]

    fake.website_uuids.add(SITE_A)
    assert (pageview(SITE_A), pageview(DEFAULT_WEBSITE_UUID)) == (200, 200)
    fake.reset()
    assert fake.website_uuids == {DEFAULT_WEBSITE_UUID}
    assert (pageview(SITE_A), pageview(DEFAULT_WEBSITE_UUID)) == (400, 200)


def test_the_websites_it_is_started_with_are_checked() -> None:
    assert FakeHelloRetail(in_memory=True).website_uuids == {DEFAULT_WEBSITE_UUID}
    assert FakeHelloRetail(website_uuid=SITE_A, in_memory=True).website_uuids == {SITE_A}
    assert FakeHelloRetail(website_uuid=SITE_B, website_uuids=[SITE_A, SITE_B], in_memory=True).website_uuid == SITE_B
    with pytest.raises(ValueError, match="website_uuid"):
        FakeHelloRetail(website_uuid=UNKNOWN, website_uuids=[SITE_A], in_memory=True)
    with pytest.raises(ValueError, match="website_uuids"):
        FakeHelloRetail(website_uuids=[], in_memory=True)
    with pytest.raises(TypeError, match="website_uuids"):
        FakeHelloRetail(website_uuids=SITE_A, in_memory=True)


# -- 22.5: email is not an identity on cart and conversion ---------------------------------------


@pytest.mark.parametrize("path", [endpoints.CART, endpoints.CONVERSION])
@pytest.mark.parametrize(
    ("identity", "query", "tracked"),
    [
        pytest.param({"email": "jane@example.com"}, "?apiKey=k", False, id="email-with-key"),
        pytest.param({"email": "jane@example.com"}, "", False, id="email"),
        pytest.param({"trackingUserId": A, "email": "jane@example.com"}, "", True, id="id-and-email"),
        pytest.param({"customerId": "53967", "email": "jane@example.com"}, "?apiKey=k", True, id="customer-with-key"),
        pytest.param({"trackingUserId": OPT_OUT_ID, "email": "jane@example.com"}, "?apiKey=k", False, id="opt-out"),
    ],
)
def test_an_email_alone_is_an_anonymous_visitor(
    transport: SyncTransport, fake: FakeHelloRetail, path: str, identity: dict[str, str], query: str, tracked: bool
) -> None:
    status, answer = post(transport, fake, path, {"websiteUuid": fake.website_uuid, "total": 1, **identity}, query)

    assert status == 200
    assert (answer["message"] != "Not tracked for anonymous user") is tracked


# -- 22.6: an empty trackingUserId is no id ------------------------------------------------------

CONTENT = [
    pytest.param(endpoints.RECOMMENDATIONS, {"requests": [{"key": "k", "fields": ["trackingCode"]}]}, id="recoms"),
    pytest.param(endpoints.SEARCH, {"key": "s", "query": "lamp", "products": {"count": 3}}, id="search"),
    pytest.param(endpoints.PAGES_PREFIX + "p", {"url": "https://shop.example/c", "format": "json"}, id="pages"),
]


@pytest.mark.parametrize(("path", "body"), CONTENT)
def test_an_empty_tracking_user_id_is_answered_as_none(
    transport: SyncTransport, fake: FakeHelloRetail, path: str, body: dict[str, Any]
) -> None:
    empty = post(transport, fake, path, {**body, "trackingUserId": ""})
    absent = post(transport, fake, path, body)

    assert empty[0] == 200
    assert empty == absent


def test_an_empty_tracking_user_id_beside_an_email_is_the_email_alone(
    transport: SyncTransport, fake: FakeHelloRetail
) -> None:
    body = {"trackingUserId": "", "email": "jane@example.com", "requests": [{"key": "k"}]}

    without_key = post(transport, fake, endpoints.RECOMMENDATIONS, body)
    with_key = post(transport, fake, endpoints.RECOMMENDATIONS, body, "?apiKey=k")

    assert (without_key[0], without_key[1]["code"]) == (500, "ACCESS DENIED")  # not "two identities"
    assert with_key[0] == 200


# -- 22.7: no invented limits ----------------------------------------------------------------------


def test_search_echoes_any_count_and_start_and_answers_at_most_the_catalogue(
    transport: SyncTransport, fake: FakeHelloRetail
) -> None:
    def products(start: int, count: int) -> dict[str, Any]:
        body = {"key": "s", "query": "*", "products": {"start": start, "count": count}, "categories": {"count": count}}
        answer = post(transport, fake, endpoints.SEARCH, body)[1]
        return {name: answer[name] for name in ("products", "categories")}

    huge = products(0, 10**9)  # a count no clamp lets through: answered from the finite catalogue
    far = products(20_000, 5_000)

    section = huge["products"]
    assert (section["requestedCount"], section["returnedCount"], section["totalCount"]) == (10**9, 100, 100)
    assert len(section["results"]) == 100
    assert huge["categories"]["requestedCount"] == 10**9
    assert (far["products"]["start"], far["products"]["requestedCount"], far["products"]["results"]) == (
        20_000,
        5_000,
        [],
    )


def test_pages_and_recommendations_echo_any_count(transport: SyncTransport, fake: FakeHelloRetail) -> None:
    page = post(transport, fake, endpoints.PAGES_PREFIX + "p", {"url": "/c", "products": {"start": 0, "count": 4000}})
    recoms = post(transport, fake, endpoints.RECOMMENDATIONS, {"requests": [{"key": "k"}, {"key": "l", "count": 500}]})

    assert (page[1]["products"]["count"], len(page[1]["products"]["result"])) == (4000, 100)
    assert [len(r["products"]) for r in recoms[1]["responses"]] == [4, 100]


# -- 22.8: products as Hello Retail sends them -----------------------------------------------------


def codes_of(products: list[dict[str, Any]], shop: str) -> list[str]:
    """The products' tracking codes, checking that each url is its originalUrl with #aw_source=<code>."""
    for product in products:
        assert product["originalUrl"] == f"{shop}/products/{product['productNumber']}"
        page, _, fragment = product["url"].partition("#aw_source=")
        assert (page, unquote(fragment)) == (product["originalUrl"], product["trackingCode"])
    return [product["trackingCode"] for product in products]


def test_search_products_carry_urls_and_ps_codes(transport: SyncTransport, fake: FakeHelloRetail) -> None:
    body = {"key": "s-key", "query": "lamp", "trackingUserId": A, "products": {"start": 5, "count": 3}}

    products = post(transport, fake, endpoints.SEARCH, body)[1]["products"]["results"]

    codes = codes_of(products, fake.url)
    assert [re.fullmatch(r"ps-s-key\|[0-9a-f]{24}\|lamp\|pos:(\d+)\|per:true\|", c)[1] for c in codes] == [
        "5",
        "6",
        "7",
    ]  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "body", "pattern"),
    [
        (endpoints.RECOMMENDATIONS, {"requests": [{"key": "box"}]}, r"pb-box\|[0-9a-f]{24}\|\*\|pos:\d+\|per:false\|"),
        (
            endpoints.RECOMMENDATIONS,
            {"websiteUuid": DEFAULT_WEBSITE_UUID, "requests": [{"trackingKey": "front", "sources": [{"type": "TOP"}]}]},
            r"ur-front\|[0-9a-f]{24}\|\*\|pos:\d+\|per:false\|",
        ),
        (
            endpoints.PAGES_PREFIX + "cat",
            {"url": "/c", "format": "json"},
            r"pa-cat\|[0-9a-f]{24}\|\*\|pos:\d+\|per:false\|",
        ),
    ],
    ids=["box", "unmanaged", "pages"],
)
def test_other_products_carry_urls_and_their_codes(
    transport: SyncTransport, fake: FakeHelloRetail, path: str, body: dict[str, Any], pattern: str
) -> None:
    answer = post(transport, fake, path, {**body, "trackingUserId": OPT_OUT_ID})[1]

    products = answer["responses"][0]["products"] if "responses" in answer else answer["products"]["result"]
    codes = codes_of(products, fake.url)
    assert codes
    assert all(re.fullmatch(pattern, code) for code in codes)


def test_the_shop_url_places_the_products(transport: SyncTransport) -> None:
    with FakeHelloRetail(shop_url="http://127.0.0.1:8000/", in_memory=True) as fake:
        (product,) = post(transport, fake, endpoints.RECOMMENDATIONS, {"requests": [{"key": "k", "count": 1}]})[1][
            "responses"
        ][0]["products"]
        fake.shop_url = "http://shop.test"
        (moved,) = post(transport, fake, endpoints.RECOMMENDATIONS, {"requests": [{"key": "k", "count": 1}]})[1][
            "responses"
        ][0]["products"]

    assert product["originalUrl"].startswith("http://127.0.0.1:8000/products/")
    assert moved["originalUrl"].startswith("http://shop.test/products/")


def test_a_search_that_matches_nothing_answers_zero_result_content(
    transport: SyncTransport, fake: FakeHelloRetail
) -> None:
    body = {"key": "s", "query": " No-Such-Product ", "products": {"count": 10, "fields": ["title"]}, "brands": {}}

    answer = post(transport, fake, endpoints.SEARCH, body)[1]
    fake.zero_result_queries = {"lamp"}
    lamp = post(transport, fake, endpoints.SEARCH, {**body, "query": "lamp"})[1]

    section = answer["products"]
    assert (section["returnedCount"], section["totalCount"], section["results"]) == (0, 0, [])
    assert answer["brands"]["totalCount"] == 0
    (content,) = section["zeroResultContent"]
    assert content["count"] == len(content["products"]) > 0
    codes_of(content["products"], fake.url)  # whole products, whatever fields were asked
    assert {"description", "onSale", "extraData"} <= set(content["products"][0])
    assert lamp["products"]["totalCount"] == 0


def test_a_search_that_matches_has_no_zero_result_content(transport: SyncTransport, fake: FakeHelloRetail) -> None:
    answer = post(transport, fake, endpoints.SEARCH, {"key": "s", "query": "lamp", "products": {"count": 1}})[1]

    assert answer["products"]["totalCount"] > 0
    assert "zeroResultContent" not in answer["products"]


# -- 22.9: facets -------------------------------------------------------------------------------------


def facets_of(transport: SyncTransport, fake: FakeHelloRetail, path: str, filters: list[str]) -> list[dict[str, Any]]:
    products = {"count": 1, "filters": filters, "returnFilters": True}
    if path == endpoints.SEARCH:
        answer = post(transport, fake, path, {"key": "s", "query": "*", "products": products})[1]
    else:
        answer = post(transport, fake, path, {"url": "/c", "format": "json", "firstLoad": True, "products": products})[
            1
        ]
    facets: list[dict[str, Any]] = answer["products"]["filters"]
    return facets


@pytest.mark.parametrize("path", [endpoints.SEARCH, endpoints.PAGES_PREFIX + "p"], ids=["search", "pages"])
def test_a_selected_range_is_on_its_range_facet(transport: SyncTransport, fake: FakeHelloRetail, path: str) -> None:
    chosen = {f["name"]: f for f in facets_of(transport, fake, path, ["price:10,50", "brand:Acme"])}
    plain = {f["name"]: f for f in facets_of(transport, fake, path, [])}

    assert (chosen["price"]["selectedMin"], chosen["price"]["selectedMax"]) == ("10", "50")
    assert not {"selectedMin", "selectedMax"} & set(plain["price"])


def test_only_pages_facet_settings_carry_filtering_texts(transport: SyncTransport, fake: FakeHelloRetail) -> None:
    pages = facets_of(transport, fake, endpoints.PAGES_PREFIX + "p", [])
    search = facets_of(transport, fake, endpoints.SEARCH, [])

    assert all(f["settings"]["filteringText"] == f["settings"]["negatedFilteringText"] == "" for f in pages)
    assert all("filteringText" not in f["settings"] for f in search)


def test_the_products_link_to_pages_the_fake_stands_in_for(transport: SyncTransport) -> None:
    """Without a shop_url the products' originalUrl is a stand-in page the fake serves (so a demo's
    links lead somewhere), not a call to Hello Retail: neither recorded nor counted."""
    with FakeHelloRetail() as fake:
        (product,) = post(transport, fake, endpoints.RECOMMENDATIONS, {"requests": [{"key": "k", "count": 1}]})[1][
            "responses"
        ][0]["products"]
        page = requests.get(product["originalUrl"], timeout=10)
        missing = requests.get(fake.url + "/products/<script>", timeout=10)

        assert product["originalUrl"] == f"{fake.url}/products/{product['productNumber']}"
        assert (page.status_code, page.headers["Content-Type"]) == (200, "text/html; charset=utf-8")
        assert f"<h1>Product {product['productNumber']}</h1>" in page.text
        assert missing.status_code == 404
        assert len(fake.requests) == 1  # the recommendations call only
