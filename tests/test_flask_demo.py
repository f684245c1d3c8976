"""The Flask demo shop: "Recommended for you" comes through the client with the visitor's id."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from examples.flask_app import create_app
from hr_middleware import NoIdReason
from hr_middleware.testing import FakeHelloRetail, Mode

from .drivers import PAGE


@pytest.fixture
def shop(fake_hello_retail: FakeHelloRetail) -> Any:
    """The demo app, pointed at the fake with a short time budget."""
    return create_app(
        {
            "HELLO_RETAIL_WEBSITE_UUID": fake_hello_retail.website_uuid,
            "HELLO_RETAIL_API_URL": fake_hello_retail.url,
            "HELLO_RETAIL_TIMEOUT": 0.3,
        },
        fake=fake_hello_retail,
    )


def visit(browser: FlaskClient) -> tuple[str, list[str]]:
    """Load the page as a browser; the id it shows and the recommended product numbers."""
    response = browser.get("/", headers=PAGE, buffered=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown_id = re.search(r'<code id="tracking-user-id">([^<]*)</code>', html)
    assert shown_id is not None
    return shown_id.group(1), re.findall(r'data-product-number="([^"]+)"', html)


def test_a_visitor_gets_the_same_recommendations_on_every_visit(shop: Any, fake_hello_retail: FakeHelloRetail) -> None:
    browser = shop.test_client()  # keeps cookies, like a browser

    pages = [visit(browser) for _ in range(3)]

    (tracking_user_id, products), *again = pages
    assert len(products) == 4
    assert all(page == (tracking_user_id, products) for page in again)
    assert fake_hello_retail.minted == [tracking_user_id]
    recoms = fake_hello_retail.api_requests("/serve/recoms")
    assert len(recoms) == 3
    assert all(request.json["trackingUserId"] == tracking_user_id for request in recoms)


def test_different_visitors_get_different_recommendations(shop: Any) -> None:
    first_id, first_products = visit(shop.test_client())
    second_id, second_products = visit(shop.test_client())

    assert first_id != second_id
    assert first_products
    assert second_products
    assert first_products != second_products


@pytest.mark.parametrize("mode", [Mode.SERVER_ERROR, Mode.NOT_JSON, Mode.RESET, Mode.HANG], ids=str)
def test_the_page_renders_without_the_section_when_hello_retail_fails(
    shop: Any, fake_hello_retail: FakeHelloRetail, mode: Mode
) -> None:
    fake_hello_retail.api_mode = mode
    response = shop.test_client().get("/", headers=PAGE, buffered=True)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Recommended for you" not in html
    assert fake_hello_retail.minted[0] in html  # the rest of the page is all there


def test_the_search_box_shows_hello_retail_s_results_pages_and_facets(
    shop: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    browser = shop.test_client()

    first = browser.get("/?q=teapot", headers=PAGE, buffered=True).get_data(as_text=True)
    brand_link = re.search(r'<a class="facet" href="([^"]+)">Acme \(25\)</a>', first)
    assert brand_link is not None
    filtered = browser.get(brand_link.group(1).replace("&amp;", "&"), headers=PAGE, buffered=True).get_data(
        as_text=True
    )
    next_link = re.search(r'<a id="next-page" href="([^"]+)">', filtered)
    assert next_link is not None
    second_page = browser.get(next_link.group(1).replace("&amp;", "&"), headers=PAGE, buffered=True).get_data(
        as_text=True
    )

    assert "100 results for &ldquo;teapot&rdquo;" in first  # products.totalCount
    assert "Page 1 of 13" in first
    assert "50 results" in filtered
    assert "Page 2 of 7" in second_page
    searches = [r.json for r in fake_hello_retail.api_requests("/serve/search")]
    assert [s["query"] for s in searches] == ["teapot"] * 3
    assert [s["products"]["filters"] for s in searches] == [[], ["brand:Acme"], ["brand:Acme"]]
    assert [s["products"]["start"] for s in searches] == [0, 0, 8]
    assert len(re.findall(r'<section id="search-results">.*?</section>', second_page, re.S)) == 1
    assert len(re.findall(r'class="product"', second_page)) == 8 + 4  # results and recommendations


@pytest.mark.parametrize("mode", [Mode.SERVER_ERROR, Mode.NOT_JSON, Mode.RESET], ids=str)
def test_when_hello_retail_cannot_mint_the_page_says_so_in_words(
    shop: Any, fake_hello_retail: FakeHelloRetail, mode: Mode
) -> None:
    fake_hello_retail.mode = mode

    html = shop.test_client().get("/", headers=PAGE, buffered=True).get_data(as_text=True)

    assert '<code id="tracking-user-id">none</code>' in html
    assert f'<p id="no-id-reason">No id for this request: {NoIdReason.UNREACHABLE.explanation}.</p>' in html
    assert '<tr class="not-sent"><th>Set-Cookie</th><td>not sent</td></tr>' in html
    assert fake_hello_retail.mint_attempts == 1
    assert '<strong id="hello-retail-calls">2</strong>' in html  # the failed mint and the recommendations
