"""Several websites: the request's website chosen by host, by path prefix or by a callable (docs/websites.md).

Each mint carries the request's website (what the fake recorded), the client
sends it, the app reads it (``get_website_uuid()``), a visitor keeps one id per
website, and a bad ``websites`` option stops the start-up naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from hr_middleware import RequestFacts, Settings, asgi, get_website_uuid, wsgi
from hr_middleware._core.log import WEBSITE_ANSWER_INVALID, WEBSITE_HOOK_FAILED
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail

from .drivers import PAGE, Result, plain_wsgi_app, starlette_app
from .ids import SDK, SERVER
from .test_script import init, make_shop, told  # noqa: F401 - make_shop is a fixture

DK = "00000000-0000-4000-8000-0000000000d1"
SE = "00000000-0000-4000-8000-0000000000d2"


@pytest.fixture
def fake_hello_retail() -> Iterator[FakeHelloRetail]:
    """A fake Hello Retail that knows the websites these tests use (Hello Retail refuses
    a websiteUuid it does not know), in memory; ``make_driver`` points at it."""
    with FakeHelloRetail(in_memory=True, website_uuids=[DEFAULT_WEBSITE_UUID, DK, SE]) as fake:
        yield fake


def page_on(host: str) -> dict[str, str]:
    """A browser's page navigation to *host*."""
    return {**PAGE, "Host": host}


def minted_for(fake: FakeHelloRetail) -> list[str]:
    """The websiteUuid of every mint the fake received, in order."""
    return [request.json["websiteUuid"] for request in fake.mint_requests()]


def jar(result: Result) -> dict[str, str]:
    """The cookies a browser keeps from *result*."""
    return {name: cookie.value for name, cookie in result.set_cookies.items() if not cookie.deleted}


def test_two_hosts_are_two_websites(adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any) -> None:
    driver = make_driver(adapter, websites={"shop.dk": DK, "Shop.SE": SE})

    dk = driver.get("/", headers=page_on("shop.dk"))
    se = driver.get("/", headers=page_on("shop.se:8443"))  # the port is not part of the host
    other = driver.get("/", headers=page_on("shop.test"))  # named by no key: the default website

    assert minted_for(fake_hello_retail) == [DK, SE, DEFAULT_WEBSITE_UUID]
    assert [r.app_id for r in (dk, se, other)] == fake_hello_retail.minted
    for result in (dk, se, other):
        # Host-only: each host keeps its own cookies, and so its own id.
        assert "domain" not in result.set_cookies[SDK].attributes
        assert "domain" not in result.set_cookies[SERVER].attributes


