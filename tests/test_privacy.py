"""Consent, opt-out, cache safety and signed cookies, run against every adapter."""

from __future__ import annotations

from typing import Any

import pytest
from itsdangerous import TimestampSigner

import hr_middleware
from hr_middleware import OPT_OUT_ID, Settings, is_valid_id
from hr_middleware._core.ids import CookieSigner
from hr_middleware._core.log import BAD_SIGNATURE
from hr_middleware.consent import cookie_consent, cookiebot, cookieyes, onetrust
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE
from .ids import LINK, SDK, SERVER, UUID, A, B
from .test_policy import Facts

KEY = "a-secret-key-of-some-length"
#: The cookie that remembers a customer link (hr_middleware.customers): it goes with the id cookies.
#: A link cookie's value as link_customer() writes it (a digest; its value is not checked here).
LINKED = "1.AAAAAAAAAAAAAAAAAAAAAA"
OLD_KEY = "the-previous-secret-key"


def consent_from(answer: bool | None) -> Any:
    return lambda request: answer


# consent answer, consent_unknown, cookies sent -> id, mints, cookies written (None = deleted)
CONSENT = [
    pytest.param(True, False, {}, "<new>", 1, {SERVER: "<new>", SDK: "<new>"}, id="allowed-first-visit"),
    pytest.param(True, False, {SERVER: A, SDK: A}, A, 0, {}, id="allowed-returning"),
    pytest.param(False, False, {}, OPT_OUT_ID, 0, {}, id="declined-first-visit"),
    pytest.param(False, False, {SERVER: A, SDK: A}, OPT_OUT_ID, 0, {SERVER: None, SDK: None}, id="declined-deletes"),
    pytest.param(False, False, {SDK: B}, OPT_OUT_ID, 0, {SDK: None}, id="declined-deletes-sdk-only"),
    pytest.param(False, False, {SERVER: "junk"}, OPT_OUT_ID, 0, {SERVER: None}, id="declined-deletes-invalid"),
    pytest.param(
        False,
        False,
        {SERVER: A, SDK: A, LINK: LINKED},
        OPT_OUT_ID,
        0,
        {SERVER: None, SDK: None, LINK: None},
        id="declined-deletes-the-customer-link",
    ),
    pytest.param(None, False, {}, OPT_OUT_ID, 0, {}, id="unknown-is-declined-by-default"),
    pytest.param(None, False, {SERVER: A}, OPT_OUT_ID, 0, {SERVER: None}, id="unknown-declined-deletes"),
    pytest.param(None, True, {}, "<new>", 1, {SERVER: "<new>", SDK: "<new>"}, id="unknown-counted-as-allowed"),
]


@pytest.mark.parametrize(("answer", "unknown", "cookies", "expected_id", "mints", "written"), CONSENT)
def test_consent_table(
    adapter: str,
    make_driver: Any,
    fake_hello_retail: FakeHelloRetail,
    answer: bool | None,
    unknown: bool,
    cookies: dict[str, str],
    expected_id: str,
    mints: int,
    written: dict[str, str | None],
) -> None:
    driver = make_driver(adapter, consent=consent_from(answer), consent_unknown=unknown)

    result = driver.get("/", cookies=cookies)

    new = fake_hello_retail.minted[0] if fake_hello_retail.minted else None
    assert result.app_id == (new if expected_id == "<new>" else expected_id)
    assert fake_hello_retail.mint_attempts == mints
    got = {name: (None if c.deleted else c.value) for name, c in result.set_cookies.items()}
    assert got == {name: (new if value == "<new>" else value) for name, value in written.items()}
    if written:
        assert result.header("cache-control") == "private"
        assert result.header("vary") == "Cookie"


