"""Renewal (docs/renewal.md): a returning visitor's cookies re-set with a fresh Max-Age on the
first page navigation of each period, run against each adapter on a clock the test moves."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from hr_middleware import OPT_OUT_ID, Settings
from hr_middleware._core.cookies import PERIOD_TOKENS, dated_id_or_none, period_token
from hr_middleware._core.decide import TrackingPolicy
from hr_middleware._core.returning import agreeing_id_reader
from hr_middleware._core.settings import ONE_DAY, ONE_YEAR
from hr_middleware.testing import FakeHelloRetail

from .drivers import ASSET, BOT, PAGE, XHR, Clock, Result, renewal_clock_on
from .ids import SDK, SERVER, UUID, A, B

#: 01:00 UTC on a day in 2026: far from the day's edges.
T0 = 20_790 * ONE_DAY + 3_600.0
TODAY, YESTERDAY, TOMORROW = (period_token(T0 + days * ONE_DAY, ONE_DAY) for days in (0, -1, 1))
KEY = "a-secret-key-of-some-length"


def driver_on_clock(make_driver: Any, adapter: str, **options: Any) -> tuple[Any, Clock]:
    """*adapter*'s driver with renewal (one day unless *options* say otherwise) on a clock at :data:`T0`."""
    options.setdefault("renew_after", ONE_DAY)
    driver = make_driver(adapter, **options)
    clock = Clock()
    clock.now = T0
    renewal_clock_on(driver, clock)
    return driver, clock


def written(result: Result) -> dict[str, str]:
    return {name: cookie.value for name, cookie in result.set_cookies.items()}


def assert_renewed(result: Result, tracking_user_id: str, token: str) -> None:
    """Both cookies re-set to the id, ours in period *token*, each for a fresh year; the response private."""
    assert written(result) == {SERVER: f"{tracking_user_id}.{token}", SDK: tracking_user_id}
    for cookie in result.set_cookies.values():
        assert cookie.attributes["max-age"] == str(ONE_YEAR)
        assert cookie.attributes["path"] == "/"
    assert "private" in (result.header("cache-control") or "")
    assert "Cookie" in (result.header("vary") or "")


def test_a_first_visit_writes_the_period_in_our_cookie(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver, _ = driver_on_clock(make_driver, adapter)
    result = driver.get("/")
    (new,) = fake_hello_retail.minted
    assert written(result) == {SERVER: f"{new}.{TODAY}", SDK: new}


def test_renewed_once_per_period_on_page_navigations(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver, clock = driver_on_clock(make_driver, adapter)
    first = driver.get("/")
    (new,) = fake_hello_retail.minted
    cookies = written(first)

    clock.now = T0 + 20 * 3_600  # later the same day: nothing to write
    same_day = driver.get("/", cookies=cookies)
    assert (same_day.app_id, written(same_day)) == (new, {})

    clock.now = T0 + ONE_DAY  # the next day: the first navigation renews, the next ones do not
    renewed = driver.get("/", cookies=cookies)
    assert renewed.seen == {"id": new, "native": new, "origin": "cookie", "reason": None}
    assert_renewed(renewed, new, TOMORROW)
    again = driver.get("/", cookies=written(renewed))
    assert (again.app_id, written(again)) == (new, {})
    assert fake_hello_retail.mint_attempts == 1


@pytest.mark.parametrize(
    ("path", "headers", "method"),
    [
        pytest.param("/", XHR, "GET", id="xhr"),
        pytest.param("/asset.png", ASSET, "GET", id="asset"),
        pytest.param("/", PAGE, "HEAD", id="head"),
        pytest.param("/", PAGE, "POST", id="form-post"),
        pytest.param("/", BOT, "GET", id="bot"),
    ],
)
def test_a_request_that_is_no_page_navigation_is_not_renewed(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, path: str, headers: dict[str, str], method: str
) -> None:
    driver, _ = driver_on_clock(make_driver, adapter)
    result = driver.get(path, headers=headers, cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A}, method=method)
    assert result.set_cookies == {}
    if method != "HEAD":
        assert result.app_id == A
    # ...and the page navigation after it is.
    assert_renewed(driver.get("/", cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A}), A, TODAY)
    assert fake_hello_retail.mint_attempts == 0


def test_an_opted_out_visitor_is_not_renewed(adapter: str, make_driver: Any) -> None:
    driver, _ = driver_on_clock(make_driver, adapter, consent=lambda request: False)
    result = driver.get("/", cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A})
    assert result.app_id == OPT_OUT_ID
    # Only the deletions of a declined visitor's cookies.
    assert {name: cookie.deleted for name, cookie in result.set_cookies.items()} == {SERVER: True, SDK: True}


