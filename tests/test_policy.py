"""The pure decision, exhaustively: server cookie x SDK cookie x mint_when x mint outcome.

No sockets: the mint is the callable the adapter would pass, here returning a
fixed id or None (a failed mint).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hr_middleware import OPT_OUT_ID, Origin, Settings
from hr_middleware._core.decide import TrackingPolicy
from hr_middleware._core.facts import RequestFacts, is_bot
from hr_middleware._core.headers import (
    _RAW_HEADERS,
    _TEXT_HEADERS,
    _patched,
    cache_headers,
    keep_out_of_shared_caches,
    patch_headers,
    patch_raw_headers,
    private_cache_control,
    vary_on_cookie,
)
from hr_middleware._core.log import INTERNAL_ERROR
from hr_middleware._core.visit import Decision
from hr_middleware._serving import Visit, patched

from .ids import SDK, SERVER, UUID, A, B, C

NEW = C


class Facts(RequestFacts):
    """Request facts from plain values, as an adapter would read them."""

    __slots__ = ("_headers", "_method", "_scheme")

    def __init__(self, cookie: str = "", *, method: str = "GET", scheme: str = "http", **headers: str) -> None:
        super().__init__(cookie)
        self._method = method
        self._scheme = scheme
        self._headers = {k.replace("_", "-").lower(): v for k, v in headers.items()}

    method = property(lambda self: self._method)
    path = property(lambda self: "/")
    scheme = property(lambda self: self._scheme)
    native = property(lambda self: None)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers


def visit_of(decision: Decision) -> Visit:
    """A visit made from *decision*, as the engine makes one."""
    return Visit(
        None, None, decision.tracking_user_id, decision.origin, decision.reason, decision.cookies, decision.mint
    )


def begin(policy: TrackingPolicy, facts: RequestFacts) -> Visit:
    """The visit the core decides for *facts*, before any mint."""
    return visit_of(policy.decide(facts))


def resolve(policy: TrackingPolicy, facts: RequestFacts, mint: Any) -> Visit:
    """The visit, with the mint it asks for run by *mint* (what an adapter does)."""
    visit = begin(policy, facts)
    if visit.must_mint:
        visit.minted = True
        visit.apply(policy.minted(facts, mint()))
    return visit


SERVER_STATES = {"absent": None, "invalid": "nothex", "A": A, "B": B}
SDK_STATES = {"absent": None, "invalid": "X" * 24, "A": A, "B": B}


def expected(server: str, sdk: str, mint_when: bool, mint_ok: bool, share: bool) -> dict[str, Any]:
    """The behaviour table of the README, written out independently of the code."""
    server_id, sdk_id = SERVER_STATES[server], SDK_STATES[sdk]
    server_valid = server in ("A", "B")
    sdk_valid = sdk in ("A", "B")
    if sdk_valid:
        writes = {} if server_id == sdk_id else {SERVER: sdk_id}
        origin = Origin.COOKIE if server_id == sdk_id else Origin.SDK_COOKIE
        return {"id": sdk_id, "origin": origin, "mints": 0, "writes": writes}
    if server_valid:
        writes = {SDK: server_id} if share else {}
        return {"id": server_id, "origin": Origin.COOKIE, "mints": 0, "writes": writes}
    if not mint_when:
        return {"id": None, "origin": None, "mints": 0, "writes": {}}
    if not mint_ok:
        return {"id": None, "origin": None, "mints": 1, "writes": {}}
    writes = {SERVER: NEW, SDK: NEW} if share else {SERVER: NEW}
    return {"id": NEW, "origin": Origin.MINTED, "mints": 1, "writes": writes}


CASES = [
    pytest.param(*combo, id="server={}-sdk={}-mint_when={}-mint_ok={}-share={}".format(*combo))
    for combo in itertools.product(SERVER_STATES, SDK_STATES, [True, False], [True, False], [True, False])
]


@pytest.mark.parametrize(("server", "sdk", "mint_when", "mint_ok", "share"), CASES)
def test_decision_table(server: str, sdk: str, mint_when: bool, mint_ok: bool, share: bool) -> None:
    # Without renewal: the bare ids here are cookies set before it (tests/test_renewal.py).
    settings = Settings(website_uuid=UUID, share_with_sdk=share, mint_when=lambda request: mint_when, renew_after=None)
    policy = TrackingPolicy(settings)
    parts = ["session=xyz"]
    if SERVER_STATES[server] is not None:
        parts.append(f"{SERVER}={SERVER_STATES[server]}")
    if SDK_STATES[sdk] is not None:
        parts.append(f"{SDK}={SDK_STATES[sdk]}")
    mints: list[int] = []

    def mint() -> str | None:
        mints.append(1)
        return NEW if mint_ok else None

    visit = resolve(policy, Facts("; ".join(parts)), mint)

    want = expected(server, sdk, mint_when, mint_ok, share)
    assert visit.tracking_user_id == want["id"]
    assert visit.origin == want["origin"]
    assert len(mints) == want["mints"]
    assert {name: c.value for name, c in visit.cookies.items()} == want["writes"]
    assert visit.must_mint is False


def test_mint_outcome_that_is_not_a_valid_id_is_ignored() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = resolve(policy, Facts(), lambda: "NOT-AN-ID")

    assert visit.tracking_user_id is None
    assert visit.cookies == {}
    assert visit.minted is True


def test_opt_out_sentinel_in_a_cookie_is_not_an_id() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: False))
    visit = begin(policy, Facts(f"{SERVER}={OPT_OUT_ID}; {SDK}={OPT_OUT_ID}"))

    assert visit.tracking_user_id is None


def test_secure_is_resolved_from_the_request_only_when_writing() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = resolve(policy, Facts(scheme="https"), lambda: NEW)

    assert visit.cookies
    assert all(c.secure for c in visit.cookies.values())
    returning = begin(policy, Facts(f"{SERVER}={A}; {SDK}={A}", scheme="https"))
    assert not returning.cookies  # nothing written, so Secure never asked for


@pytest.mark.parametrize(
    ("app_value", "expected_value"),
    [
        pytest.param(None, "private", id="none"),
        pytest.param("public, max-age=600", "private, max-age=600", id="public-becomes-private"),
        pytest.param("max-age=60, s-maxage=600", "private, max-age=60, s-maxage=600", id="shared-max-age"),
        pytest.param("private, max-age=60", None, id="already-private"),
        pytest.param("no-store", None, id="no-store-kept"),
        pytest.param("No-Store, no-cache", None, id="case-insensitive"),
        pytest.param("PUBLIC", "private", id="public-upper"),
        pytest.param("", "private", id="empty"),
        # RFC 9111 5.2.2.7: the qualified form lets a shared cache store the page without that header.
        pytest.param('private="Set-Cookie", max-age=60', "private, max-age=60", id="qualified-private"),
        pytest.param('private="Set-Cookie, X-A", public', "private", id="qualified-private-list"),
        pytest.param('no-cache="Set-Cookie"', 'private, no-cache="Set-Cookie"', id="qualified-no-cache"),
    ],
)
def test_private_cache_control(app_value: str | None, expected_value: str | None) -> None:
    assert private_cache_control(app_value) == expected_value


@pytest.mark.parametrize(
    ("app_value", "expected_value"),
    [
        pytest.param(None, "Cookie", id="none"),
        pytest.param("Accept-Encoding", "Accept-Encoding, Cookie", id="appended"),
        pytest.param("accept-encoding, cookie", None, id="already"),
        pytest.param("*", None, id="star"),
        pytest.param("Accept-Language,Origin", "Accept-Language, Origin, Cookie", id="no-spaces"),
    ],
)
def test_vary_on_cookie(app_value: str | None, expected_value: str | None) -> None:
    assert vary_on_cookie(app_value) == expected_value


def test_patch_headers_keeps_the_apps_headers_and_merges_cache_lines() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = resolve(policy, Facts(), lambda: NEW)
    app_headers = [
        ("Content-Type", "text/html"),
        ("Cache-Control", "public"),
        ("Cache-Control", "max-age=60"),
        ("Set-Cookie", "session=1; Path=/"),
        ("Vary", "Accept-Encoding"),
    ]

    out = patch_headers(visit, list(app_headers))

    assert out[:2] == [("Content-Type", "text/html"), ("Set-Cookie", "session=1; Path=/")]
    assert ("Cache-Control", "private, max-age=60") in out
    assert ("Vary", "Accept-Encoding, Cookie") in out
    assert [k for k, _ in out].count("Cache-Control") == 1
    assert [v.split("=")[0] for k, v in out if k == "Set-Cookie"] == ["session", SERVER, SDK]


def test_patch_headers_is_a_no_op_for_an_untouched_returning_visit() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID))
    visit = begin(policy, Facts(f"{SERVER}={A}; {SDK}={A}"))
    headers = [("Content-Type", "text/plain")]

    assert patch_headers(visit, headers) is headers


@pytest.mark.parametrize(
    ("cookies", "accessed", "current", "changes"),
    [
        pytest.param(True, False, {}, {"Cache-Control": "private", "Vary": "Cookie"}, id="writes-nothing-said"),
        pytest.param(
            False, True, {"cache-control": "public"}, {"cache-control": "private", "Vary": "Cookie"}, id="read-only"
        ),
        pytest.param(False, True, {}, {"Cache-Control": "private", "Vary": "Cookie"}, id="read-nothing-said"),
        pytest.param(False, False, {"cdn-cache-control": "max-age=60"}, {}, id="untouched"),
        pytest.param(
            True,
            False,
            {"cdn-cache-control": "max-age=600", "surrogate-control": "max-age=600", "vary": "Cookie"},
            {"Cache-Control": "private", "cdn-cache-control": "no-store", "surrogate-control": "no-store"},
            id="cdn-headers-on-a-write",
        ),
        pytest.param(
            False,
            True,
            {"CDN-Cache-Control": "public, max-age=600", "Cache-Control": "public, s-maxage=600"},
            {"Cache-Control": "private, s-maxage=600", "Vary": "Cookie", "CDN-Cache-Control": "no-store"},
            id="cdn-on-a-read",
        ),
        pytest.param(
            True,
            True,
            {"cdn-cache-control": "private", "surrogate-control": "no-store", "cache-control": "no-store"},
            {"Vary": "Cookie"},
            id="cdn-already-safe",
        ),
        pytest.param(
            False,
            True,
            {"cdn-cache-control": 'private="Set-Cookie"', "cache-control": "private"},
            {"Vary": "Cookie", "cdn-cache-control": "no-store"},
            id="cdn-qualified-private",
        ),
        pytest.param(
            False,
            True,
            {
                "Cloudflare-CDN-Cache-Control": "max-age=600",
                "vercel-cdn-cache-control": "max-age=600",
                "Akamai-Cache-Control": "public, max-age=600",
                "Edge-Control": "!no-store, cache-maxage=600s",
                "Vary": "Accept-Encoding",
            },
            {
                "Cache-Control": "private",
                "Vary": "Accept-Encoding, Cookie",
                "Cloudflare-CDN-Cache-Control": "no-store",
                "vercel-cdn-cache-control": "no-store",
                "Akamai-Cache-Control": "no-store",
                "Edge-Control": "no-store",
            },
            id="every-cdns-field-in-the-apps-spelling",
        ),
        pytest.param(
            False,
            True,
            {"Content-Type": "text/html", "X-CDN-Cache-Control-Hint": "max-age=600", "cdn-cache-control-x": "1"},
            {"Cache-Control": "private", "Vary": "Cookie"},
            id="other-headers-are-not-read",
        ),
    ],
)
def test_cache_headers(cookies: bool, accessed: bool, current: dict[str, str], changes: dict[str, str]) -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = resolve(policy, Facts(), lambda: NEW) if cookies else begin(policy, Facts(f"{SERVER}={A}; {SDK}={A}"))
    if accessed:
        visit.accessed = True  # the app read the id

    assert cache_headers(visit, current) == changes


def test_cookies_the_app_set_itself_are_left_to_it() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = resolve(policy, Facts(), lambda: NEW)
    app_headers = [("Set-Cookie", f"{SERVER}={B}; Path=/"), ("Content-Type", "text/html")]

    out = patch_headers(visit, app_headers)

    assert [v for k, v in out if k == "Set-Cookie" and v.startswith(SERVER)] == [f"{SERVER}={B}; Path=/"]
    assert [v.split("=")[0] for k, v in out if k == "Set-Cookie"] == [SERVER, SDK]
    assert ("Cache-Control", "private") in out


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            [("Cache-Control", b"public, max-age=600"), ("CDN-Cache-Control", "max-age=600")], id="bytes-value"
        ),
        pytest.param([("Vary", None), ("Surrogate-Control", "max-age=600")], id="none-value"),
        pytest.param(
            [("Vary", None), ("Cloudflare-CDN-Cache-Control", "max-age=600"), ("Edge-Control", "cache-maxage=600s")],
            id="targeted-fields",
        ),
    ],
)
def test_headers_that_cannot_be_patched_are_kept_out_of_shared_caches(
    headers: list[tuple[str, Any]], hr_log: pytest.LogCaptureFixture
) -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = resolve(policy, Facts(), lambda: NEW)

    out = patched(visit, headers, patch_headers)  # the serving layer's fail-safe around the core's patch

    assert ("Cache-Control", "private, no-store") in out
    assert not [k for k, _ in out if k.lower().endswith("control") and k != "Cache-Control"]
    assert [k for k, _ in out].count("Cache-Control") == 1
    assert [r.message for r in hr_log.records] == [INTERNAL_ERROR]


def test_a_header_mapping_that_cannot_be_patched_drops_every_cdn_field() -> None:
    """Django's response headers, as its adapter hands them over when patching failed."""
    from django.http import HttpResponse

    from .django_site import configure

    configure()
    response = HttpResponse(b"page", content_type="text/html")
    for name, value in [
        ("Cache-Control", "public, max-age=600"),
        ("CDN-Cache-Control", "max-age=600"),
        ("Cloudflare-CDN-Cache-Control", "max-age=600"),
        ("Akamai-Cache-Control", "public, max-age=600"),
        ("Edge-Control", "cache-maxage=600s"),
        ("Surrogate-Control", "max-age=600"),
    ]:
        response.headers[name] = value

    keep_out_of_shared_caches(response.headers)

    assert dict(response.headers.items()) == {"Content-Type": "text/html", "Cache-Control": "private, no-store"}


CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; SM-G991B; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"


@pytest.mark.parametrize(
    ("user_agent", "bot"),
    [
        # People, some in apps' own browsers:
        pytest.param(
            CHROME_ANDROID + " Telegram-Android/10.5.0 (Samsung SM-G991B; Android 13; SDK 33; AVERAGE)",
            False,
            id="telegram-in-app",
        ),
        pytest.param(IPHONE + " [Pinterest/iOS]", False, id="pinterest-in-app-ios"),
        pytest.param(CHROME_ANDROID + " [Pinterest/Android]", False, id="pinterest-in-app-android"),
        pytest.param(
            IPHONE + " Instagram 305.0.0.21.110 (iPhone14,5; iOS 17_0; en_US; en; scale=3.00)",
            False,
            id="instagram-in-app",
        ),
        pytest.param(IPHONE + " [FBAN/FBIOS;FBAV/440.0.0.33.110;FBBV/551234567]", False, id="facebook-in-app"),
        pytest.param("Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", False, id="firefox"),
        # Fetchers, crawlers and libraries:
        pytest.param("TelegramBot (like TwitterBot)", True, id="telegram-preview"),
        pytest.param("Pinterest/0.2 (+https://www.pinterest.com/bot.html)", True, id="pinterest-fetcher"),
        pytest.param(
            "Mozilla/5.0 (compatible; Pinterestbot/1.0; +https://www.pinterest.com/bot.html)", True, id="pinterestbot"
        ),
        pytest.param("Mozilla/5.0 (compatible; GoogleOther)", True, id="googleother"),
        pytest.param("GoogleOther-Image/1.0", True, id="googleother-image"),
        pytest.param(CHROME_ANDROID + " (compatible; Google-InspectionTool/1.0;)", True, id="google-inspectiontool"),
        pytest.param("Mediapartners-Google", True, id="mediapartners-google"),
        # Google's user-triggered fetchers, as Google documents their User-Agent strings:
        pytest.param(
            "Mozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/59.0.3071.125 Mobile Safari/537.36 (compatible; Google-Read-Aloud; "
            "+https://support.google.com/webmasters/answer/1061943)",
            True,
            id="google-read-aloud-mobile",
        ),
        pytest.param(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2272.118 "
            "Safari/537.36 (compatible; Google-Read-Aloud; +https://support.google.com/webmasters/answer/1061943)",
            True,
            id="google-read-aloud-desktop",
        ),
        pytest.param("google-speakr", True, id="google-read-aloud-former"),
        pytest.param("Google-NotebookLM", True, id="google-notebooklm"),
        pytest.param("Google-GeminiNotebook", True, id="google-notebooklm-renamed"),
        pytest.param("Google-Pinpoint", True, id="google-pinpoint"),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 11; Pixel 2; DuplexWeb-Google/1.0) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/86.0.4240.193 Mobile Safari/537.36",
            True,
            id="duplexweb-google",
        ),
        pytest.param(
            "Mozilla/5.0 (Linux; Android 8.0; Pixel 2 Build/OPD3.170816.012; DuplexWeb-Google/1.0) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.131 Mobile Safari/537.36",
            True,
            id="duplexweb-google-older",
        ),
        pytest.param("Google-Safety", True, id="google-safety"),
        pytest.param(
            "APIs-Google (+https://developers.google.com/webmasters/APIs-Google.html)", True, id="apis-google"
        ),
        pytest.param("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True, id="googlebot"),
        pytest.param("Mozilla/5.0 (compatible; Storebot-Google/1.0)", True, id="storebot-google"),
        pytest.param("AdsBot-Google (+http://www.google.com/adsbot.html)", True, id="adsbot-google"),
        pytest.param("WhatsApp/2.23.20.0", True, id="whatsapp-preview"),
        pytest.param("facebookexternalhit/1.1", True, id="facebook-preview"),
        pytest.param("curl/8.5.0", True, id="curl"),
        pytest.param("python-requests/2.32.3", True, id="requests"),
        pytest.param("", True, id="empty"),
        pytest.param(None, True, id="missing"),
    ],
)
def test_is_bot(user_agent: str | None, bot: bool) -> None:
    assert is_bot(user_agent) is bot


_HEADER_NAMES = [
    "Content-Type",
    "Vary",
    "vary",
    "VARY",
    "Cache-Control",
    "CDN-Cache-Control",
    "Surrogate-Control",
    "Cloudflare-CDN-Cache-Control",
    "Akamai-Cache-Control",
    "Edge-Control",
    "Edge-Controls",
    "Strict-Transport-Security",
    "X-Vary",
]
_HEADER_VALUES = ["text/html", "Accept-Encoding", "Cookie", "*", "public, max-age=60", "max-age=600", "no-store", ""]


@given(st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), st.sampled_from(_HEADER_VALUES)), max_size=6))
def test_a_page_that_only_read_the_id_is_patched_as_the_general_rules_say(headers: list[tuple[str, str]]) -> None:
    visit = Visit(None, None, A, Origin.COOKIE)
    visit.accessed = True

    general = _patched(visit, list(headers), _TEXT_HEADERS)
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]

    assert patch_headers(visit, list(headers)) == general
    assert patch_raw_headers(visit, raw) == _patched(visit, raw, _RAW_HEADERS)