def test_gpc_signal_declines_when_respected(adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    gpc = {**PAGE, "Sec-GPC": "1"}

    respected = make_driver(adapter, respect_gpc=True).get("/", headers=gpc, cookies={SERVER: A})
    ignored = make_driver(adapter).get("/", headers=gpc, cookies={SERVER: A, SDK: A})

    assert respected.app_id == OPT_OUT_ID
    assert respected.set_cookies[SERVER].deleted
    assert ignored.app_id == A
    assert fake_hello_retail.mint_attempts == 0


def test_consent_hook_that_raises_counts_as_unknown(
    adapter: str, make_driver: Any, hr_log: pytest.LogCaptureFixture
) -> None:
    def broken(request: Any) -> bool:
        raise RuntimeError("banner bug")

    result = make_driver(adapter, consent=broken).get("/", cookies={SERVER: A})

    assert result.status == 200
    assert result.app_id == OPT_OUT_ID
    assert "consent hook raised; treating consent as unknown" in [r.getMessage() for r in hr_log.records]


def test_grant_mints_within_the_request(adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver(adapter, consent=consent_from(None))

    result = driver.get("/grant", method="POST", headers={"User-Agent": "Mozilla/5.0", "Accept": "*/*"})

    assert fake_hello_retail.mint_count == 1
    new = fake_hello_retail.minted[0]
    assert result.app_id == new
    assert {n: c.value for n, c in result.set_cookies.items()} == {SERVER: new, SDK: new}
    assert result.header("cache-control") == "private"


def test_grant_from_a_sync_endpoint_of_an_async_app(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    result = make_driver("asgi").get("/grant-sync", method="POST", headers={"User-Agent": "Mozilla/5.0"})

    assert result.app_id == fake_hello_retail.minted[0]
    assert set(result.set_cookies) == {SERVER, SDK}


def test_grant_keeps_an_existing_id(adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    result = make_driver(adapter).get("/grant", cookies={SDK: A})

    assert result.app_id == A
    assert fake_hello_retail.mint_attempts == 0
    assert {n: c.value for n, c in result.set_cookies.items()} == {SERVER: A, SDK: A}


def test_grant_never_mints_twice_in_one_request(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    from hr_middleware.testing import Mode

    fake_hello_retail.mode = Mode.SERVER_ERROR
    result = make_driver(adapter).get("/grant")  # a page view: minted (and failed) before the view ran

    assert result.app_id is None
    assert fake_hello_retail.mint_attempts == 1


@pytest.mark.parametrize(
    "cookies", [{SERVER: A, SDK: A}, {SERVER: A, SDK: A, LINK: LINKED}], ids=["id-cookies", "and-a-customer-link"]
)
def test_revoke_deletes_every_cookie_of_ours(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail, cookies: dict[str, str]
) -> None:
    """A withdrawn consent leaves nothing behind: both id cookies and the customer-link cookie
    (which may have been written earlier in the same request, so it goes even when not sent)."""
    result = make_driver(adapter).get("/revoke", cookies=cookies)

    assert result.app_id == OPT_OUT_ID
    assert {n: c.deleted for n, c in result.set_cookies.items()} == {SERVER: True, SDK: True, LINK: True}
    assert result.header("cache-control") == "private"


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"secure": True, "httponly": True, "samesite": "Strict", "domain": "shop.test", "path": "/shop"}),
        pytest.param({"secure": False, "httponly": False, "samesite": None}),
        pytest.param({"samesite": "None"}),
    ],
    ids=["secure-httponly-strict-domain-path", "plain", "samesite-none-auto-secure"],
)
def test_a_deletion_carries_the_attributes_of_the_write(
    adapter: str, make_driver: Any, options: dict[str, Any]
) -> None:
    """Deleting a cookie with other attributes than it was written with may leave it in place
    (a browser may refuse to touch a Secure cookie from a non-Secure Set-Cookie)."""
    driver = make_driver(adapter, **options)

    written = driver.get("/", scheme="https")
    login = {"User-Agent": PAGE["User-Agent"], "Accept": "text/html", "Sec-Fetch-Dest": "document"}
    linked = driver.get("/login?customer=53967", method="POST", headers=login, scheme="https", cookies={SERVER: A})
    written.set_cookies[LINK] = linked.set_cookies[LINK]  # HttpOnly whatever the id cookies are
    deleted = driver.get("/revoke", scheme="https", cookies={SERVER: A, SDK: A, LINK: LINKED})

    for name in (SERVER, SDK, LINK):
        attributes = dict(written.set_cookies[name].attributes)
        assert deleted.set_cookies[name].deleted
        gone = dict(deleted.set_cookies[name].attributes)
        for key in ("max-age", "expires"):
            attributes.pop(key, None)
            gone.pop(key, None)
        assert gone == attributes


CACHE = [
    pytest.param({}, "private", "Cookie", id="nothing"),
    pytest.param({"cc": "no-store"}, "no-store", "Cookie", id="no-store-kept"),
    pytest.param({"cc": "private, max-age=60"}, "private, max-age=60", "Cookie", id="private-kept"),
    pytest.param({"cc": "public, max-age=600"}, "private, max-age=600", "Cookie", id="public-made-private"),
    pytest.param(
        {"cc": "max-age=600", "vary": "Accept-Encoding"},
        "private, max-age=600",
        "Accept-Encoding, Cookie",
        id="vary-extended",
    ),
    pytest.param({"vary": "Cookie"}, "private", "Cookie", id="vary-not-duplicated"),
    pytest.param({"vary": "*"}, "private", "*", id="vary-star"),
]


@pytest.mark.parametrize(("query", "cache_control", "vary"), CACHE)
def test_cookie_setting_responses_are_kept_out_of_shared_caches(
    adapter: str, make_driver: Any, query: dict[str, str], cache_control: str, vary: str
) -> None:
    from urllib.parse import urlencode

    result = make_driver(adapter).get("/headers?" + urlencode(query))

    assert result.set_cookies
    assert result.header_lines("cache-control") == [cache_control]
    assert result.header_lines("vary") == [vary]


def test_returning_visitor_response_that_read_the_id_is_private(adapter: str, make_driver: Any) -> None:
    """No cookie is set, but the page was built for this visitor: most CDNs ignore Vary: Cookie."""
    result = make_driver(adapter).get("/headers?cc=public,+max-age%3D60", cookies={SERVER: A, SDK: A})

    assert result.set_cookies == {}
    assert result.header("cache-control") == "private, max-age=60"
    assert result.header("vary") == "Cookie"


def test_response_that_never_read_the_id_is_untouched(adapter: str, make_driver: Any) -> None:
    result = make_driver(adapter).get("/silent", cookies={SERVER: A, SDK: A})

    assert result.header("vary") is None
    assert result.header("cache-control") is None


# -- signed server cookie ---------------------------------------------------------------


def signed(tracking_user_id: str, key: str = KEY) -> str:
    return CookieSigner([key], 3600).sign(tracking_user_id)


SIGNED = [
    pytest.param(signed(A), A, False, id="good-signature"),
    pytest.param(signed(A)[:-2] + "xx", None, True, id="tampered-signature"),
    pytest.param(signed(A).replace(A, B), None, True, id="tampered-id"),
    pytest.param(signed(A, "some-other-secret-key"), None, True, id="wrong-key"),
    pytest.param(A, None, True, id="unsigned-raw-id-not-trusted"),
    pytest.param(
        TimestampSigner(KEY, salt=CookieSigner.SALT).sign("not-hex-at-all").decode(),
        None,
        True,
        id="signed-non-hex-payload",
    ),
]


@pytest.mark.parametrize(("value", "expected", "logged"), SIGNED)
def test_signed_server_cookie(
    adapter: str,
    make_driver: Any,
    fake_hello_retail: FakeHelloRetail,
    hr_log: pytest.LogCaptureFixture,
    value: str,
    expected: str | None,
    logged: bool,
) -> None:
    driver = make_driver(adapter, secret_key=KEY, mint_when=lambda r: False)

    result = driver.get("/", cookies={SERVER: value})

    assert result.app_id == expected
    messages = [(r.levelname, r.getMessage()) for r in hr_log.records]
    assert (("INFO", BAD_SIGNATURE % SERVER) in messages) is logged
    assert fake_hello_retail.mint_attempts == 0


def test_signed_mode_writes_signed_cookies_and_reads_them_back(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter, secret_key=KEY)

    first = driver.get("/")
    new = fake_hello_retail.minted[0]
    server_value = first.set_cookies[SERVER].value
    again = driver.get("/", cookies={SERVER: server_value, SDK: first.set_cookies[SDK].value})

    assert server_value != new
    assert server_value.startswith(new + ".")
    assert first.set_cookies[SDK].value == new  # Hello Retail's JavaScript must read it as is
    assert again.app_id == new
    assert again.set_cookies == {}
    assert fake_hello_retail.mint_count == 1


def test_old_key_is_accepted_and_re_signed(adapter: str, make_driver: Any) -> None:
    driver = make_driver(adapter, secret_key=[KEY, OLD_KEY])

    result = driver.get("/", cookies={SERVER: signed(A, OLD_KEY), SDK: A})

    assert result.app_id == A
    resigned = result.set_cookies[SERVER].value
    assert CookieSigner([KEY], 3600).unsign(resigned) == (A, False)


@pytest.mark.parametrize(("trust", "expected"), [(True, B), (False, A)])
def test_trust_sdk_cookie_decides_whether_an_unsigned_sdk_id_wins(
    adapter: str, make_driver: Any, trust: bool, expected: str
) -> None:
    driver = make_driver(adapter, secret_key=KEY, trust_sdk_cookie=trust)

    result = driver.get("/", cookies={SERVER: signed(A), SDK: B})

    assert result.app_id == expected


# Signed mode with its defaults: options, cookies sent -> id, mints, cookies written ("<new>": the minted id;
# the server cookie's value is shown unsigned). A sibling subdomain or a script can plant an unsigned SDK
# cookie; signing promises that it cannot choose the visitor's id unless the shop says so (trust_sdk_cookie).
PLANTED = [
    pytest.param({}, {SERVER: "signed:A", SDK: B}, A, 0, {SDK: A}, id="planted-sdk-loses-and-is-rewritten"),
    pytest.param({}, {SDK: B}, "<new>", 1, {SERVER: "<new>", SDK: "<new>"}, id="planted-sdk-alone-is-not-adopted"),
    pytest.param(
        {}, {SERVER: "tampered", SDK: B}, "<new>", 1, {SERVER: "<new>", SDK: "<new>"}, id="tampered-and-planted"
    ),
    pytest.param({}, {SERVER: "signed:A", SDK: A}, A, 0, {}, id="returning"),
    pytest.param({"share_with_sdk": False}, {SERVER: "signed:A", SDK: B}, A, 0, {}, id="not-shared-left-alone"),
    pytest.param({"trust_sdk_cookie": True}, {SERVER: "signed:A", SDK: B}, B, 0, {SERVER: B}, id="trusted-by-choice"),
    pytest.param({"trust_sdk_cookie": True}, {SDK: B}, B, 0, {SERVER: B}, id="trusted-alone-adopted"),
]


@pytest.mark.parametrize(("options", "cookies", "expected_id", "mints", "written"), PLANTED)
def test_with_a_secret_key_a_planted_sdk_cookie_cannot_choose_the_id(
    adapter: str,
    make_driver: Any,
    fake_hello_retail: FakeHelloRetail,
    options: dict[str, Any],
    cookies: dict[str, str],
    expected_id: str,
    mints: int,
    written: dict[str, str],
) -> None:
    driver = make_driver(adapter, secret_key=KEY, **options)
    sent = {name: signed(A) if value == "signed:A" else value for name, value in cookies.items()}
    if sent.get(SERVER) == "tampered":
        sent[SERVER] = signed(A).replace(A, B)

    result = driver.get("/", cookies=sent)

    new = fake_hello_retail.minted[0] if fake_hello_retail.minted else None
    assert result.app_id == (new if expected_id == "<new>" else expected_id)
    assert fake_hello_retail.mint_attempts == mints
    got = {name: c.value for name, c in result.set_cookies.items()}
    if SERVER in got:
        unsigned = CookieSigner([KEY], 3600).unsign(got[SERVER])
        assert unsigned is not None
        got[SERVER] = unsigned[0]
    assert got == {name: (new if value == "<new>" else value) for name, value in written.items()}


def test_trust_sdk_cookie_defaults_to_the_promise_of_signing() -> None:
    assert Settings(website_uuid=UUID).trust_sdk_cookie is None
    assert Settings(website_uuid=UUID).trusts_sdk_cookie is True  # nothing is signed: the SDK's id wins
    assert Settings(website_uuid=UUID, secret_key=KEY).trusts_sdk_cookie is False
    assert Settings(website_uuid=UUID, secret_key=KEY, trust_sdk_cookie=True).trusts_sdk_cookie is True
    # The default follows secret_key through replace() and the adapters' settings= plus options:
    assert Settings(website_uuid=UUID).replace(secret_key=KEY).trusts_sdk_cookie is False
    assert Settings.merge(Settings(website_uuid=UUID), {"secret_key": KEY}).trusts_sdk_cookie is False
    with pytest.raises(TypeError, match="trust_sdk_cookie"):
        Settings(website_uuid=UUID, trust_sdk_cookie="yes")  # type: ignore[arg-type]


class SignedAgo(TimestampSigner):
    """Signs as our cookie signer does, but stamps the value *seconds* ago."""

    def __init__(self, seconds: int, key: str = KEY) -> None:
        super().__init__(key, salt=CookieSigner.SALT)
        self.seconds = seconds

    def get_timestamp(self) -> int:
        return super().get_timestamp() - self.seconds


@pytest.mark.parametrize(("age", "expected"), [(0, (A, False)), (3590, (A, False)), (3610, None)])
def test_a_signature_older_than_max_age_is_treated_as_absent(age: int, expected: Any) -> None:
    value = SignedAgo(age).sign(A).decode()

    assert CookieSigner([KEY], max_age=3600).unsign(value) == expected


def test_an_expired_server_cookie_is_replaced_on_every_adapter(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter, secret_key=KEY, max_age=3600)

    result = driver.get("/", cookies={SERVER: SignedAgo(3610).sign(A).decode()})

    new = fake_hello_retail.minted[0]
    assert result.app_id == new
    assert result.set_cookies[SERVER].value.startswith(new + ".")


# -- consent readers ------------------------------------------------------------------


READERS = [
    pytest.param(cookie_consent("ok"), {}, None, id="generic-absent"),
    pytest.param(cookie_consent("ok"), {"ok": "1"}, True, id="generic-yes"),
    pytest.param(cookie_consent("ok"), {"ok": "0"}, False, id="generic-no"),
    pytest.param(cookie_consent("ok", {"yes", "all"}), {"ok": "all"}, True, id="generic-set"),
    pytest.param(cookie_consent("ok", lambda v: "ads" in v), {"ok": "stats%2Cads"}, True, id="generic-predicate"),
    pytest.param(
        cookiebot(), {"CookieConsent": "{stamp:%27x%27%2Cnecessary:true%2Cmarketing:true}"}, True, id="cookiebot-yes"
    ),
    pytest.param(
        cookiebot(), {"CookieConsent": "{stamp:'x',necessary:true,marketing:false}"}, False, id="cookiebot-no"
    ),
    pytest.param(cookiebot(), {"CookieConsent": "-1"}, True, id="cookiebot-not-required"),
    pytest.param(cookiebot("statistics"), {"CookieConsent": "{necessary:true}"}, None, id="cookiebot-missing"),
    pytest.param(
        onetrust(), {"OptanonConsent": "isGpcEnabled=0&groups=C0001%3A1%2CC0004%3A1&x=1"}, True, id="onetrust-yes"
    ),
    pytest.param(onetrust(), {"OptanonConsent": "groups=C0001:1,C0004:0"}, False, id="onetrust-no"),
    pytest.param(onetrust(), {}, None, id="onetrust-absent"),
    pytest.param(cookieyes(), {"cookieyes-consent": "consent:yes,advertisement:yes"}, True, id="cookieyes-yes"),
    pytest.param(cookieyes(), {"cookieyes-consent": "consent:no,advertisement:no"}, False, id="cookieyes-no"),
]


@pytest.mark.parametrize(("reader", "cookies", "expected"), READERS)
def test_consent_readers(reader: Any, cookies: dict[str, str], expected: bool | None) -> None:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())

    assert reader(Facts(header)) is expected