@pytest.mark.parametrize("path", ["/headers", "/silent-headers"])
def test_a_renewal_keeps_a_cacheable_page_out_of_shared_caches(adapter: str, make_driver: Any, path: str) -> None:
    """A page the app marks public gets the renewal as a first visit's page gets its cookies:
    made private, varying on Cookie, every CDN's header no-store (the app read the id or not)."""
    driver, _ = driver_on_clock(make_driver, adapter)
    query = "?cc=public, max-age=600&cdn=public, max-age=600&surrogate=max-age=600"
    result = driver.get(path + query, cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A})
    assert written(result) == {SERVER: f"{A}.{TODAY}", SDK: A}
    assert result.header("cache-control") == "private, max-age=600"
    assert result.header("vary") == "Cookie"
    assert result.header("cdn-cache-control") == "no-store"
    assert result.header("surrogate-control") == "no-store"


def test_a_cacheable_page_of_a_visitor_not_due_a_renewal_stays_cacheable(adapter: str, make_driver: Any) -> None:
    driver, _ = driver_on_clock(make_driver, adapter)
    result = driver.get("/silent-headers?cc=public, max-age=600", cookies={SERVER: f"{A}.{TODAY}", SDK: A})
    assert result.set_cookies == {}
    assert result.header("cache-control") == "public, max-age=600"


@pytest.mark.parametrize(
    "cookies",
    [
        pytest.param({SERVER: A, SDK: A}, id="both-bare"),
        pytest.param({SDK: A, SERVER: A}, id="sdk-first"),
        pytest.param(f"session=1; {SERVER}={A}; {SDK}={A}; cart=2", id="among-others"),
    ],
)
def test_a_cookie_set_before_renewal_counts_and_is_renewed_once(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, cookies: Any
) -> None:
    driver, _ = driver_on_clock(make_driver, adapter)
    xhr = driver.get("/", headers=XHR, cookies=cookies)
    assert (xhr.app_id, written(xhr)) == (A, {})
    renewed = driver.get("/", cookies=cookies)
    assert renewed.app_id == A
    assert_renewed(renewed, A, TODAY)
    after = driver.get("/", cookies=written(renewed))
    assert (after.app_id, written(after)) == (A, {})
    assert fake_hello_retail.mint_attempts == 0


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"{A}.", id="no-token"),
        pytest.param(f"{A}.*", id="not-a-token"),
        pytest.param(f"{A}.{YESTERDAY}{TODAY}", id="old-token-then-junk"),
        pytest.param(f"{A}.{period_token(T0 + 3 * ONE_DAY, ONE_DAY)}", id="a-future-period"),
        pytest.param(f"{A}.<script>alert(1)</script>", id="markup"),
        pytest.param(f"{A}." + "9" * 5000, id="long"),
        pytest.param(f"{A}.{YESTERDAY}.{TODAY}", id="signed-looking"),
    ],
)
def test_a_tampered_period_is_ignored_safely(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, value: str
) -> None:
    """The id counts, the period does not: renewed on the navigation, the value never written back."""
    driver, _ = driver_on_clock(make_driver, adapter)
    xhr = driver.get("/", headers=XHR, cookies={SERVER: value, SDK: A})
    assert (xhr.status, xhr.app_id, written(xhr)) == (200, A, {})
    page = driver.get("/", cookies={SERVER: value, SDK: A})
    assert page.app_id == A
    assert_renewed(page, A, TODAY)
    assert fake_hello_retail.mint_attempts == 0


def test_a_junk_tail_after_a_fresh_token_is_ignored(adapter: str, make_driver: Any) -> None:
    """Only the token counts (the hot path reads one character): a fresh one is fresh."""
    driver, _ = driver_on_clock(make_driver, adapter)
    result = driver.get("/", cookies={SERVER: f"{A}.{TODAY}junk", SDK: A})
    assert (result.app_id, written(result)) == (A, {})


@pytest.mark.parametrize("renew_after", [ONE_DAY, None])
def test_the_sdk_cookie_is_restored_when_missing_and_ours_is_valid(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, renew_after: int | None
) -> None:
    """Safari drops a cookie Hello Retail's script wrote after 7 days; ours, set by the server, holds the id."""
    driver, _ = driver_on_clock(make_driver, adapter, renew_after=renew_after)
    ours = A if renew_after is None else f"{A}.{TODAY}"
    for headers in (PAGE, XHR):
        result = driver.get("/", headers=headers, cookies={SERVER: ours})
        assert result.app_id == A
        assert written(result) == {SDK: A}
        assert result.set_cookies[SDK].attributes["max-age"] == str(ONE_YEAR)
    assert fake_hello_retail.mint_attempts == 0


