"""One contract, two sides: the documents in ``tests/contract/`` against the fake and against the client.

Each document holds, per endpoint and failure kind, one request and Hello
Retail's answer to it (status and body), written from the published facts.
Every case says where it comes from: ``source`` names the public material it
was taken from; ``chosen: true`` with ``why`` marks what no public source
settles and what was chosen (a case may have both: a sourced request and a
chosen detail). ``_note`` says what the case shows. The fake must
answer each request with the same status, the same keys and types and the same
string error codes; the client must build exactly the contract's request from
its own arguments and read the contract's answer (served by a small loopback
server, and fed to :func:`parse_answer` directly) the way its documentation says.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import pytest
import requests

from hr_middleware import OPT_OUT_ID, is_valid_id
from hr_middleware._hello_retail import endpoints
from hr_middleware._hello_retail.errors import APIError
from hr_middleware._hello_retail.mint import parse_mint_answer
from hr_middleware._hello_retail.transport import Answer
from hr_middleware.client import HelloRetailClient, parse_answer, tracked
from hr_middleware.testing import FakeHelloRetail, Mode

#: The fake over a real socket: answers over HTTP, as users' tests see it.
pytestmark = pytest.mark.loopback

CONTRACT = Path(__file__).parent / "contract"
API_KEY = "shop-api-key-0001"
#: The website of Hello Retail's example collection, which the contract's requests name: the fake knows it.
WEBSITE = "d364dcdc-e618-45bd-b395-8653579884fe"
#: Top-level answer fields whose values (not only types) must match.
EXACT = ("success", "code", "message", "query", "firstLoad")


def load(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((CONTRACT / f"{name}.json").read_text("utf-8"))["cases"]
    return cases


ENDPOINTS = ("recoms", "search", "pages", "collect", "customers")
CASES = [pytest.param(case, id=f"{name}:{case['name']}") for name in ENDPOINTS for case in load(name)]
MINT_CASES = [pytest.param(case, id=f"mint:{case['name']}") for case in load("mint")]


def test_every_document_is_complete() -> None:
    for param in [*CASES, *MINT_CASES]:
        case = param.values[0]
        assert isinstance(case, dict)
        assert set(case) <= {"name", "_note", "source", "chosen", "why", "fake", "request", "answer"}
        assert set(case["request"]) == {"path", "query", "body"}
        assert set(case["answer"]) == {"status", "body"}
        body = case["answer"]["body"]
        if body.get("success") is False:
            assert isinstance(body["message"], str)
            assert "code" not in body or isinstance(body["code"], str)  # codes are strings
    assert len(CASES) >= 30


def endpoint_paths() -> dict[str, str]:
    """Every endpoint path :mod:`hr_middleware._hello_retail.endpoints` names, by its name there."""
    return {name: value for name in endpoints.__all__ if isinstance(value := getattr(endpoints, name), str)}


@pytest.mark.parametrize("name", sorted(endpoint_paths()))
def test_every_endpoint_has_a_contract_case(name: str) -> None:
    """An endpoint added to endpoints.py without a contract case fails here: the fake and the
    client must both be held to what Hello Retail answers there."""
    path = endpoint_paths()[name]
    paths = [case["request"]["path"] for document in (*ENDPOINTS, "mint") for case in load(document)]
    if path.endswith("/"):  # a prefix (pages): the key follows
        assert any(p.startswith(path) and len(p) > len(path) for p in paths), f"{name}: no contract case under {path}"
    else:
        assert path in paths, f"{name}: no contract case for {path}"


def test_the_endpoint_list_is_read_whole() -> None:
    # The frozenset COLLECT groups paths already listed one by one; everything else is a path.
    assert set(endpoints.__all__) - set(endpoint_paths()) == {"COLLECT"}
    assert set(endpoint_paths().values()) >= endpoints.COLLECT


@pytest.mark.parametrize("case", [*CASES, *MINT_CASES])
def test_every_case_says_where_it_comes_from(case: dict[str, Any]) -> None:
    """Fact or choice: a ``source`` (the public material the case was taken from), or
    ``chosen: true`` with ``why`` (what no public source settles, and what was chosen)."""
    sourced = isinstance(case.get("source"), str) and bool(case["source"].strip())
    chosen = case.get("chosen") is True and isinstance(case.get("why"), str) and bool(case["why"].strip())
    assert sourced or chosen, f"{case['name']}: neither a source nor a choice with its reason"
    assert "chosen" in case or "why" not in case, f"{case['name']}: a reason for a choice not marked chosen"
    if "chosen" in case:
        assert chosen, f"{case['name']}: chosen must be true and say why"


def kind(value: Any) -> str:
    """The JSON type of *value* (int and float are both numbers; bool is not one)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def assert_same_shape(expected: Any, actual: Any, where: str = "answer") -> None:
    """*actual* has *expected*'s keys and types, recursively.

    In an array, every item has the shape of one of the contract's items, and
    every shape the contract shows there occurs (a LIST and a RANGE facet differ).
    """
    assert kind(actual) == kind(expected), f"{where}: {kind(actual)}, the contract says {kind(expected)}"
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{where}: keys {sorted(actual)}, the contract says {sorted(expected)}"
        for key, value in expected.items():
            assert_same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list) and expected:
        for i, item in enumerate(actual):
            assert any(same_shape(e, item) for e in expected), f"{where}[{i}]: {item!r} has no shape of the contract's"
        if actual:
            for e in expected:
                assert any(same_shape(e, item) for item in actual), f"{where}: nothing shaped like {e!r}"