def test_outside_a_request_the_reason_says_so() -> None:
    assert hr_middleware.get_tracking_user() == (None, None, hr_middleware.NoIdReason.OUTSIDE_REQUEST)
    assert "not run inside a request" in hr_middleware.NoIdReason.OUTSIDE_REQUEST.explanation


def test_grant_outside_a_request_says_so() -> None:
    import contextvars

    from hr_middleware.consent import grant, revoke

    def outside() -> None:  # a fresh context: no request of an earlier test can leak into it
        with pytest.raises(LookupError, match="no Hello Retail visit"):
            grant()
        with pytest.raises(LookupError):
            revoke()

    contextvars.Context().run(outside)


def test_opt_out_id_is_never_written_as_a_cookie(adapter: str, make_driver: Any) -> None:
    result = make_driver(adapter, consent=consent_from(False)).get("/", cookies={SERVER: A, SDK: A})

    assert all(c.value != OPT_OUT_ID for c in result.set_cookies.values())
    assert is_valid_id(A)


def test_grant_after_unknown_consent_keeps_the_id_the_cookies_hold(
    adapter: str, make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver(adapter, consent=consent_from(None))  # unknown: declined when the request began

    result = driver.get("/grant", method="POST", cookies={SERVER: A, SDK: A})

    assert result.app_id == A
    assert fake_hello_retail.mint_attempts == 0
    assert {n: c.value for n, c in result.set_cookies.items()} == {SERVER: A, SDK: A}
