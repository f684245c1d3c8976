"""The pure decision, exhaustively: server cookie x SDK cookie x mint_when x mint outcome.

No sockets: the mint is the callable the adapter would pass, here returning a
fixed id or None (a failed mint).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from hr_middleware import OPT_OUT_ID, Settings
from hr_middleware.facts import RequestFacts
from hr_middleware.policy import Origin, TrackingPolicy, private_cache_control, vary_on_cookie

UUID = "00000000-0000-4000-8000-000000000001"
A = "62a0317d17698aa57d369db9"
B = "0123456789abcdef01234567"
NEW = "fedcba9876543210fedcba98"
SERVER = "helloRetailTrackingUserId"
SDK = "hello_retail_id"


class Facts(RequestFacts):
    """Request facts from plain values, as an adapter would read them."""

    __slots__ = ("_cookie", "_headers", "_method", "_scheme")

    def __init__(self, cookie: str = "", *, method: str = "GET", scheme: str = "http", **headers: str) -> None:
        super().__init__()
        self._cookie = cookie
        self._method = method
        self._scheme = scheme
        self._headers = {k.replace("_", "-").lower(): v for k, v in headers.items()}

    cookie_header = property(lambda self: self._cookie)
    method = property(lambda self: self._method)
    path = property(lambda self: "/")
    scheme = property(lambda self: self._scheme)
    native = property(lambda self: None)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers


SERVER_STATES = {"absent": None, "invalid": "nothex", "A": A, "B": B}
SDK_STATES = {"absent": None, "invalid": "X" * 24, "A": A, "B": B}


def expected(server: str, sdk: str, mint_when: bool, mint_ok: bool, share: bool) -> dict[str, Any]:
    """The behaviour table of DESIGN.md, written out independently of the code."""
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
    settings = Settings(website_uuid=UUID, share_with_sdk=share, mint_when=lambda request: mint_when)
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

    visit = policy.resolve(Facts("; ".join(parts)), mint)

    want = expected(server, sdk, mint_when, mint_ok, share)
    assert visit.tracking_user_id == want["id"]
    assert visit.origin == want["origin"]
    assert len(mints) == want["mints"]
    assert {name: c.value for name, c in visit.cookies.items()} == want["writes"]
    assert visit.must_mint is False


def test_mint_outcome_that_is_not_a_valid_id_is_ignored() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = policy.resolve(Facts(), lambda: "NOT-AN-ID")

    assert visit.tracking_user_id is None
    assert visit.cookies == {}
    assert visit.minted is True


def test_opt_out_sentinel_in_a_cookie_is_not_an_id() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: False))
    visit = policy.begin(Facts(f"{SERVER}={OPT_OUT_ID}; {SDK}={OPT_OUT_ID}"))

    assert visit.tracking_user_id is None


def test_secure_is_resolved_from_the_request_only_when_writing() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: True))
    visit = policy.resolve(Facts(scheme="https"), lambda: NEW)

    assert visit.secure is True
    assert all(c.secure for c in visit.cookies.values())
    returning = policy.begin(Facts(f"{SERVER}={A}; {SDK}={A}", scheme="https"))
    assert returning.secure is None


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
    visit = policy.resolve(Facts(), lambda: NEW)
    app_headers = [
        ("Content-Type", "text/html"),
        ("Cache-Control", "public"),
        ("Cache-Control", "max-age=60"),
        ("Set-Cookie", "session=1; Path=/"),
        ("Vary", "Accept-Encoding"),
    ]

    out = policy.patch_headers(visit, list(app_headers))

    assert out[:2] == [("Content-Type", "text/html"), ("Set-Cookie", "session=1; Path=/")]
    assert ("Cache-Control", "private, max-age=60") in out
    assert ("Vary", "Accept-Encoding, Cookie") in out
    assert [k for k, _ in out].count("Cache-Control") == 1
    assert [v.split("=")[0] for k, v in out if k == "Set-Cookie"] == ["session", SERVER, SDK]


def test_patch_headers_is_a_no_op_for_an_untouched_returning_visit() -> None:
    policy = TrackingPolicy(Settings(website_uuid=UUID))
    visit = policy.begin(Facts(f"{SERVER}={A}; {SDK}={A}"))
    headers = [("Content-Type", "text/plain")]

    assert policy.patch_headers(visit, headers) is headers
