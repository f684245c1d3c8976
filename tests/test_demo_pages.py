"""The demo shop on Flask, Starlette and Django: one page, the same sections, each driven by its framework's client.

Each section is checked on every framework: the visitor's id and its origin,
the headers this response sent, the calls that reached Hello Retail, the
buttons, consent (the opt-out id and the cookie deletion), the region (one
website per host, and the switch to the other), the login that links the
customer once, recommendations and search as product cards with the fake's own
images, and the reason in words when there is no id.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from starlette.testclient import TestClient

from tests.django_site import configure

configure()

from django.test import Client, override_settings  # noqa: E402 - needs configure()

from examples import flask_app, starlette_app  # noqa: E402
from examples.response_headers import headers_html  # noqa: E402
from examples.shop_page import (  # noqa: E402
    DEMO_CUSTOMER,
    DEMO_WEBSITE_UUIDS,
    LINK_TEXT,
    MIDDLEWARE_OPTIONS,
    website_options,
)
from hr_middleware import OPT_OUT_ID, NoIdReason  # noqa: E402
from hr_middleware.customers import LinkOutcome  # noqa: E402
from hr_middleware.testing import FakeHelloRetail  # noqa: E402

from .drivers import PAGE  # noqa: E402
from .servers import free_port, running  # noqa: E402

#: The fake over a real socket: the demo shops call the fake over HTTP.
pytestmark = pytest.mark.loopback

CURL = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
FRAMEWORKS = ["flask", "starlette", "django"]
ID_COOKIES = ("helloRetailTrackingUserId", "hello_retail_id")
#: The demo's second region's website (Sweden, on localhost); the first is the fake's own.
SECOND_WEBSITE = DEMO_WEBSITE_UUIDS[1]


@dataclass
class Shown:
    """A response of the demo: its status, its page, and the headers it sent (each Set-Cookie apart)."""

    status: int
    html: str
    headers: list[tuple[str, str]]

    def text_of(self, element_id: str) -> str:
        match = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', self.html, re.S)
        assert match is not None, f"no #{element_id} on the page"
        return html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(2))).strip()

    def has(self, element_id: str) -> bool:
        return f'id="{element_id}"' in self.html

    @property
    def tracking_user_id(self) -> str:
        return self.text_of("tracking-user-id")

    @property
    def calls(self) -> int:
        return int(self.text_of("hello-retail-calls"))

    @property
    def header_rows(self) -> str:
        return self.html.split('<table id="response-headers">', 1)[1].split("</table>", 1)[0].strip()

    def set_cookies(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie" and v.startswith(name + "=")]

    def products(self, section: str) -> list[str]:
        """The product cards of *section* (``recommendations`` or ``search-results``)."""
        match = re.search(rf'<section id="{section}">(.*?)</section>', self.html, re.S)
        return re.findall(r'<li class="product".*?</li>', match.group(1), re.S) if match else []


Shop = Callable[..., Shown]  # shop(method, path, headers=..., data=...)


def regions(fake: FakeHelloRetail) -> dict[str, Any]:
    """The demo's websites: the fake's own for the first region, :data:`SECOND_WEBSITE` for the second."""
    return website_options(fake.website_uuid, SECOND_WEBSITE)


class FlaskShop:
    def __init__(self, fake: FakeHelloRetail) -> None:
        config = {"HELLO_RETAIL_" + name.upper(): value for name, value in regions(fake).items()}
        config["HELLO_RETAIL_API_URL"] = fake.url
        config["HELLO_RETAIL_SCRIPT_URL"] = fake.script_url
        self.client = flask_app.create_app(config, fake=fake).test_client()

    def __call__(self, method: str, path: str, headers: Mapping[str, str], data: Any = None) -> Shown:
        response = self.client.open(path, method=method, headers=dict(headers), data=data, buffered=True)
        return Shown(response.status_code, response.get_data(as_text=True), response.headers.to_wsgi_list())


class StarletteShop:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def __call__(self, method: str, path: str, headers: Mapping[str, str], data: Any = None) -> Shown:
        response = self.client.request(method, path, headers=dict(headers), data=data)
        return Shown(response.status_code, response.text, list(response.headers.multi_items()))


class DjangoShop:
    def __init__(self) -> None:
        self.client = Client()

    def __call__(self, method: str, path: str, headers: Mapping[str, str], data: Any = None) -> Shown:
        response = self.client.generic(method, path, data=_form(data), content_type=_FORM, headers=dict(headers))
        # What Django's handler sends: the headers, then one Set-Cookie per cookie.
        cookies = [("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values()]
        for name, morsel in response.cookies.items():
            if str(morsel["max-age"]) == "0":  # deleted, as a browser forgets it (Django's client keeps it)
                self.client.cookies.pop(name, None)
        return Shown(response.status_code, response.content.decode(), [*response.items(), *cookies])


_FORM = "application/x-www-form-urlencoded"


def _form(data: Mapping[str, str] | None) -> str:
    return urlencode(data or {})


@contextmanager
def demo_shop(framework: str, fake: FakeHelloRetail) -> Iterator[Shop]:
    """The demo on *framework*, pointed at *fake*; ``shop("GET", "/", PAGE)`` is one browser request.

    Its two regions are websites the fake knows (the second is added to *fake*'s ``website_uuids``)."""
    fake.website_uuids.add(SECOND_WEBSITE)  # the fixture's reset() forgets it
    if framework == "flask":
        yield FlaskShop(fake)
    elif framework == "starlette":
        app = starlette_app.create_app(fake=fake, api_url=fake.url, script_url=fake.script_url, **regions(fake))
        with TestClient(app) as client:
            yield StarletteShop(client)
    else:
        from examples.django_app.shop import views

        hello_retail = {name.upper(): value for name, value in regions(fake).items()}
        hello_retail.update({"API_URL": fake.url, "SCRIPT_URL": fake.script_url})
        hello_retail.update({name.upper(): value for name, value in MIDDLEWARE_OPTIONS.items()})
        with override_settings(
            ROOT_URLCONF="examples.django_app.shop.urls",
            # examples/django_app/shop/settings.py's stack.
            MIDDLEWARE=[
                "examples.response_headers.ShowHeadersDjango",
                "django.middleware.security.SecurityMiddleware",
                "hr_middleware.django.TrackingUserMiddleware",
                "django.middleware.common.CommonMiddleware",
            ],
            HELLO_RETAIL=hello_retail,
            DEMO_FAKE_HELLO_RETAIL=fake,
        ):
            views.hello_retail.cache_clear()  # its client is made from the settings of the moment
            try:
                yield DjangoShop()
            finally:
                views.hello_retail.cache_clear()


@pytest.fixture(params=FRAMEWORKS)
def shop(request: pytest.FixtureRequest, fake_hello_retail: FakeHelloRetail) -> Iterator[Shop]:
    """The demo on each framework in turn."""
    with demo_shop(request.param, fake_hello_retail) as made:
        yield made


def test_a_first_visit_shows_the_id_what_the_response_did_and_the_calls(
    shop: Shop, fake_hello_retail: FakeHelloRetail
) -> None:
    page = shop("GET", "/", PAGE)

    assert page.status == 200
    (minted,) = fake_hello_retail.minted
    assert page.tracking_user_id == minted
    assert "minted from Hello Retail on this request" in page.text_of("origin")
    assert not page.has("no-id-reason")
    # The table holds exactly the headers this response sent.
    assert page.header_rows == headers_html(page.headers)
    for name in ID_COOKIES:
        (cookie,) = page.set_cookies(name)
        assert f"<code>{html_lib.escape(cookie)}</code></td>" in page.header_rows
        assert re.match(rf"{name}={minted}(\.[\w-])?;", cookie)  # ours says in which period it was set
    assert re.search(r"<th>Vary</th><td><code>[^<]*Cookie", page.header_rows)
    assert "<th>Cache-Control</th><td><code>" in page.header_rows
    assert page.calls == 2  # the mint and the recommendations
    assert fake_hello_retail.api_requests("/serve/recoms")[0].json["trackingUserId"] == minted


def test_a_returning_visit_reads_the_cookie_and_sets_none(shop: Shop, fake_hello_retail: FakeHelloRetail) -> None:
    first = shop("GET", "/", PAGE)
    again = shop("GET", "/", PAGE)

    assert again.tracking_user_id == first.tracking_user_id
    assert "read from the cookie" in again.text_of("origin")
    assert again.set_cookies("") == []
    assert '<tr class="not-sent"><th>Set-Cookie</th><td>not sent</td></tr>' in again.header_rows
    assert again.calls == 3  # one more: the recommendations; no mint
    assert again.products("recommendations") == first.products("recommendations")


def test_the_buttons_and_the_search_box_are_there(shop: Shop) -> None:
    page = shop("GET", "/", PAGE)

    assert '<button type="button" id="new-visitor">Become a new visitor</button>' in page.html
    assert '<form method="post" action="/consent" id="consent" class="buttons">' in page.html
    assert 'name="answer" value="accept"' in page.html
    assert 'name="answer" value="decline"' in page.html
    # The new-visitor button forgets both id cookies (and the consent answer), then reloads.
    names = '["helloRetailTrackingUserId", "hello_retail_id", "demo_consent", "demo_customer"]'
    assert f"for (const name of {names})" in page.html
    assert '<form method="post" action="/login" id="login" class="buttons">' in page.html
    assert page.text_of("customer-state") == "Not logged in."
    assert '<form id="search" action="/" method="get">' in page.html
    assert page.text_of("consent-state") == UNANSWERED


#: What the page says of an unanswered banner.
UNANSWERED = (
    "Tracking consent: not answered yet: counted as consent, because this demo sets consent_unknown=True "
    "(by default, consent_unknown=False, it counts as declined)"
)


def test_the_consent_text_agrees_with_the_demos_options_and_the_documented_default(shop: Shop) -> None:
    from dataclasses import fields

    from hr_middleware import Settings

    first = shop("GET", "/", PAGE)

    default = next(f.default for f in fields(Settings) if f.name == "consent_unknown")
    assert default is False  # the README's options table: False = declined
    assert MIDDLEWARE_OPTIONS["consent_unknown"] is True  # what the demo chose, and says
    assert first.text_of("consent-state") == UNANSWERED
    assert "minted from Hello Retail" in first.text_of("origin")  # counted as consent, as the text says


def test_recommendations_and_search_are_product_cards_with_the_fakes_images(
    shop: Shop, fake_hello_retail: FakeHelloRetail
) -> None:
    page = shop("GET", "/?q=lamp", PAGE)

    recommended, found = page.products("recommendations"), page.products("search-results")
    assert (len(recommended), len(found)) == (4, 8)
    assert "100 results for &ldquo;lamp&rdquo;" in page.html
    assert 'class="facet" href="/?q=lamp&amp;start=0&amp;filter=brand%3AAcme"' in page.html
    (recoms,) = fake_hello_retail.api_requests("/serve/recoms")
    (search,) = fake_hello_retail.api_requests("/serve/search")
    assert search.json["query"] == "lamp"
    assert recoms.json["requests"][0]["context"] == {}
    answer = requests.post(fake_hello_retail.url + "/serve/recoms", json=recoms.json, timeout=5).json()
    for card, product in zip(recommended, answer["responses"][0]["products"], strict=True):
        # The card shows the answer's own fields; the image is the answer's imgUrl (the fake's picture),
        # shown through the demo's own origin.
        assert product["imgUrl"].startswith(fake_hello_retail.images_url + "/")
        assert f'data-product-number="{product["productNumber"]}"' in card
        assert f'<img src="/images/{product["imgUrl"].rsplit("/", 1)[1]}"' in card
        assert f'<span class="title">{product["title"]}</span>' in card
        assert f"&euro;{product['price']:.2f}" in card
        # The plain URL, as Hello Retail's examples link, with the click's #aw_source= for the script.
        assert product["url"].startswith(product["originalUrl"] + "#aw_source=")
        assert f'<a href="{html_lib.escape(product["url"])}">' in card
    images = re.findall(r'<img src="([^"]+)"', page.html)
    assert len(images) == 12
    assert all(src.startswith("/images/") for src in images)
    picture = shop("GET", images[0], {})
    assert picture.status == 200
    assert ("Content-Type", "image/svg+xml") in [(k.title(), v) for k, v in picture.headers]
    assert picture.html.startswith("<svg")
    assert shop("GET", "/images/not-a-picture", {}).status == 404
    # Product links are the products' originalUrl: the fake's stand-in product pages, never a dead link.
    links = re.findall(r'<li class="product"[^>]*><a href="([^"]+)"', page.html)
    assert len(links) == 12
    assert all(re.fullmatch(re.escape(fake_hello_retail.url) + r"/products/\d+#aw_source=.+", link) for link in links)
    product_page = requests.get(links[0], timeout=5)
    assert (product_page.status_code, product_page.headers["Content-Type"]) == (200, "text/html; charset=utf-8")


def test_the_page_needs_nothing_from_the_internet(shop: Shop, fake_hello_retail: FakeHelloRetail) -> None:
    page = shop("GET", "/?q=lamp", PAGE)

    assert "shop.example" not in page.html
    assert "<link" not in page.html
    assert "@import" not in page.html
    # Hello Retail's script (the fake's stand-in) and the products' own pages (originalUrl, the fake's
    # stand-in pages); not even the pictures: they come through the demo's own origin.
    assert re.findall(r"<script [^>]*src=\"([^\"]+)\"", page.html) == [fake_hello_retail.script_url]
    assert re.findall(r'(?:src|href|action)="(https?://[^"]*)"', page.html) == [
        fake_hello_retail.script_url,
        *re.findall(r'<a href="(http://127\.0\.0\.1:\d+/products/[^"]+)"', page.html),
    ]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({**CURL, "Accept": "text/html"}, NoIdReason.BOT, id="curl-asking-for-html"),
        pytest.param(CURL, NoIdReason.BOT, id="curl"),  # Accept: */* too, but the User-Agent says it first
        pytest.param({**PAGE, "User-Agent": "Mozilla/5.0 (X11) HeadlessChrome/130.0"}, NoIdReason.BOT, id="headless"),
    ],
)
def test_no_id_and_the_reason_in_words(
    shop: Shop, fake_hello_retail: FakeHelloRetail, headers: dict[str, str], reason: NoIdReason
) -> None:
    page = shop("GET", "/", headers)

    assert page.status == 200
    assert page.tracking_user_id == "none"
    assert page.text_of("origin") == "No trackingUserId on this request."
    assert page.text_of("no-id-reason") == f"No id for this request: {reason.explanation}."
    assert page.set_cookies("") == []
    assert fake_hello_retail.mint_attempts == 0
    assert page.calls == 1  # the recommendations, for an anonymous visitor