def same_shape(expected: Any, actual: Any) -> bool:
    try:
        assert_same_shape(expected, actual)
    except AssertionError:
        return False
    return True


def configure(fake: FakeHelloRetail, case: dict[str, Any]) -> None:
    setup = case.get("fake", {})
    fake.website_uuids = {WEBSITE}
    if "mode" in setup:
        fake.mode = Mode(setup["mode"])
    if "known_recommendation_keys" in setup:
        fake.known_recommendation_keys = set(setup["known_recommendation_keys"])
    if "known_page_keys" in setup:
        fake.known_page_keys = set(setup["known_page_keys"])


def post(url: str, case: dict[str, Any]) -> requests.Response:
    request = case["request"]
    query = "?" + urlencode(request["query"]) if request["query"] else ""
    return requests.post(url + request["path"] + query, json=request["body"], timeout=5)


# -- the fake against the contract -----------------------------------------------------


@pytest.mark.parametrize("case", [*CASES, *MINT_CASES])
def test_the_fake_answers_as_the_contract_says(fake_hello_retail: FakeHelloRetail, case: dict[str, Any]) -> None:
    configure(fake_hello_retail, case)

    answer = post(fake_hello_retail.url, case)

    expected = case["answer"]
    assert answer.status_code == expected["status"]
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert_same_shape(expected["body"], document)
    for name in EXACT:
        if name in expected["body"]:
            assert document[name] == expected["body"][name], name


def test_the_fake_records_the_query_string(fake_hello_retail: FakeHelloRetail) -> None:
    (case,) = [c for c in load("recoms") if c["name"] == "ok-customer-id-with-api-key"]
    post(fake_hello_retail.url, case)

    (request,) = fake_hello_retail.api_requests("/serve/recoms")
    assert request.query == "apiKey=shop-api-key-0001"
    assert request.params == {"apiKey": API_KEY}


def test_the_fake_checks_the_api_key_when_told_one(fake_hello_retail: FakeHelloRetail) -> None:
    (case,) = [c for c in load("recoms") if c["name"] == "ok-customer-id-with-api-key"]
    fake_hello_retail.api_key = "another-key"

    answer = post(fake_hello_retail.url, case)

    assert (answer.status_code, answer.json()["code"]) == (500, "ACCESS DENIED")


# -- the client against the contract ---------------------------------------------------


def answer_of(case: dict[str, Any]) -> Answer:
    expected = case["answer"]
    return Answer(expected["status"], json.dumps(expected["body"]).encode())


@pytest.mark.parametrize("case", CASES)
def test_parse_answer_reads_the_contract(case: dict[str, Any]) -> None:
    expected = case["answer"]
    body = expected["body"]
    if expected["status"] == 200 and body["success"] is True:
        assert parse_answer(answer_of(case)) == body  # untouched
        return
    with pytest.raises(APIError) as caught:
        parse_answer(answer_of(case))
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        expected["status"],
        body.get("code"),
        body["message"],
    )
    assert body["message"] in str(caught.value)


@pytest.mark.parametrize("case", [c for c in CASES if c.id is not None and c.id.startswith("collect:")])
def test_tracked_tells_tracked_from_accepted(case: dict[str, Any]) -> None:
    body = case["answer"]["body"]
    assert tracked(body) is (body["success"] is True and body["message"] != "Not tracked for anonymous user")
    if body["success"] is True:
        assert tracked(parse_answer(answer_of(case))) is body["message"].endswith(" tracked")


@pytest.mark.parametrize("case", MINT_CASES)
def test_the_mint_reads_the_contract(case: dict[str, Any]) -> None:
    assert parse_mint_answer(answer_of(case)) == case["answer"]["body"]["id"]