#: Host headers no browser sends, each named by no key: read as that host, never an error.
HOSTILE_HOSTS = [
    # Short labels: Flask's routing refuses a label over 63 characters itself (a 400 of the app's).
    pytest.param("ab." * 350_000, id="1-MB"),
    pytest.param("[::1", id="unclosed-ipv6-bracket"),
    pytest.param("shop.dk.evil:80@x", id="junk-after-a-name"),
    pytest.param(":::", id="colons-only"),
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_a_hostile_host_is_served_without_a_website_and_logged_briefly(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any, hr_log: Any, host: str
) -> None:
    """``"*": None``: a host no key names has no website. Whatever the Host header holds, the page
    is served, nothing is minted or set, and the log line quotes at most 100 of its characters."""
    driver = make_driver(adapter, websites={"shop.dk": DK, "*": None})

    result = driver.get("/", headers=page_on(host))

    assert result.status == 200
    assert result.app_id is None
    assert result.set_cookies == {}
    assert fake_hello_retail.mint_requests() == []
    assert all(len(record.getMessage()) < 300 for record in hr_log.records)


def test_a_host_with_a_long_port_is_its_name(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    driver = make_driver(adapter, websites={"shop.dk": DK, "*": None})

    result = driver.get("/", headers=page_on("SHOP.DK:" + "9" * 100_000))

    assert result.status == 200
    assert minted_for(fake_hello_retail) == [DK]
    assert result.app_id == fake_hello_retail.minted[0]
    assert "domain" not in result.set_cookies[SERVER].attributes


def test_a_shared_domain_applies_to_its_own_hosts_only(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    """``shop.dk`` and ``www.shop.dk`` share an id through ``domain``; ``shop.se`` keeps host-only
    cookies (a ``Domain=shop.dk`` cookie set on shop.se would be dropped, and every page would mint)."""
    driver = make_driver(adapter, websites={"shop.dk": DK, "www.shop.dk": DK, "shop.se": SE}, domain="shop.dk")

    www = driver.get("/", headers=page_on("www.shop.dk"))
    se = driver.get("/", headers=page_on("shop.se"))

    assert www.set_cookies[SDK].attributes["domain"] == "shop.dk"
    assert "domain" not in se.set_cookies[SDK].attributes
    assert "domain" not in se.set_cookies[SERVER].attributes
    assert minted_for(fake_hello_retail) == [DK, SE]


def test_a_visitor_of_two_websites_keeps_two_ids(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    driver = make_driver(adapter, websites={"shop.dk": DK, "shop.se": SE})
    jars: dict[str, dict[str, str]] = {}
    seen: dict[str, list[str | None]] = {"shop.dk": [], "shop.se": []}

    for host in ("shop.dk", "shop.se", "shop.dk", "shop.se", "shop.dk"):
        result = driver.get("/", headers=page_on(host), cookies=jars.get(host))
        jars.setdefault(host, jar(result))  # the browser keeps each host's cookies apart
        seen[host].append(result.app_id)

    assert minted_for(fake_hello_retail) == [DK, SE]
    dk_id, se_id = fake_hello_retail.minted
    assert seen == {"shop.dk": [dk_id] * 3, "shop.se": [se_id] * 2}


def test_path_prefixes_keep_each_website_under_its_prefix(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    """Path websites on one host: each website's cookies have its prefix as Path, so a
    browser sends the /dk id only under /dk. (The test apps answer 404 to these paths
    but for the plain WSGI one: the middleware serves the page all the same.)"""
    driver = make_driver(adapter, websites={"/dk/": DK, "/se": SE, "*": None})

    dk = driver.get("/dk/")
    se = driver.get("/se/shoes")
    outside = driver.get("/")
    again = driver.get("/dk/cart", cookies=jar(dk))

    assert minted_for(fake_hello_retail) == [DK, SE]
    for result, path in ((dk, "/dk"), (se, "/se")):
        assert result.set_cookies[SDK].attributes["path"] == path
        assert result.set_cookies[SERVER].attributes["path"] == path
    assert outside.seen == {"id": None, "native": None, "origin": None, "reason": "no_website"}
    assert outside.set_cookies == {}
    assert again.set_cookies == {}  # the returning visitor of /dk: no mint, nothing to write


def test_a_callable_chooses_and_its_bad_answers_are_logged_without_a_mint(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any, hr_log: pytest.LogCaptureFixture
) -> None:
    def by_host(request: RequestFacts) -> str | None:
        host = request.host.partition(":")[0]
        if host == "boom.test":
            raise RuntimeError("the shop's bug")
        return {"shop.dk": DK.upper(), "bad.test": "shop-se", "none.test": None}.get(host, SE)

    driver = make_driver(adapter, websites=by_host)

    reasons = {host: driver.get("/", headers=page_on(host)).seen["reason"] for host in ("shop.dk", "shop.se")}
    refused = {host: driver.get("/", headers=page_on(host)).seen for host in ("boom.test", "bad.test", "none.test")}

    assert reasons == {"shop.dk": None, "shop.se": None}
    assert minted_for(fake_hello_retail) == [DK, SE]  # an upper-case answer is the same website
    for seen in refused.values():
        assert seen == {"id": None, "native": None, "origin": None, "reason": "no_website"}
    errors = [r for r in hr_log.records if r.levelno == logging.ERROR]
    assert [r.msg for r in errors] == [WEBSITE_HOOK_FAILED, WEBSITE_ANSWER_INVALID]
    assert errors[0].exc_info is not None
    assert errors[1].getMessage() == WEBSITE_ANSWER_INVALID % ("'shop-se'",)


def test_the_client_and_the_app_use_the_requests_website(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    """``/website`` sends a pageview with a client made for another website: the
    request's website wins (an explicit ``websiteUuid=`` would win over both)."""
    driver = make_driver(adapter, websites={"shop.dk": DK, "shop.se": SE})
    path = "/website?api=" + quote(fake_hello_retail.url, safe="")

    seen = [driver.get(path, headers=page_on(host)).seen for host in ("shop.dk", "shop.se", "shop.test")]

    assert seen == [{"website": DK}, {"website": SE}, {"website": DEFAULT_WEBSITE_UUID}]
    pageviews = fake_hello_retail.api_requests("/serve/collect/pageview")
    assert [r.json["websiteUuid"] for r in pageviews] == [DK, SE, DEFAULT_WEBSITE_UUID]
    assert minted_for(fake_hello_retail) == [DK, SE, DEFAULT_WEBSITE_UUID]


def test_outside_a_request_there_is_no_website() -> None:
    assert get_website_uuid() is None


# -- refused at start-up -------------------------------------------------------------------------

#: (websites, what the refusal says after naming the option: ``websites`` or Django's ``HELLO_RETAIL['WEBSITES']``).
BAD_WEBSITES = [
    pytest.param({"shop.dk": "not-a-uuid"}, "'not-a-uuid' is not a UUID", id="bad-uuid"),
    pytest.param({"https://shop.dk": DK}, "'https://shop.dk' is neither a host name", id="url"),
    pytest.param({"shop.dk:8000": DK}, "'shop.dk:8000' is neither a host name", id="port"),
    pytest.param({"shop.dk": DK, "/se/": SE}, "either by host or by path prefix, not both", id="mixed"),
    pytest.param({"/dk/": DK}, "with path prefixes, the pages outside them cannot have a website", id="path-default"),
    pytest.param({"/dk/": DK, "/dk": SE, "*": None}, "the path prefix '/dk' is named twice", id="twice"),
    pytest.param({}, "empty;", id="empty"),
    pytest.param(["shop.dk"], "expected a mapping of hosts or path prefixes", id="list"),
]


def start(adapter: str, **options: Any) -> Any:
    """Start *adapter*'s middleware with *options* (and a valid website_uuid), as a shop does."""
    config = {"website_uuid": DEFAULT_WEBSITE_UUID, **options}
    if adapter == "wsgi":
        return wsgi.TrackingUserMiddleware(plain_wsgi_app, **config)
    if adapter == "asgi":
        return asgi.TrackingUserMiddleware(starlette_app(), **config)
    if adapter == "fastapi":
        from fastapi import FastAPI

        app = FastAPI()
        app.add_middleware(asgi.TrackingUserMiddleware, **config)
        return app.build_middleware_stack()
    if adapter == "flask":
        from flask import Flask

        from hr_middleware.flask import HelloRetail

        flask_app = Flask("websites")
        flask_app.config.update({"HELLO_RETAIL_" + name.upper(): value for name, value in config.items()})
        return HelloRetail(flask_app)
    from django.test import Client, override_settings

    from .django_site import configure

    configure()
    urls = "tests.django_site.async_urls" if adapter == "django_async" else "tests.django_site.urls"
    with override_settings(HELLO_RETAIL={k.upper(): v for k, v in config.items()}, ROOT_URLCONF=urls):
        if adapter == "django_async":
            from django.core.handlers.asgi import ASGIHandler

            return ASGIHandler()
        Client().handler.load_middleware()
        return None


@pytest.mark.parametrize(("websites", "message"), BAD_WEBSITES)
def test_a_bad_websites_option_is_refused_at_start_naming_it(adapter: str, websites: Any, message: str) -> None:
    with pytest.raises(Exception) as refused:  # ValueError, TypeError, or Django's ImproperlyConfigured
        start(adapter, websites=websites)

    said = str(refused.value)
    assert message in said
    assert said.startswith("websites") or "HELLO_RETAIL['WEBSITES']" in said


def test_a_shared_domain_over_two_websites_is_refused() -> None:
    """One cookie for dk.shop.example and se.shop.example would be one id for two websites."""
    with pytest.raises(ValueError, match=r"domain: '.shop.example' would share one cookie, and so one id"):
        Settings(
            website_uuid=DEFAULT_WEBSITE_UUID,
            websites={"dk.shop.example": DK, "se.shop.example": SE},
            domain=".shop.example",
        )
    # One website on two hosts under the domain is what the domain option is for.
    shared = {"shop.example": DK, "www.shop.example": DK, "shop.se": SE}
    assert Settings(website_uuid=DK, websites=shared, domain="shop.example").domain == "shop.example"


@pytest.mark.parametrize("option", ["cookie_name", "sdk_cookie_name"])
def test_a_host_prefixed_cookie_name_beside_path_websites_is_refused(option: str) -> None:
    """Path websites write their cookies with ``Path=/dk``; a browser drops a ``__Host-`` cookie
    whose Path is not ``/``, so every page would mint again."""
    with pytest.raises(ValueError, match=rf"{option}: '__Host-hr' starts with '__Host-'.*Path=/"):
        Settings(website_uuid=DK, websites={"/dk/": DK, "/se/": SE, "*": None}, secure=True, **{option: "__Host-hr"})
    # By host, the cookies keep Path=/: the prefix is fine there.
    assert Settings(website_uuid=DK, websites={"shop.dk": DK}, secure=True, **{option: "__Host-hr"})


# -- the choice itself (the core, no adapter) ------------------------------------------------------


class Facts(RequestFacts):
    """Request facts with only a host and a path."""

    __slots__ = ("_host", "_path")

    def __init__(self, host: str = "shop.test", path: str = "/") -> None:
        super().__init__("")
        self._host, self._path = host, path

    @property
    def host(self) -> str:
        return self._host

    @property
    def path(self) -> str:
        return self._path


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("shop.dk", DK, id="exact"),
        pytest.param("SHOP.DK:443", DK, id="case-and-port"),
        pytest.param("shop.dk.", DK, id="final-dot"),
        pytest.param("www.shop.dk", DEFAULT_WEBSITE_UUID, id="a-subdomain-is-another-host"),
        pytest.param("[::1]:8000", SE, id="ipv6"),
        pytest.param("", DEFAULT_WEBSITE_UUID, id="no-host"),
    ],
)
def test_hosts_are_compared_as_browsers_name_them(host: str, expected: str) -> None:
    settings = Settings(website_uuid=DEFAULT_WEBSITE_UUID, websites={"shop.dk": DK, "[::1]": SE})
    assert settings.website_choice.choose(Facts(host=host))[0] == expected


@pytest.mark.parametrize(
    ("path", "expected", "cookie_path"),
    [
        pytest.param("/dk", DK, "/dk", id="the-prefix-itself"),
        pytest.param("/dk/shoes", DK, "/dk", id="under-it"),
        pytest.param("/dk/b2b/order", SE, "/dk/b2b", id="the-longest-wins"),
        pytest.param("/dkk", None, None, id="not-a-segment-boundary"),
        pytest.param("/", None, None, id="outside"),
    ],
)
def test_path_prefixes_name_whole_segments(path: str, expected: str | None, cookie_path: str | None) -> None:
    settings = Settings(website_uuid=DEFAULT_WEBSITE_UUID, websites={"/dk/": DK, "/dk/b2b/": SE, "*": None})
    choice = settings.website_choice
    assert choice.choose(Facts(path=path))[0] == expected
    assert choice.cookie_path(Facts(path=path)) == cookie_path


def test_one_website_is_never_chosen_per_request() -> None:
    """Without ``websites`` (or with a mapping that can only say the default) the policy asks nothing."""
    for settings in (
        Settings(website_uuid=DK),
        Settings(website_uuid=DK, websites={"*": DK.upper()}),
    ):
        assert not settings.website_choice.several
        assert settings.website_choice.uuids() == {DK}


# -- consent, prefetch, Django sites --------------------------------------------------------------------


def test_grant_mints_for_the_requests_website_or_not_at_all(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    """A visitor who had declined consents on this page: the mint it is now due is its website's."""
    driver = make_driver(adapter, websites={"shop.dk": DK, "*": None}, consent=lambda request: False)

    on_dk = driver.get("/grant", headers=page_on("shop.dk"))
    elsewhere = driver.get("/grant", headers=page_on("shop.test"))

    assert minted_for(fake_hello_retail) == [DK]
    assert on_dk.seen["origin"] == "minted"
    # (The environ's and request.state's copies of the id were set before the grant: "native" is left out.)
    assert [elsewhere.seen[key] for key in ("id", "origin", "reason")] == [None, None, "no_website"]


def test_the_prefetch_pool_serves_the_default_website_and_others_mint_inline(
    make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    driver = make_driver("wsgi", prefetch=1, websites={"shop.se": SE})
    minter = driver.middleware._minter
    se = driver.get("/", headers=page_on("shop.se"))
    assert not minter.refilling  # another website's first visit starts no refill of the default's pool
    default = driver.get("/", headers=page_on("shop.test"))
    assert fake_hello_retail.wait_for_requests(3), "the refill's mint did not arrive"
    minter.close()

    assert minted_for(fake_hello_retail) == [SE, DEFAULT_WEBSITE_UUID, DEFAULT_WEBSITE_UUID]
    assert se.app_id == fake_hello_retail.minted[0]
    # The inline mint and the refill it wakes run at once: either may be second.
    assert default.app_id in fake_hello_retail.minted[1:]


def website_of_site(request: RequestFacts) -> str | None:
    """docs/websites.md's recipe: the current Django Site's website (by its domain)."""
    from django.contrib.sites.shortcuts import get_current_site

    return {"shop.dk": DK, "shop.se": SE}.get(get_current_site(request.native).domain)


@pytest.mark.parametrize("adapter", ["django", "django_async"])
def test_django_sites_choose_the_website(adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any) -> None:
    """Without the sites app installed ``get_current_site`` is a ``RequestSite`` of the request's host;
    with it, the ``Site`` of that host (no ``SITE_ID``): the recipe reads its domain either way."""
    from hr_middleware.django import read_settings

    driver = make_driver(adapter, websites=website_of_site)
    seen = [driver.get("/", headers=page_on(host)).seen for host in ("shop.dk", "shop.se", "shop.test")]
    dotted = read_settings({"WEBSITE_UUID": DK, "WEBSITES": "tests.test_websites.website_of_site"})

    assert minted_for(fake_hello_retail) == [DK, SE]
    assert [s["reason"] for s in seen] == [None, None, "no_website"]
    assert dotted.websites is website_of_site


def test_the_returning_visitor_never_asks_for_its_website(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    """The choice is made only when a mint is due, a cookie is written or the app asks:
    the usual returning visitor's request costs what it cost with one website."""
    asked: list[str] = []

    def website_of(request: RequestFacts) -> str:
        asked.append(request.host)
        return DK

    driver = make_driver(adapter, websites=website_of)
    first = driver.get("/", headers=page_on("shop.dk"))
    assert asked == ["shop.dk"]  # the mint's

    for _ in range(3):
        assert driver.get("/silent", headers=page_on("shop.dk"), cookies=jar(first)).status == 200
    assert asked == ["shop.dk"]


# -- the script and the customer link follow the request's website ---------------------------------


def test_the_page_tells_the_script_the_requests_website(
    make_shop: Callable[..., Any],  # noqa: F811 - test_script's fixture, imported above
    fake_hello_retail: Any,
    hr_log: pytest.LogCaptureFixture,
) -> None:
    from hr_middleware import script
    from hr_middleware._core.log import SCRIPT_NOT_RENDERED

    script._logged.clear()  # another test may have logged it already in this process
    shop = make_shop(websites={"shop.dk": DK, "shop.se": SE, "*": None})

    pages = {host: shop("GET", "/", page_on(host)) for host in ("shop.dk", "shop.se", "shop.test")}

    assert told(pages["shop.dk"].text) == [init(DK)]
    assert told(pages["shop.se"].text) == [init(SE)]
    assert "<script" not in pages["shop.test"].text  # a page of no website: no script, and a comment saying why
    # "*": None is the shop's own choice, logged at DEBUG as the request's no mint is: not a WARNING.
    assert [r.msg for r in hr_log.records if r.levelno >= logging.WARNING] == []
    assert SCRIPT_NOT_RENDERED in [r.msg for r in hr_log.records if r.levelno == logging.DEBUG]


def test_a_customer_is_linked_on_the_requests_website(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    driver = make_driver(adapter, websites={"shop.dk": DK, "shop.se": SE})
    first = driver.get("/", headers=page_on("shop.se"))

    login = driver.get("/login?customer=c-42", headers=page_on("shop.se"), cookies=jar(first))

    assert login.seen["link"] == "linked", login.seen
    (link,) = fake_hello_retail.api_requests("/serve/collect/customerId")
    assert link.json["websiteUuid"] == SE


def test_one_id_of_two_websites_is_linked_on_each(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    """A callable that chooses by something other than the host or path (here a header) leaves one
    id cookie to two websites: a link remembered for one website is not a link on the other."""

    def by_market(request: RequestFacts) -> str | None:
        return {"dk": DK, "se": SE}.get(request.headers.get("x-market", ""))

    driver = make_driver(adapter, websites=by_market)
    cookies = {SERVER: "a" * 24, SDK: "a" * 24}

    on_dk = driver.get("/login?customer=c-42", headers={**PAGE, "X-Market": "dk"}, cookies=cookies)
    cookies.update(jar(on_dk))
    on_se = driver.get("/login?customer=c-42", headers={**PAGE, "X-Market": "se"}, cookies=cookies)
    cookies.update(jar(on_se))
    again = driver.get("/login?customer=c-42", headers={**PAGE, "X-Market": "se"}, cookies=cookies)

    assert [r.seen["link"] for r in (on_dk, on_se, again)] == ["linked", "linked", "already_linked"]
    links = fake_hello_retail.api_requests("/serve/collect/customerId")
    assert [link.json["websiteUuid"] for link in links] == [DK, SE]


def test_the_link_cookie_lives_where_the_id_cookies_do(
    adapter: str, make_driver: Callable[..., Any], fake_hello_retail: Any
) -> None:
    """With websites by host, ``domain="shop.dk"`` stays off shop.se's cookies: the link cookie's too
    (a ``Domain=shop.dk`` cookie is dropped on shop.se, and every page there would link again)."""
    driver = make_driver(adapter, websites={"shop.dk": DK, "www.shop.dk": DK, "shop.se": SE}, domain="shop.dk")
    first = driver.get("/", headers=page_on("shop.se"))

    login = driver.get("/login?customer=c-42", headers=page_on("shop.se"), cookies=jar(first))

    assert login.seen["link"] == "linked"
    assert "domain" not in first.set_cookies[SERVER].attributes
    assert "domain" not in login.set_cookies[SERVER + "_link"].attributes


def test_the_link_cookie_of_a_path_website_lives_under_its_prefix() -> None:
    """Path websites keep each website's cookies under its prefix; the link cookie (set and deleted) too."""
    from hr_middleware._core.customers import CustomerLinks

    from .test_policy import Facts

    class Under(Facts):
        path = property(lambda self: "/dk/login")

    links = CustomerLinks(Settings(website_uuid=DK, websites={"/dk/": DK, "/se/": SE, "*": None}))

    assert links.cookie(Under(), "1.x").path == "/dk"
    assert links.cookie(Under(), None).path == "/dk"