def test_curl_is_told_it_is_an_http_library(shop: Shop) -> None:
    page = shop("GET", "/", {**CURL, "Accept": "text/html"})

    assert "HTTP library such as curl" in page.text_of("no-id-reason")


def test_declining_shows_the_opt_out_id_and_deletes_both_cookies_then_accepting_mints_again(
    shop: Shop, fake_hello_retail: FakeHelloRetail
) -> None:
    first = shop("GET", "/", PAGE)

    declined = shop("POST", "/consent", PAGE, {"answer": "decline"})
    later = shop("GET", "/", PAGE)
    accepted = shop("POST", "/consent", PAGE, {"answer": "accept"})

    assert declined.status == 200
    assert declined.tracking_user_id == OPT_OUT_ID == "000000000000000000000000"
    assert declined.text_of("origin").startswith("The opt-out id: this visitor declined tracking")
    assert declined.text_of("consent-state") == "Tracking consent: declined"
    for name in ID_COOKIES:
        (deletion,) = declined.set_cookies(name)
        assert re.search(r"max-age=0", deletion, re.I)
        assert f'<code>{html_lib.escape(deletion)}</code> <span class="deletes">deletes the cookie</span>' in (
            declined.header_rows
        )
    assert declined.header_rows == headers_html(declined.headers)
    assert later.tracking_user_id == OPT_OUT_ID  # the consent cookie says no
    assert later.set_cookies("helloRetailTrackingUserId") == []
    assert accepted.text_of("consent-state") == "Tracking consent: accepted"
    assert fake_hello_retail.minted == [first.tracking_user_id, accepted.tracking_user_id]  # grant() minted
    for name in ID_COOKIES:
        (cookie,) = accepted.set_cookies(name)
        assert re.match(rf"{name}={accepted.tracking_user_id}(\.[\w-])?;", cookie)
    assert accepted.header_rows == headers_html(accepted.headers)