class _Replay:
    """A loopback HTTP server that answers every POST with the current case's answer and records the request."""

    def __init__(self) -> None:
        replay = self
        self.case: dict[str, Any] = {}
        self.seen: list[tuple[str, dict[str, str], Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                path, _, query = self.path.partition("?")
                replay.seen.append((path, dict(parse_qsl(query)), json.loads(self.rfile.read(length))))
                answer = replay.case["answer"]
                data = json.dumps(answer["body"]).encode()
                self.send_response(answer["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def replay() -> Iterator[_Replay]:
    server = _Replay()
    yield server
    server.close()


def client_call(client: HelloRetailClient, case: dict[str, Any]) -> Any:
    """The client call that should send *case*'s request, derived from the request alone."""
    request = case["request"]
    body = dict(request["body"])
    path: str = request["path"]
    # The call's own api_log_tag= (the client is made without one): ?apiLogTag= on this call only.
    identity = {"tracking_user_id": body.pop("trackingUserId", None), "api_log_tag": request["query"].get("apiLogTag")}
    if path == "/serve/recoms":
        return client.recommendations(body.pop("requests"), **identity, **body)
    if path == "/serve/search":
        return client.search(body.pop("key", None), body.pop("query"), **identity, **body)  # type: ignore[arg-type]
    if path.startswith("/serve/pages/"):
        body.setdefault("format", "html")  # a contract request without format: ask for Hello Retail's default
        return client.page(unquote(path.rsplit("/", 1)[1]), body.pop("url", None), **identity, **body)  # type: ignore[arg-type]
    if path == "/serve/collect/customerId":
        return client.link_customer(body.pop("id"), **identity, **body)
    if path == "/serve/customer/bias":
        count = body.pop("numberOfValues", None)
        return client.customer_bias(body.pop("fields"), number_of_values=count, **identity, **body)
    if path.endswith("/pageview"):
        return client.track_pageview(
            body.pop("location"),
            url=body.pop("url", None),
            referrer=body.pop("referrer", None),
            product_number=body.pop("productNumber", None),
            **identity,
            **body,
        )
    if path.endswith("/click"):
        return client.track_click(body.pop("source"), **identity, **body)
    if path.endswith("/cart"):
        return client.track_cart(**identity, **body)
    assert path.endswith("/conversion")
    return client.track_conversion(**identity, **body)


def _sendable(case: dict[str, Any]) -> bool:
    """Whether the client can send *case*'s request: by design it refuses a malformed id and two
    identities on recommendations, needs a search key and a page url, always adds websiteUuid
    where the endpoint takes it, never omits trackingUserId unless customerId (or email on
    recommendations) names the visitor, always says firstLoad on pages, and always names the
    customer of a link. A click without an identity and an email-only cart or conversion with
    the API key are requests the client never sends (issue 22.2, 22.5): those cases test the
    fake only."""
    body = case["request"]["body"]
    path = case["request"]["path"]
    identity = [name for name in ("trackingUserId", "customerId") if name in body]
    if path.endswith("/click") and not identity:
        return False
    if path.endswith(("/cart", "/conversion")) and "apiKey" in case["request"]["query"] and not identity:
        return False
    malformed = "trackingUserId" in body and not is_id_or_opt_out(body["trackingUserId"])
    two_ids = path == "/serve/recoms" and "trackingUserId" in body and ("email" in body or "customerId" in body)
    identities = (
        ("trackingUserId", "customerId", "email") if path == "/serve/recoms" else ("trackingUserId", "customerId")
    )
    missing = (
        (path == "/serve/search" and "key" not in body)
        or (path.startswith("/serve/pages/") and ("url" not in body or "firstLoad" not in body))
        or (path.startswith(("/serve/recoms", "/serve/collect/", "/serve/customer/")) and "websiteUuid" not in body)
        or (path == "/serve/collect/customerId" and "id" not in body)
        or not any(body.get(name) for name in identities)
    )
    return not (malformed or two_ids or missing)


def is_id_or_opt_out(value: object) -> bool:
    return value == OPT_OUT_ID or is_valid_id(value)


@pytest.mark.parametrize("case", [c for c in CASES if _sendable(c.values[0])])
def test_the_client_sends_the_contract_request_and_reads_its_answer(replay: _Replay, case: dict[str, Any]) -> None:
    replay.case = case
    replay.seen.clear()
    body = case["request"]["body"]
    website_uuid = body.get("websiteUuid", WEBSITE)
    api_key = case["request"]["query"].get("apiKey")
    with HelloRetailClient(website_uuid=website_uuid, api_url=replay.url, api_key=api_key) as client:
        expected = case["answer"]
        if expected["status"] == 200 and expected["body"]["success"] is True:
            assert client_call(client, case) == expected["body"]
        else:
            with pytest.raises(APIError) as caught:
                client_call(client, case)
            assert (caught.value.code, caught.value.message) == (
                expected["body"].get("code"),
                expected["body"]["message"],
            )

    ((path, query, sent),) = replay.seen
    assert path == case["request"]["path"]
    assert query == case["request"]["query"]
    if case["request"]["path"].startswith("/serve/pages/") and "format" not in body:
        assert sent == {**body, "format": "html"}  # said explicitly: the same as Hello Retail's default
    else:
        assert sent == body


def test_most_contract_requests_are_sent_by_the_client() -> None:
    # Half, not more: the contract also documents Hello Retail's answers to requests the
    # client never sends by design (no id, no firstLoad, malformed ids, missing fields).
    assert len([c for c in CASES if _sendable(c.values[0])]) >= len(CASES) // 2