def test_an_sdk_cookie_alone_is_adopted_and_both_set_on_a_navigation(adapter: str, make_driver: Any) -> None:
    """Our cookie missing says nothing of when the SDK's was set: the navigation sets both (the SDK's
    from the server, which Safari keeps), an XHR call our cookie only (as without renewal)."""
    driver, _ = driver_on_clock(make_driver, adapter)
    xhr = driver.get("/", headers=XHR, cookies={SDK: B})
    assert (xhr.app_id, written(xhr)) == (B, {SERVER: f"{B}.{TODAY}"})
    assert_renewed(driver.get("/", cookies={SDK: B}), B, TODAY)


def test_without_renewal_our_cookie_holds_the_bare_id_and_is_never_renewed(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver, clock = driver_on_clock(make_driver, adapter, renew_after=None)
    first = driver.get("/")
    (new,) = fake_hello_retail.minted
    assert written(first) == {SERVER: new, SDK: new}
    clock.now = T0 + 300 * ONE_DAY
    later = driver.get("/", cookies={SERVER: new, SDK: new})
    assert (later.app_id, written(later)) == (new, {})
    dated = driver.get("/", cookies={SERVER: f"{new}.{YESTERDAY}", SDK: new})  # written while renewal was on
    assert (dated.app_id, written(dated)) == (new, {})


def test_a_weekly_renewal(adapter: str, make_driver: Any) -> None:
    week = 7 * ONE_DAY
    driver, clock = driver_on_clock(make_driver, adapter, renew_after=week)
    this_week = period_token(T0, week)
    cookies = {SERVER: f"{A}.{this_week}", SDK: A}
    clock.now = T0 + ONE_DAY
    assert written(driver.get("/", cookies=cookies)) in ({}, {SERVER: f"{A}.{period_token(clock.now, week)}", SDK: A})
    clock.now = (T0 // week + 1) * week + 60  # a minute into the next week
    assert_renewed(driver.get("/", cookies=cookies), A, period_token(clock.now, week))


def test_signed_cookies_are_renewed_by_the_time_they_were_signed(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver, clock = driver_on_clock(make_driver, adapter, secret_key=KEY)
    first = driver.get("/")
    (new,) = fake_hello_retail.minted
    cookies = written(first)
    assert cookies[SERVER].startswith(new + ".")
    clock.now = T0 + 20 * 3_600
    assert written(driver.get("/", cookies=cookies)) == {}
    clock.now = T0 + ONE_DAY
    renewed = driver.get("/", cookies=cookies)
    assert renewed.app_id == new
    assert written(renewed).keys() == {SERVER, SDK}
    assert written(renewed)[SERVER] != cookies[SERVER]  # signed again, at the new time
    assert written(driver.get("/", cookies=written(renewed))) == {}
    assert fake_hello_retail.mint_attempts == 1


# -- the core, without an adapter -------------------------------------------------------------


class Facts:
    """A page navigation by a browser with the Cookie header *cookie_header*."""

    def __init__(self, cookie_header: str) -> None:
        from hr_middleware._core.facts import RequestFacts

        class _Facts(RequestFacts):
            method, path, scheme, native = "GET", "/", "https", None
            headers: ClassVar[dict[str, str]] = {
                "user-agent": PAGE["User-Agent"],
                "sec-fetch-dest": "document",
                "accept": PAGE["Accept"],
            }

        self.facts = _Facts(cookie_header)


HEADERS = (
    [f"{SERVER}={A}.{token}; {SDK}={A}" for token in PERIOD_TOKENS + ".;*"]
    + [
        f"{SDK}={A}; {SERVER}={A}.{token}{tail}"
        for token in (YESTERDAY, TODAY, TOMORROW)
        for tail in ("", "x", ",x=1", "; other=1")
    ]
    + [f"{SDK}={A}; {SERVER}={A}.", f"{SDK}={A}; {SERVER}={A}"]
)


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(T0, id="mid-day"),
        pytest.param(T0 - 3_600, id="at-midnight"),
        pytest.param(T0 - 3_600 - 1, id="a-second-before-midnight"),
        pytest.param(T0 - 3_600 - 300, id="within-the-skew"),
        pytest.param(T0 - 3_600 - 301, id="before-the-skew"),
    ],
)
@pytest.mark.parametrize("kind", [bytes, str])
def test_the_hot_path_answers_as_the_long_way(now: float, kind: type) -> None:
    """Whatever the hot path accepts, the long way accepts with the same id and nothing to write."""
    settings = Settings(website_uuid=UUID)
    policy = TrackingPolicy(settings, clock=lambda: now)
    read = agreeing_id_reader(SERVER, SDK, kind, renew_after=ONE_DAY, clock=lambda: now)
    accepted = 0
    for header in HEADERS:
        found = read(header.encode("latin-1") if kind is bytes else header)
        decision = policy.decide(Facts(header).facts)
        if found is not None:
            accepted += 1
            assert (decision.tracking_user_id, decision.cookies) == (found, ()), header
    assert accepted >= 5  # the current period's token, alone and with each tail


def test_a_renewal_period_is_at_most_half_the_cookie_lifetime() -> None:
    assert TrackingPolicy(Settings(website_uuid=UUID, max_age=3_600)).renew_after == 1_800
    assert TrackingPolicy(Settings(website_uuid=UUID)).renew_after == ONE_DAY


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (10**9, ValueError), ("1", TypeError), (True, TypeError), (1.5, TypeError)],
)
def test_a_bad_renew_after_is_refused_naming_it(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="renew_after"):
        Settings(website_uuid=UUID, renew_after=value)  # type: ignore[arg-type]