def hrq_init(page: Shown) -> dict[str, Any]:
    """The ``init`` the page's <head> pushes to Hello Retail's script."""
    match = re.search(r'hrq\.push\(\["init",(\{[^}]*\})\]\)', page.html)
    assert match is not None, "no hrq init on the page"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_region_is_its_website_with_its_own_id_and_links_to_the_other(
    framework: str, fake_hello_retail: FakeHelloRetail
) -> None:
    first_website = fake_hello_retail.website_uuid
    # A browser keeps cookies per host: one client for each region's host.
    with demo_shop(framework, fake_hello_retail) as denmark, demo_shop(framework, fake_hello_retail) as sweden:
        first = denmark("GET", "/", {**PAGE, "Host": "127.0.0.1:8000"})
        second = sweden("GET", "/", {**PAGE, "Host": "localhost:8000"})
        second_again = sweden("GET", "/", {**PAGE, "Host": "localhost:8000"})
        first_again = denmark("GET", "/", {**PAGE, "Host": "127.0.0.1:8000"})

    assert (first.text_of("region-name"), first.text_of("website-uuid")) == ("Denmark", first_website)
    assert (second.text_of("region-name"), second.text_of("website-uuid")) == ("Sweden", SECOND_WEBSITE)
    assert '<a id="region-switch" href="//localhost:8000/">Switch to Sweden</a>' in first.html
    assert '<a id="region-switch" href="//127.0.0.1:8000/">Switch to Denmark</a>' in second.html
    # Ids are per website: each region minted its own, for its website, and keeps it.
    assert fake_hello_retail.minted_for(first_website) == [first.tracking_user_id]
    assert fake_hello_retail.minted_for(SECOND_WEBSITE) == [second.tracking_user_id]
    assert second.tracking_user_id != first.tracking_user_id
    assert (first_again.tracking_user_id, second_again.tracking_user_id) == (
        first.tracking_user_id,
        second.tracking_user_id,
    )
    # The page's script is told its region's website.
    assert hrq_init(first) == {"websiteUuid": first_website}
    assert hrq_init(second) == {"websiteUuid": SECOND_WEBSITE}


