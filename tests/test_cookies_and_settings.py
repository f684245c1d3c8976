"""Reading ids out of Cookie headers, what a valid id is, and settings validation."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hr_middleware import OPT_OUT_ID, Settings, is_valid_id
from hr_middleware._core.cookies import find_cookie
from hr_middleware._core.facts import parse_cookies
from hr_middleware._core.public_suffixes import is_public_suffix

from .ids import UUID, A, B

ROOT = Path(__file__).resolve().parent.parent
KEY = "helloRetailTrackingUserId="
#: 253 characters: the longest domain name.
LONGEST_DOMAIN = ("a" * 62 + ".") * 3 + "a" * 56 + ".example"


def accept(value: str) -> str | None:
    return value if is_valid_id(value) else None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(f"{KEY}{A}", A, id="alone"),
        pytest.param(f"a=1; {KEY}{A}; b=2", A, id="middle"),
        pytest.param(f"a=1;{KEY}{A}", A, id="no-space"),
        pytest.param(f"a=1;   \t{KEY}{A}  ;b", A, id="extra-whitespace"),
        pytest.param(f'{KEY}"{A}"', A, id="quoted"),
        pytest.param(f"{KEY}bad; {KEY}{A}", A, id="first-invalid-second-valid"),
        pytest.param(f"{KEY}{A.upper()}", None, id="upper-case"),
        pytest.param(f"x{KEY}{A}", None, id="longer-name"),
        pytest.param(f"a=x {KEY}{A}", None, id="inside-a-value-after-space"),
        pytest.param(f"a={KEY}{A}", None, id="inside-a-value"),
        pytest.param(f"{KEY}{A}x", None, id="trailing-garbage"),
        pytest.param(f"{KEY}", None, id="empty"),
        pytest.param(f"{KEY}{OPT_OUT_ID}", None, id="opt-out-sentinel"),
        pytest.param("", None, id="no-header"),
        pytest.param(";;;;", None, id="separators"),
        pytest.param(f'{KEY}"{A}', None, id="unbalanced-quote"),
    ],
)
def test_find_cookie(header: str, expected: str | None) -> None:
    assert find_cookie(header, KEY, accept) == expected


OPTANON = "groups=C0001:1,C0004:1&genVendors=V2:1,V1:1,&geolocation=DK%3B84"
COOKIEBOT = "{stamp:%27x%27,necessary:true,marketing:true}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("a=1; b=2", {"a": "1", "b": "2"}, id="as-browsers-send-it"),
        pytest.param("a=1, b=2", {"a": "1", "b": "2"}, id="two-lines-joined-with-comma-blank"),
        # Joined with "," alone (gunicorn 27, Django's ASGI handler), the first line's last
        # cookie reads as a browser's header would: up to the ";" (what the second line holds
        # is still found).
        pytest.param("a=1,b=2", {"a": "1,b=2", "b": "2"}, id="two-lines-joined-with-comma"),
        pytest.param(f"CookieConsent={COOKIEBOT}; a=1", {"CookieConsent": COOKIEBOT, "a": "1"}, id="cookiebot"),
        # A name the browser's reading finds keeps its value; only the others come from the joined reading.
        pytest.param(
            f"OptanonConsent={OPTANON}; a=1", {"OptanonConsent": OPTANON, "a": "1"}, id="comma-name-in-a-value"
        ),
        pytest.param("a=x,b=1; b=2", {"a": "x,b=1", "b": "2"}, id="the-browsers-reading-wins"),
        pytest.param("legacy=caf\xe9; a=1", {"legacy": "caf\ufffd", "a": "1"}, id="a-byte-that-is-not-utf8"),
    ],
)
def test_parse_cookies(header: str, expected: dict[str, str]) -> None:
    cookies = parse_cookies(header)

    assert {name: cookies.get(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (A, True),
        (B, True),
        (OPT_OUT_ID, False),
        (A.upper(), False),
        (A[:-1], False),
        (A + "a", False),
        (" " + A[1:], False),
        (A[:-1] + "\n", False),
        ("g" * 24, False),
        (A.encode(), False),
        (None, False),
        (12345, False),
        ("\uff16" * 24, False),  # full-width digits are not hex
    ],
)
def test_is_valid_id(value: Any, valid: bool) -> None:
    assert is_valid_id(value) is valid


def test_defaults() -> None:
    settings = Settings(website_uuid=UUID)

    assert settings.api_url == "https://core.helloretail.com"
    assert settings.api_url == "https://core.helloretail.com"
    assert settings.timeout == 1.0
    assert settings.cookie_name == "helloRetailTrackingUserId"
    assert settings.sdk_cookie_name == "hello_retail_id"
    assert settings.share_with_sdk is True
    assert settings.max_age == 365 * 24 * 3600
    assert (settings.path, settings.domain, settings.secure, settings.samesite) == ("/", None, "auto", "Lax")
    assert settings.httponly is False


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        pytest.param({"website_uuid": "shop"}, ValueError, "website_uuid", id="uuid-malformed"),
        pytest.param({"website_uuid": 7}, TypeError, "website_uuid", id="uuid-type"),
        pytest.param({"api_url": "core.helloretail.com"}, ValueError, "api_url", id="url-no-scheme"),
        pytest.param({"api_url": "ftp://x"}, ValueError, "api_url", id="url-scheme"),
        pytest.param({"timeout": 0}, ValueError, "timeout", id="timeout-zero"),
        pytest.param({"timeout": "1"}, TypeError, "timeout", id="timeout-str"),
        pytest.param({"timeout": True}, TypeError, "timeout", id="timeout-bool"),
        pytest.param({"cookie_name": "a b"}, ValueError, "cookie_name", id="cookie-name-space"),
        pytest.param({"sdk_cookie_name": "a;b"}, ValueError, "sdk_cookie_name", id="sdk-name"),
        pytest.param({"sdk_cookie_name": "helloRetailTrackingUserId"}, ValueError, "sdk_cookie_name", id="same-names"),
        pytest.param({"share_with_sdk": "yes"}, TypeError, "share_with_sdk", id="share-type"),
        pytest.param({"max_age": -1}, ValueError, "max_age", id="max-age"),
        pytest.param({"path": "shop"}, ValueError, "path", id="path"),
        pytest.param({"domain": "a;b"}, ValueError, "domain", id="domain"),
        pytest.param({"secure": "yes"}, TypeError, "secure", id="secure"),
        pytest.param({"samesite": "lox"}, ValueError, "samesite", id="samesite-unknown"),
        pytest.param({"samesite": True}, ValueError, "samesite", id="samesite-type"),
        pytest.param({"samesite": "None", "secure": False}, ValueError, "samesite", id="samesite-none-insecure"),
        pytest.param({"mint_when": "always"}, TypeError, "mint_when", id="mint-when"),
        pytest.param({"consent": True}, TypeError, "consent", id="consent"),
        pytest.param({"secret_key": "short"}, ValueError, "secret_key", id="secret-short"),
        pytest.param({"secret_key": []}, TypeError, "secret_key", id="secret-empty"),
        pytest.param({"breaker_threshold": 0}, ValueError, "breaker_threshold", id="breaker"),
        pytest.param({"prefetch": -1}, ValueError, "prefetch", id="prefetch"),
        # Accepted once, then sent or written wrong:
        pytest.param({"website_uuid": "{" + UUID + "}"}, ValueError, "website_uuid", id="uuid-braces"),
        pytest.param({"website_uuid": "urn:uuid:" + UUID}, ValueError, "website_uuid", id="uuid-urn"),
        pytest.param({"website_uuid": UUID.replace("-", "")}, ValueError, "website_uuid", id="uuid-32-hex"),
        pytest.param({"website_uuid": UUID[:8] + " " + UUID[9:]}, ValueError, "website_uuid", id="uuid-inner-blank"),
        pytest.param(
            {"website_uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12}, ValueError, "placeholder", id="uuid-nil"
        ),
        pytest.param({"api_url": "https://core.helloretail.com?x=1"}, ValueError, "api_url", id="url-query"),
        pytest.param({"api_url": "https://core.helloretail.com/#top"}, ValueError, "api_url", id="url-fragment"),
        pytest.param({"api_url": "http://127.0.0.1:99999"}, ValueError, "api_url", id="url-port-range"),
        pytest.param({"api_url": "http://127.0.0.1:0"}, ValueError, "api_url", id="url-port-zero"),
        pytest.param({"api_url": "http://127.0.0.1:x"}, ValueError, "api_url", id="url-port-text"),
        pytest.param({"api_url": "https://core.hello retail.com"}, ValueError, "api_url", id="url-space"),
        pytest.param({"api_url": "http://[::1"}, ValueError, "api_url", id="url-ipv6-unclosed"),
        pytest.param(
            {"api_url": "https://user:secret@core.helloretail.com"}, ValueError, "api_url", id="url-credentials"
        ),
        pytest.param({"api_url": "https://"}, ValueError, "api_url", id="url-no-host"),
        pytest.param({"domain": "shop.example:8000"}, ValueError, "domain", id="domain-port"),
        pytest.param({"domain": "a.example,b.example"}, ValueError, "domain", id="domain-comma"),
        pytest.param({"domain": "shop.example\x00"}, ValueError, "domain", id="domain-nul"),
        pytest.param({"domain": ""}, ValueError, "domain", id="domain-empty"),
        pytest.param({"domain": "bücher.example"}, ValueError, "domain", id="domain-not-punycode"),
        pytest.param({"path": "/shop\x00"}, ValueError, "path", id="path-nul"),
        pytest.param({"path": "/a b"}, ValueError, "path", id="path-blank"),
        pytest.param({"max_age": 10**12}, ValueError, "max_age", id="max-age-overflows"),
        pytest.param({"max_age": 401 * 24 * 3600}, ValueError, "max_age", id="max-age-over-400-days"),
        # Accepted once, then dropped by browsers, so that every page minted again:
        pytest.param({"domain": "a" + LONGEST_DOMAIN}, ValueError, "domain: .* 254 characters", id="domain-over-253"),
        pytest.param({"domain": "com"}, ValueError, "domain: 'com' is a public suffix", id="domain-tld"),
        pytest.param({"domain": ".com"}, ValueError, "domain: '.com' is a public suffix", id="domain-dot-tld"),
        pytest.param({"domain": "co.uk"}, ValueError, "domain: 'co.uk' is a public suffix", id="domain-co-uk"),
        pytest.param({"domain": ".CO.UK"}, ValueError, "domain: '.CO.UK' is a public suffix", id="domain-co-uk-upper"),
        pytest.param({"domain": "shop.kobe.jp"}, ValueError, "public suffix", id="domain-wildcard-suffix-jp"),
        pytest.param({"domain": "shop.ck"}, ValueError, "public suffix", id="domain-wildcard-suffix"),
        pytest.param({"domain": "xn--55qx5d.cn"}, ValueError, "public suffix", id="domain-idn-suffix"),
        pytest.param(
            {"domain": "localhost"},
            ValueError,
            "domain: 'localhost' is a public suffix \\(a single label",
            id="domain-one-label",
        ),
        pytest.param(
            {"cookie_name": "__Secure-hr"},
            ValueError,
            "cookie_name: '__Secure-hr'.*secure=True",
            id="secure-prefix-auto",
        ),
        pytest.param(
            {"sdk_cookie_name": "__secure-hr", "secure": False},
            ValueError,
            "sdk_cookie_name.*secure=True",
            id="secure-prefix-lower",
        ),
        pytest.param(
            {"cookie_name": "__Host-hr"}, ValueError, "cookie_name: '__Host-hr'.*secure=True", id="host-prefix-auto"
        ),
        pytest.param(
            {"cookie_name": "__HOST-hr", "secure": True, "path": "/shop"},
            ValueError,
            "cookie_name.*path='/'",
            id="host-prefix-path",
        ),
        pytest.param(
            {"sdk_cookie_name": "__Host-hr", "secure": True, "domain": "shop.example"},
            ValueError,
            "sdk_cookie_name.*domain=None",
            id="host-prefix-domain",
        ),
        pytest.param({"api_url": "https://core.helloretail.com\x00"}, ValueError, "api_url", id="url-host-nul"),
        pytest.param({"api_url": "https://core\x85.helloretail.com"}, ValueError, "api_url", id="url-host-c1"),
        pytest.param({"api_url": "https://core.helloretail.com\x9f"}, ValueError, "api_url", id="url-host-c1-end"),
        pytest.param(
            {"api_url": "https://core.helloretail.com\u2028"}, ValueError, "api_url", id="url-host-line-separator"
        ),
        pytest.param(
            {"api_url": "https://core.helloretail.com\u200b"}, ValueError, "api_url", id="url-host-zero-width"
        ),
        pytest.param({"api_url": "https://core.helloretail.com/hr\x85"}, ValueError, "api_url", id="url-path-c1"),
        pytest.param({"api_url": "https://core%2ehelloretail.com"}, ValueError, "api_url", id="url-host-percent"),
        pytest.param({"api_url": "http://[fe80::1%25eth0]:8080"}, ValueError, "api_url", id="url-ipv6-zone"),
        pytest.param({"api_url": "http://[::g]:8080"}, ValueError, "api_url", id="url-ipv6-invalid"),
        pytest.param({"api_url": "https://bücher.example"}, ValueError, "api_url", id="url-host-not-punycode"),
        pytest.param({"api_url": "https://core..helloretail.com"}, ValueError, "api_url", id="url-host-empty-label"),
        pytest.param({"api_url": "https://core.hello*retail.com"}, ValueError, "api_url", id="url-host-star"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], error: type[Exception], names: str) -> None:
    options.setdefault("website_uuid", UUID)
    with pytest.raises(error, match=names):
        Settings(**options)


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="timeuot"):
        Settings(website_uuid=UUID, timeuot=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"WEBSITE_UUID": UUID},
            "WEBSITE_UUID: not an option of hr-middleware; did you mean 'website_uuid'?",
            id="upper-case-name",
        ),
        pytest.param(
            {"website_uuid": UUID, "timeuot": 1},
            "timeuot: not an option of hr-middleware; did you mean 'timeout'?",
            id="misspelt",
        ),
        pytest.param({"timeout": 1}, "website_uuid: required, the shop's Hello Retail website UUID", id="no-uuid"),
    ],
)
def test_settings_name_a_wrong_keyword_with_the_option_meant(options: dict[str, Any], message: str) -> None:
    """``Settings(WEBSITE_UUID=...)`` (the Flask/Django spelling) was a bare dataclass TypeError."""
    with pytest.raises(TypeError) as caught:
        Settings(**options)

    assert str(caught.value) == message


def test_settings_made_again_by_replace_keep_their_checks() -> None:
    with pytest.raises(TypeError, match="did you mean 'timeout'"):
        Settings(website_uuid=UUID).replace(timeuot=1)


def test_from_config_reads_prefixed_keys_and_rejects_unknown_ones() -> None:
    config = {"HELLO_RETAIL_WEBSITE_UUID": UUID, "HELLO_RETAIL_TIMEOUT": 0.5, "SECRET_KEY": "not ours"}

    settings = Settings.from_config(config, prefix="HELLO_RETAIL_", api_url="http://127.0.0.1:9")

    assert (settings.timeout, settings.api_url) == (0.5, "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="HELLO_RETAIL_TIMEUOT: unknown"):
        Settings.from_config({**config, "HELLO_RETAIL_TIMEUOT": 1}, prefix="HELLO_RETAIL_")
    with pytest.raises(ValueError, match="HELLO_RETAIL_WEBSITE_UUID: required"):
        Settings.from_config({}, prefix="HELLO_RETAIL_")


def test_api_url_trailing_slash_is_dropped() -> None:
    assert Settings(website_uuid=UUID, api_url="http://127.0.0.1:8080/").api_url == "http://127.0.0.1:8080"


def test_settings_are_frozen() -> None:
    settings = Settings(website_uuid=UUID)
    with pytest.raises(AttributeError):
        settings.timeout = 3  # type: ignore[misc]
    assert settings.replace(timeout=3).timeout == 3


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param(UUID, UUID, id="canonical"),
        pytest.param(UUID.upper(), UUID, id="upper-case"),
        # Pasted from the dashboard or an environment file with its blanks: they are not part of it.
        pytest.param(" " + UUID + "\n", UUID, id="surrounding-blanks"),
    ],
)
def test_website_uuid_is_kept_in_canonical_form(given: str, kept: str) -> None:
    assert Settings(website_uuid=given).website_uuid == kept


@pytest.mark.parametrize(
    ("options", "attribute", "kept"),
    [
        pytest.param({"domain": ".shop.example"}, "domain", ".shop.example", id="domain-leading-dot"),
        pytest.param({"domain": "xn--bcher-kva.example"}, "domain", "xn--bcher-kva.example", id="domain-punycode"),
        pytest.param({"domain": "shop.co.uk"}, "domain", "shop.co.uk", id="domain-below-a-suffix"),
        pytest.param({"domain": "city.kobe.jp"}, "domain", "city.kobe.jp", id="domain-wildcard-exception"),
        pytest.param({"domain": "www.ck"}, "domain", "www.ck", id="domain-wildcard-exception-ck"),
        pytest.param({"domain": LONGEST_DOMAIN}, "domain", LONGEST_DOMAIN, id="domain-253"),
        pytest.param({"cookie_name": "__Host-hr", "secure": True}, "cookie_name", "__Host-hr", id="host-prefix"),
        pytest.param(
            {"cookie_name": "__Secure-hr", "secure": True, "path": "/shop", "domain": ".shop.example"},
            "cookie_name",
            "__Secure-hr",
            id="secure-prefix",
        ),
        pytest.param(
            {"api_url": "http://hello_retail_fake:8080"},
            "api_url",
            "http://hello_retail_fake:8080",
            id="url-underscore-host",
        ),
        pytest.param({"api_url": "http://127.0.0.1:8080"}, "api_url", "http://127.0.0.1:8080", id="url-ipv4"),
        pytest.param(
            {"api_url": "https://xn--bcher-kva.example"}, "api_url", "https://xn--bcher-kva.example", id="url-punycode"
        ),
        pytest.param({"api_url": "http://[::1]:8080/"}, "api_url", "http://[::1]:8080", id="url-ipv6"),
        pytest.param({"api_url": "https://proxy.example/hr/"}, "api_url", "https://proxy.example/hr", id="url-path"),
        pytest.param({"max_age": 400 * 24 * 3600}, "max_age", 400 * 24 * 3600, id="max-age-400-days"),
        pytest.param({"path": "/shop/"}, "path", "/shop/", id="path"),
        # As browsers read the attribute (RFC 6265bis: case-insensitive), written as the RFC spells it.
        pytest.param({"samesite": "lax"}, "samesite", "Lax", id="samesite-lower"),
        pytest.param({"samesite": "STRICT"}, "samesite", "Strict", id="samesite-upper"),
        pytest.param({"samesite": "none", "secure": True}, "samesite", "None", id="samesite-none-lower"),
        pytest.param({"samesite": None}, "samesite", None, id="samesite-omitted"),
    ],
)
def test_good_options_are_kept(options: dict[str, Any], attribute: str, kept: Any) -> None:
    assert getattr(Settings(website_uuid=UUID, **options), attribute) == kept


# -- the Public Suffix List's rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "suffix"),
    [
        pytest.param("com", True, id="tld"),
        pytest.param("co.uk", True, id="second-level"),
        pytest.param(".co.uk", True, id="leading-dot"),
        pytest.param("shop.co.uk", False, id="below-a-suffix"),
        pytest.param("any.sch.uk", True, id="wildcard"),
        pytest.param("sch.uk", False, id="above-a-wildcard"),
        pytest.param("www.ck", False, id="exception"),
        pytest.param("xn--55qx5d.cn", True, id="international-in-punycode"),
        pytest.param("github.io", False, id="private-section-left-out"),
        pytest.param("shop.example", False, id="unknown-tld-two-labels"),
        pytest.param("localhost", True, id="single-label"),
    ],
)
def test_is_public_suffix(domain: str, suffix: bool) -> None:
    assert is_public_suffix(domain) is suffix


def test_the_public_suffix_rules_are_shipped_with_their_licence_and_origin(tmp_path: Path) -> None:
    # The wheel built from the sdist, as `pip install` of a release builds it: both must carry the file.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    shipped = zipfile.ZipFile(wheel).read("hr_middleware/_core/public_suffixes_icann.txt").decode("ascii")

    assert shipped == (ROOT / "hr_middleware/_core/public_suffixes_icann.txt").read_text("ascii")
    header = shipped.split("\nac\n", 1)[0]
    assert "Mozilla Public" in header
    assert "https://mozilla.org/MPL/2.0/" in header
    assert re.search(r"^// Taken from the publicsuffixlist [\d.]+ package .* on \d{4}-\d\d-\d\d\.$", header, re.M)
    assert re.search(r"^// VERSION: \S+", header, re.M)
    rules = shipped.splitlines()
    assert {"co.uk", "*.sch.uk", "!www.ck", "xn--55qx5d.cn"} <= set(rules)
    assert len([r for r in rules if not r.startswith("//")]) > 6000
