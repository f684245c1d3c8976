"""The README's behaviour table ("What it does on each request"), run against each adapter's test client."""

from __future__ import annotations

from typing import Any

import pytest

from hr_middleware import is_valid_id
from hr_middleware.testing import FakeHelloRetail, Mode

from .drivers import ASSET, BOT, CHROME_UA, PAGE, XHR
from .ids import SDK, SERVER, A, B
from .servers import MintGate

NEW = "<new>"  # stands for "the id the fake server minted"

# cookies sent, options, expected id seen by the app, expected origin, cookies written {name: value}
RETURNING = [
    pytest.param({SERVER: A, SDK: A}, {}, A, "cookie", {}, id="both-cookies-equal"),
    pytest.param({SERVER: A}, {}, A, "cookie", {SDK: A}, id="server-only-share-writes-sdk"),
    pytest.param({SERVER: A}, {"share_with_sdk": False}, A, "cookie", {}, id="server-only-no-share"),
    pytest.param({SDK: B}, {}, B, "sdk_cookie", {SERVER: B}, id="sdk-only-adopted"),
    pytest.param({SERVER: "garbage", SDK: B}, {}, B, "sdk_cookie", {SERVER: B}, id="sdk-replaces-invalid-server"),
    pytest.param({SERVER: A, SDK: B}, {}, B, "sdk_cookie", {SERVER: B}, id="different-sdk-wins"),
    pytest.param({SERVER: A, SDK: "garbage"}, {}, A, "cookie", {SDK: A}, id="invalid-sdk-rewritten"),
    pytest.param({SERVER: A, SDK: "garbage"}, {"share_with_sdk": False}, A, "cookie", {}, id="invalid-sdk-left"),
    pytest.param({SERVER: f'"{A}"', SDK: A}, {}, A, "cookie", {}, id="quoted-value"),
    pytest.param(f"other=1; {SERVER}=bad; {SERVER}={A}; {SDK}={A}", {}, A, "cookie", {}, id="duplicate-name"),
]


@pytest.mark.parametrize(("cookies", "options", "expected_id", "origin", "written"), RETURNING)
def test_returning_visitor(
    adapter: str,
    make_driver: Any,
    fake_hello_retail: FakeHelloRetail,
    cookies: Any,
    options: dict[str, Any],
    expected_id: str,
    origin: str,
    written: dict[str, str],
) -> None:
    result = make_driver(adapter, **options).get("/", cookies=cookies)

    assert result.status == 200
    assert result.seen == {"id": expected_id, "native": expected_id, "origin": origin, "reason": None}
    assert {name: c.value for name, c in result.set_cookies.items()} == written
    assert fake_hello_retail.mint_attempts == 0


FIRST_VISIT_COOKIES = [
    pytest.param(None, id="no-cookie-header"),
    pytest.param({"session": "abc", "cart": "3"}, id="other-cookies-only"),
    pytest.param({SERVER: A.upper()}, id="upper-case-hex"),
    pytest.param({SERVER: A + "0"}, id="too-long"),
    pytest.param({SERVER: A[:-1]}, id="too-short"),
    pytest.param({SERVER: "g" * 24}, id="not-hex"),
    pytest.param({SERVER: "0" * 24, SDK: "0" * 24}, id="opt-out-sentinel-is-not-an-id"),
    pytest.param({SERVER: "", SDK: ""}, id="empty-values"),
    pytest.param(f"{SERVER}={A}\r\nSet-Cookie: x=1", id="crlf-injection"),
    pytest.param(f"{SERVER}={A[:12]}é{A[13:]}", id="non-ascii"),
    pytest.param(f"x{SERVER}={A}", id="name-suffix-is-another-cookie"),
    pytest.param(f"a=b{SERVER}={A}; {SDK}x={A}", id="name-inside-other-values"),
    pytest.param(f"{SERVER}=<script>alert(1)</script>", id="markup"),
]