def test_logging_in_links_the_customer_once_and_names_them_to_the_script(
    shop: Shop, fake_hello_retail: FakeHelloRetail
) -> None:
    set_customer = f'hrq.push(["setCustomerId","{DEMO_CUSTOMER}"])'
    first = shop("GET", "/", PAGE)

    login = shop("POST", "/login", PAGE)
    browsing = [shop("GET", path, PAGE) for path in ("/", "/?q=lamp")]
    logout = shop("POST", "/logout", PAGE)
    logged_out = shop("GET", "/", PAGE)
    again = shop("POST", "/login", PAGE)

    assert login.status == 200
    assert login.text_of("customer-id") == DEMO_CUSTOMER
    assert login.text_of("customer-link") == LINK_TEXT[LinkOutcome.LINKED]
    assert '<form method="post" action="/logout" id="logout" class="buttons">' in login.html
    assert login.set_cookies("demo_customer") != []
    (link_cookie,) = login.set_cookies("helloRetailTrackingUserId_link")
    assert "HttpOnly" in link_cookie
    assert [page.text_of("customer-link") for page in [*browsing, again]] == [LINK_TEXT[LinkOutcome.ALREADY_LINKED]] * 3
    assert logout.text_of("customer-state") == logged_out.text_of("customer-state") == "Not logged in."
    (deleted,) = logout.set_cookies("demo_customer")
    assert re.search(r"max-age=0", deleted, re.I)
    # The script is named the customer on each page of the logged-in customer, and only there.
    assert [set_customer in page.html for page in (first, login, *browsing, logout, logged_out, again)] == [
        False,
        True,
        True,
        True,
        False,
        False,
        True,
    ]
    # One call to Hello Retail for the visitor and customer, whatever the pages and logins after it.
    assert fake_hello_retail.customer_links == [(first.tracking_user_id, DEMO_CUSTOMER)]
    (link,) = fake_hello_retail.api_requests("/serve/collect/customerId")
    assert link.json == {
        "trackingUserId": first.tracking_user_id,
        "websiteUuid": link.website_uuid,
        "id": DEMO_CUSTOMER,
    }
    assert link.website_uuid in (fake_hello_retail.website_uuid, SECOND_WEBSITE)


