"""The examples of docs/client.md and of the README's client section, run against the fake Hello Retail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hr_middleware import OPT_OUT_ID
from hr_middleware._serving import enter as set_visit
from hr_middleware._serving import leave as reset_visit
from hr_middleware.client import HelloRetailClient
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE
from .ids import A
from .test_client import begin_visit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = re.compile(r"<!-- example -->\n```python\n(.*?)```", re.S)


def examples(name: str) -> list[Any]:
    text = (ROOT / name).read_text("utf-8")
    found = EXAMPLE.findall(text)
    return [pytest.param(code, id=f"{name}-{i}") for i, code in enumerate(found, 1)]


DOCS = examples("docs/client.md")
README = examples("README.md")


def test_the_examples_are_found() -> None:
    assert len(DOCS) == 5  # recommendations, search, a page, the four tracking calls, customer bias
    assert len(README) == 1


@pytest.fixture
def client(fake_hello_retail: FakeHelloRetail) -> Iterator[HelloRetailClient]:
    """The documented client, inside a request of a returning visitor."""
    settings = fake_hello_retail.settings(api_key="shop-api-key")
    token = set_visit(begin_visit(settings, PAGE, f"helloRetailTrackingUserId={A}"))
    try:
        with HelloRetailClient.from_settings(settings) as made:
            yield made
    finally:
        reset_visit(token)


@pytest.mark.parametrize("code", [*DOCS, *README])
def test_the_example_runs_against_the_fake(
    client: HelloRetailClient, fake_hello_retail: FakeHelloRetail, code: str
) -> None:
    namespace: dict[str, Any] = {"client": client}
    exec(compile(code, "<example>", "exec"), namespace)

    sent = fake_hello_retail.api_requests()
    assert sent
    assert all(r.json.get("trackingUserId") == A for r in sent)  # the visitor's id, filled in
    # The key goes where customerId (or email, on recommendations) names the visitor; on a
    # conversion, email is data for abandoned-cart mails, sent without it.
    keyed = [r for r in sent if "customerId" in r.json or (r.path == "/serve/recoms" and "email" in r.json)]
    assert all(r.params == ({"apiKey": "shop-api-key"} if r in keyed else {}) for r in sent)


def test_the_tracking_example_sends_what_hello_retail_documents(
    client: HelloRetailClient, fake_hello_retail: FakeHelloRetail
) -> None:
    namespace: dict[str, Any] = {"client": client}
    exec(compile(DOCS[3].values[0], "<example>", "exec"), namespace)

    paths = [r.path.rsplit("/", 1)[1] for r in fake_hello_retail.api_requests()]
    assert paths == ["pageview", "recoms", "click", "cart", "conversion"]
    pageview = fake_hello_retail.api_requests("/serve/collect/pageview")[0].json
    assert pageview["location"] != pageview["url"]
    assert namespace["cart_tracked"] is True


def test_the_search_example_filters_by_a_facet_and_pages(
    client: HelloRetailClient, fake_hello_retail: FakeHelloRetail
) -> None:
    namespace: dict[str, Any] = {"client": client}
    exec(compile(DOCS[1].values[0], "<example>", "exec"), namespace)

    filters = [r.json["products"].get("filters") for r in fake_hello_retail.api_requests("/serve/search")]
    starts = [r.json["products"]["start"] for r in fake_hello_retail.api_requests("/serve/search")]
    assert filters == [None, ["brand:Acme"], ["brand:Acme"]]
    assert starts == [0, 0, 24]
    assert namespace["caption"] == "100 results, page 1 of 5"


def test_an_opted_out_cart_is_not_tracked(fake_hello_retail: FakeHelloRetail) -> None:
    from hr_middleware.client import tracked

    with HelloRetailClient.from_settings(fake_hello_retail.settings()) as client:
        assert not tracked(client.track_cart(productNumbers=["1"], tracking_user_id=OPT_OUT_ID))


def test_the_page_example_tracks_the_first_load_and_not_the_next_page(
    client: HelloRetailClient, fake_hello_retail: FakeHelloRetail
) -> None:
    namespace: dict[str, Any] = {"client": client}
    exec(compile(DOCS[2].values[0], "<example>", "exec"), namespace)

    sent = fake_hello_retail.api_requests()
    assert [(r.json["firstLoad"], r.json["products"]["start"]) for r in sent] == [(True, 0), (False, 48)]