@pytest.mark.parametrize("cookies", FIRST_VISIT_COOKIES)
def test_first_visit_mints_once_and_sets_both_cookies(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, cookies: Any
) -> None:
    result = make_driver(adapter).get("/", cookies=cookies)

    assert result.status == 200
    assert fake_hello_retail.mint_count == 1
    new = fake_hello_retail.minted[0]
    assert result.seen == {"id": new, "native": new, "origin": "minted", "reason": None}
    assert {name: c.value for name, c in result.set_cookies.items()} == {SERVER: new, SDK: new}
    for cookie in result.set_cookies.values():
        assert cookie.attributes["path"] == "/"
        assert cookie.attributes["max-age"] == "31536000"
        assert cookie.attributes["samesite"] == "Lax"
        assert "secure" not in cookie.attributes
        assert "httponly" not in cookie.attributes
        assert "domain" not in cookie.attributes
    # The invalid value never reaches a response header.
    raw = "\n".join(v for _, v in result.headers)
    for leaked in ("script", "é", "x=1"):
        assert leaked not in raw


def test_first_visit_without_sharing_sets_only_the_server_cookie(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    result = make_driver(adapter, share_with_sdk=False).get("/")

    assert list(result.set_cookies) == [SERVER]
    assert result.app_id == fake_hello_retail.minted[0]


def test_mint_request_carries_the_website_uuid(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    make_driver(adapter).get("/")

    (request,) = fake_hello_retail.mint_requests()
    assert request.json == {"websiteUuid": fake_hello_retail.website_uuid}
    assert request.headers["content-type"] == "application/json"


def test_second_visit_with_the_cookies_of_the_first_does_not_mint(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter)
    first = driver.get("/")
    cookies = {name: c.value for name, c in first.set_cookies.items()}

    for _ in range(3):
        again = driver.get("/", cookies=cookies)
        assert again.app_id == first.app_id
        assert again.set_cookies == {}
    assert fake_hello_retail.mint_count == 1


# method, path, headers, the reason the app is given for having no id
NO_MINT = [
    pytest.param("GET", "/asset.png", ASSET, "not_a_page", id="image"),
    pytest.param("GET", "/", XHR, "not_a_page", id="fetch-from-javascript"),
    pytest.param("POST", "/", PAGE, "not_a_page", id="form-post"),
    pytest.param("HEAD", "/", PAGE, "not_a_page", id="head"),
    pytest.param("GET", "/", BOT, "bot", id="googlebot"),
    pytest.param("GET", "/", {"Accept": "text/html"}, "bot", id="no-user-agent"),
    pytest.param("GET", "/", {"User-Agent": "curl/8.5.0", "Accept": "text/html"}, "bot", id="curl"),
    pytest.param("GET", "/", {"User-Agent": "curl/8.5.0", "Accept": "*/*"}, "bot", id="curl-default-accept"),
    pytest.param("GET", "/", {"User-Agent": CHROME_UA, "Accept": "*/*"}, "not_a_page", id="no-fetch-metadata-not-html"),
    pytest.param(
        "GET",
        "/",
        {"User-Agent": "facebookexternalhit/1.1", "Sec-Fetch-Dest": "document"},
        "bot",
        id="link-preview",
    ),
]


@pytest.mark.parametrize(("method", "path", "headers", "reason"), NO_MINT)
def test_requests_that_are_not_page_views_do_not_mint(
    adapter: str,
    make_driver: Any,
    fake_hello_retail: FakeHelloRetail,
    method: str,
    path: str,
    headers: Any,
    reason: str,
) -> None:
    result = make_driver(adapter).get(path, method=method, headers=headers)

    assert result.status == 200
    if method != "HEAD":
        assert result.seen == {"id": None, "native": None, "origin": None, "reason": reason}
    assert result.set_cookies == {}
    assert fake_hello_retail.mint_attempts == 0


def test_page_without_fetch_metadata_but_accepting_html_mints(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    result = make_driver(adapter).get("/", headers={"User-Agent": CHROME_UA, "Accept": "text/html"})

    assert is_valid_id(result.app_id)
    assert fake_hello_retail.mint_count == 1


def test_returning_visitor_on_an_asset_keeps_its_id(adapter: str, make_driver: Any) -> None:
    result = make_driver(adapter).get("/asset.png", headers=ASSET, cookies={SERVER: A, SDK: A})

    assert result.app_id == A


def test_custom_mint_when(adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver(adapter, mint_when=lambda request: request.path.startswith("/asset"))

    assert driver.get("/").seen["reason"] == "mint_when"
    assert is_valid_id(driver.get("/asset.png", headers=ASSET).app_id)
    assert fake_hello_retail.mint_count == 1


def test_mint_when_that_raises_is_logged_and_does_not_mint(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    def broken(request: Any) -> bool:
        raise ZeroDivisionError

    result = make_driver(adapter, mint_when=broken).get("/")

    assert result.status == 200
    assert result.app_id is None
    assert result.seen["reason"] == "mint_when"
    assert fake_hello_retail.mint_attempts == 0
    assert [r.getMessage() for r in hr_log.records] == ["mint_when raised; not minting for this request"]


@pytest.mark.parametrize(
    ("scheme", "secure", "expected"),
    [
        pytest.param("https", "auto", True, id="https-auto"),
        pytest.param("http", "auto", False, id="http-auto"),
        pytest.param("http", True, True, id="http-forced"),
        pytest.param("https", False, False, id="https-never"),
    ],
)
def test_secure_flag(adapter: str, make_driver: Any, scheme: str, secure: Any, expected: bool) -> None:
    result = make_driver(adapter, secure=secure).get("/", scheme=scheme)

    assert result.set_cookies
    assert all(("secure" in c.attributes) is expected for c in result.set_cookies.values())


def test_cookie_attributes_follow_the_options(adapter: str, make_driver: Any) -> None:
    result = make_driver(adapter, domain="shop.test", path="/shop", max_age=3600, samesite="Strict", httponly=True).get(
        "/"
    )

    for cookie in result.set_cookies.values():
        assert cookie.attributes["domain"] == "shop.test"
        assert cookie.attributes["path"] == "/shop"
        assert cookie.attributes["max-age"] == "3600"
        assert cookie.attributes["samesite"] == "Strict"
        assert "httponly" in cookie.attributes


FAILURES = [
    Mode.SERVER_ERROR,
    Mode.BAD_REQUEST,
    Mode.NOT_JSON,
    Mode.NO_ID,
    Mode.INVALID_ID,
    Mode.SUCCESS_FALSE,
    Mode.DROP,
    Mode.RESET,
    Mode.HANG,
    Mode.DRIP,
    Mode.HUGE,
]


@pytest.mark.parametrize("mode", FAILURES, ids=str)
def test_failed_mint_serves_the_page_unchanged(
    adapter: str,
    make_driver: Any,
    fake_hello_retail: FakeHelloRetail,
    hr_log: pytest.LogCaptureFixture,
    mode: Mode,
) -> None:
    fake_hello_retail.mode = mode
    driver = make_driver(adapter, timeout=0.3)

    result = driver.get("/silent")

    assert result.status == 200
    assert result.body == b"silent"
    assert result.set_cookies == {}
    assert result.header("cache-control") is None
    assert result.header("vary") is None
    assert fake_hello_retail.mint_attempts == 1
    warnings = [r for r in hr_log.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].getMessage().startswith("Hello Retail mint failed (")
    page = driver.get("/")
    assert page.seen == {"id": None, "native": None, "origin": None, "reason": "unreachable"}


def test_an_instance_inside_another_decides_nothing(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter)
    driver.wrap_in_outer_instance()

    result = driver.get("/")

    assert fake_hello_retail.mint_count == 1
    new = fake_hello_retail.minted[0]
    assert result.seen == {"id": new, "native": new, "origin": "minted", "reason": None}
    assert len(result.header_lines("set-cookie")) == 2
    assert {name: c.value for name, c in result.set_cookies.items()} == {SERVER: new, SDK: new}


VISITORS_AT_ONCE = 8


def test_first_visits_at_once_mint_at_once_each_their_own_id(adapter: str, make_driver: Any) -> None:
    # The gate answers no mint until all of them wait at once: mints made one
    # after another (a blocked event loop, a lock) would fail at its deadline.
    with MintGate(together=VISITORS_AT_ONCE, deadline=5) as gate:
        driver = make_driver(adapter, api_url=gate.url, timeout=10)

        results = driver.get_at_once(VISITORS_AT_ONCE)

    assert gate.arrived == VISITORS_AT_ONCE
    assert sorted(r.app_id for r in results) == sorted(gate.minted)
    assert len(set(gate.minted)) == VISITORS_AT_ONCE
    for result in results:
        assert result.seen["origin"] == "minted"
        assert {name: c.value for name, c in result.set_cookies.items()} == {SERVER: result.app_id, SDK: result.app_id}