def test_a_visitor_who_declined_is_not_linked_at_login(shop: Shop, fake_hello_retail: FakeHelloRetail) -> None:
    shop("GET", "/", PAGE)
    shop("POST", "/consent", PAGE, {"answer": "decline"})

    login = shop("POST", "/login", PAGE)
    accepted = shop("POST", "/consent", PAGE, {"answer": "accept"})

    assert login.text_of("customer-link") == LINK_TEXT[LinkOutcome.OPTED_OUT]
    assert "setCustomerId" not in login.html
    assert login.set_cookies("helloRetailTrackingUserId_link") == []
    # Consent given while logged in: the new id is linked in that response.
    assert accepted.text_of("customer-link") == LINK_TEXT[LinkOutcome.LINKED]
    assert fake_hello_retail.customer_links == [(accepted.tracking_user_id, DEMO_CUSTOMER)]


def _skeleton(page: Shown) -> list[str]:
    """The page's elements that carry an id or a class, in order, and its stylesheet."""
    style = page.html.split("<style>", 1)[1].split("</style>", 1)[0]
    tags = re.findall(r'<(\w+)((?: (?:id|class)="[^"]*")+)', page.html)
    return [style, *(f"{tag}{attributes}" for tag, attributes in tags)]


def test_the_three_demos_show_the_same_page(fake_hello_retail: FakeHelloRetail) -> None:
    pages = {}
    for framework in FRAMEWORKS:
        with demo_shop(framework, fake_hello_retail) as made:
            pages[framework] = made("GET", "/?q=lamp", PAGE)
        fake_hello_retail.reset()

    flask_page, *others = pages.values()
    assert all(_skeleton(page) == _skeleton(flask_page) for page in others)
    assert [page.text_of("framework") for page in pages.values()] == ["Flask", "Starlette", "Django"]
    for page in pages.values():
        assert len(page.products("recommendations")) == 4
        assert len(page.products("search-results")) == 8


@pytest.fixture
def django_shop(fake_hello_retail: FakeHelloRetail) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "examples/django_app/manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    env = {"HELLO_RETAIL_WEBSITE_UUID": fake_hello_retail.website_uuid, "HELLO_RETAIL_API_URL": fake_hello_retail.url}
    with running(argv, port=port, env=env, ready_path="/api/tracking-user") as url:
        yield url


def test_the_django_shop_under_runserver_shows_the_headers_it_really_sent(
    django_shop: str, fake_hello_retail: FakeHelloRetail
) -> None:
    response = requests.get(django_shop + "/?q=lamp", headers=PAGE, timeout=10)

    assert response.status_code == 200
    sent = list(response.raw.headers.items())  # each Set-Cookie apart
    assert response.text.count("<th>Set-Cookie</th><td><code>") == 2
    page = Shown(response.status_code, response.text, sent)
    assert page.header_rows == headers_html(sent)
    assert page.tracking_user_id == fake_hello_retail.minted[0]
    assert len(page.products("recommendations")) == 4
    assert len(page.products("search-results")) == 8
