"""Hostile Cookie headers: property-based. Never raise, never an invalid id, linear cost."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hr_middleware import Settings, is_valid_id
from hr_middleware._core.cookies import find_cookie, valid_id_or_none
from hr_middleware._core.decide import TrackingPolicy
from hr_middleware._core.returning import agreeing_id_reader
from hr_middleware._core.visit import Visit

from .ids import SDK, SERVER, UUID, A
from .test_policy import Facts

NAMES = [SERVER, SDK, "session", "x", ""]

# Everything a Cookie header can carry through WSGI (latin-1) and ASGI (bytes decoded as latin-1).
latin1 = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=200)
pieces = st.one_of(
    latin1,
    st.sampled_from(NAMES).map(lambda n: n + "="),
    st.sampled_from([";", "; ", "=", '"', ",", " ", "\t", "\r\n", "\x00", A, A.upper(), "0" * 24]),
)
headers = st.lists(pieces, max_size=60).map("".join)
policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: False))
signed_policy = TrackingPolicy(Settings(website_uuid=UUID, mint_when=lambda r: False, secret_key="k" * 32))


def accept(value: str) -> str | None:
    return value if is_valid_id(value) else None


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(headers)
def test_find_cookie_never_raises_and_only_returns_valid_ids(header: str) -> None:
    for name in NAMES[:2]:
        found = find_cookie(header, name + "=", accept)
        assert found is None or is_valid_id(found)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(headers)
def test_the_decision_never_raises_and_never_writes_request_bytes(header: str) -> None:
    for chosen in (policy, signed_policy):
        visit = Visit()
        chosen.decide(visit, Facts(header))
        assert visit.tracking_user_id is None or is_valid_id(visit.tracking_user_id)
        for cookie in visit.cookies.values():
            assert cookie.value is None or is_valid_id(cookie.value.split(".")[0])
            assert cookie.value is None or cookie.value.split(".")[0] == visit.tracking_user_id


@given(st.lists(st.tuples(st.sampled_from(NAMES), latin1), max_size=40))
def test_a_valid_id_among_any_cookies_is_found(cookies: list[tuple[str, str]]) -> None:
    parts = [f"{n}={v.replace(';', '')}" for n, v in cookies if n and not n.startswith("hello")]
    parts.insert(len(parts) // 2, f"helloRetailTrackingUserId={A}")
    header = "; ".join(parts)

    assert find_cookie(header, "helloRetailTrackingUserId=", accept) == A


PATHOLOGICAL = [
    "helloRetailTrackingUserId=",  # the key again and again, never a value
    " " * 50 + "helloRetailTrackingUserId=x",  # long whitespace before each candidate
    "a=helloRetailTrackingUserId=" + A,  # candidates inside values
    "helloRetailTrackingUserId=" + "b" * 40 + ";",  # many invalid values of our name
]


#: A 2 MB Cookie header: over a hundred times what servers accept (gunicorn 8 KB a line, nginx 8-16 KB).
HUGE = 2_000_000
#: The time budget for deciding on it. A linear scan takes a few tens of ms; a
#: quadratic one (a copy of the rest of the header per candidate) takes seconds.
BUDGET = 0.25


@pytest.mark.parametrize("unit", PATHOLOGICAL)
def test_a_huge_hostile_header_is_decided_within_the_budget(unit: str) -> None:
    header = unit * (HUGE // len(unit))

    started = time.perf_counter()
    visit = Visit()
    policy.decide(visit, Facts(header))
    elapsed = time.perf_counter() - started

    assert visit.tracking_user_id in (None, A)
    assert elapsed < 3 * BUDGET  # a generous margin for a loaded machine


READ_BYTES = agreeing_id_reader("helloRetailTrackingUserId", "hello_retail_id", bytes)
READ_TEXT = agreeing_id_reader("helloRetailTrackingUserId", "hello_retail_id", str)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(headers)
def test_the_returning_visitor_shortcut_never_disagrees_with_the_full_read(header: str) -> None:
    agreeing = READ_TEXT(header)
    assert READ_BYTES(header.encode("latin-1", "replace")) == agreeing  # as an ASGI server hands it
    if agreeing is not None:
        assert find_cookie(header, "helloRetailTrackingUserId=", valid_id_or_none) == agreeing
        assert find_cookie(header, "hello_retail_id=", valid_id_or_none) == agreeing


@pytest.mark.parametrize("odd", ["\ud800", "\u20ac", "\x00"])
def test_the_returning_visitor_shortcut_declines_characters_no_id_holds(odd: str) -> None:
    # Beyond latin-1 (a lone surrogate cannot even be encoded): the shortcut says "the long way", never raises.
    value = A[:-1] + odd
    assert READ_TEXT(f"helloRetailTrackingUserId={value}; hello_retail_id={value}") is None
    assert READ_TEXT(f"helloRetailTrackingUserId={A}; hello_retail_id={A}") == A


USUAL_COOKIES = ["a=1", "b=" + A, f"helloRetailTrackingUserId={A}", f"hello_retail_id={A}", f'hello_retail_id="{A}"']


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(USUAL_COOKIES), max_size=6))
def test_the_returning_visitor_shortcut_takes_the_usual_headers(cookies: list[str]) -> None:
    # Not only None: on the headers browsers send, the shortcut answers.
    header = "; ".join(cookies)
    agreeing = READ_BYTES(header.encode())
    assert READ_TEXT(header) == agreeing
    first: dict[str, str] = {}
    for cookie in cookies:
        first.setdefault(cookie.split("=")[0], cookie)
    names = (SERVER, SDK)
    usual = all(name in first and '"' not in first[name] for name in names)
    assert agreeing == (A if usual else None)