def test_the_value_format() -> None:
    assert dated_id_or_none(A) == (A, None)
    assert dated_id_or_none(f"{A}.k") == (A, "k")
    assert dated_id_or_none(f"{A}.kjunk") == (A, "k")
    assert dated_id_or_none(f"{A}.") == (A, None)
    assert dated_id_or_none(f"{A}x") is None
    assert dated_id_or_none(f"{A[:-1]}g.k") is None
    assert dated_id_or_none(f"{OPT_OUT_ID}.k") is None


def test_a_renewal_writes_each_cookie_as_configured(adapter: str, make_driver: Any) -> None:
    """The renewed cookies carry the options' attributes; without sharing, ours alone is renewed."""
    options = {"domain": "shop.test", "samesite": "Strict", "httponly": True, "max_age": 30 * ONE_DAY}
    driver, _ = driver_on_clock(make_driver, adapter, **options)
    result = driver.get("/", cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A}, scheme="https")
    assert written(result) == {SERVER: f"{A}.{TODAY}", SDK: A}
    for cookie in result.set_cookies.values():
        attributes = {key: value.lower() for key, value in cookie.attributes.items()}
        assert attributes["max-age"] == str(30 * ONE_DAY)
        assert attributes["domain"] == "shop.test"
        assert attributes["samesite"] == "strict"
        assert {"secure", "httponly"} <= attributes.keys()

    alone, _ = driver_on_clock(make_driver, adapter, share_with_sdk=False)
    assert written(alone.get("/", cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A})) == {SERVER: f"{A}.{TODAY}"}


#: Two Hello Retail websites (docs/websites.md); no mint happens in the tests that name them.
DK, SE = "00000000-0000-4000-8000-0000000000d1", "00000000-0000-4000-8000-0000000000d2"


def test_a_renewal_keeps_each_websites_cookies_where_its_first_visit_put_them(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    """A path website's cookies are renewed under its prefix; with websites by host, a ``domain``
    that is not the request's host is left out (host-only), as on a first visit."""
    by_path, _ = driver_on_clock(make_driver, adapter, websites={"/dk/": DK, "*": None})
    result = by_path.get("/dk/shoes", cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A})
    assert written(result) == {SERVER: f"{A}.{TODAY}", SDK: A}
    assert {cookie.attributes["path"] for cookie in result.set_cookies.values()} == {"/dk"}

    by_host, _ = driver_on_clock(make_driver, adapter, websites={"shop.dk": DK, "shop.se": SE}, domain="shop.dk")
    on_dk = by_host.get("/", cookies={SERVER: f"{A}.{YESTERDAY}", SDK: A}, headers={**PAGE, "Host": "www.shop.dk"})
    on_se = by_host.get("/", cookies={SERVER: f"{B}.{YESTERDAY}", SDK: B}, headers={**PAGE, "Host": "shop.se"})
    assert written(on_dk) == {SERVER: f"{A}.{TODAY}", SDK: A}
    assert written(on_se) == {SERVER: f"{B}.{TODAY}", SDK: B}
    assert {cookie.attributes.get("domain") for cookie in on_dk.set_cookies.values()} == {"shop.dk"}
    assert {cookie.attributes.get("domain") for cookie in on_se.set_cookies.values()} == {None}
    assert fake_hello_retail.mint_requests() == []
