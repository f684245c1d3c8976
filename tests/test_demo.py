"""The demo shop, run the way ``make demo`` runs it: a real server on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from .drivers import PAGE
from .servers import demo_argv, free_port, running


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with running(demo_argv(), port=free_port()) as url:
        yield url + "/"


def tracking_id(html: str) -> str:
    match = re.search(r'<code id="tracking-user-id">([^<]*)</code>', html)
    assert match is not None
    return match.group(1)


def test_demo_mints_once_then_reads_the_cookie(demo_url: str) -> None:
    browser = requests.Session()

    first = browser.get(demo_url, headers=PAGE, timeout=5)
    second = browser.get(demo_url, headers=PAGE, timeout=5)

    assert first.status_code == second.status_code == 200
    assert "minted from Hello Retail on this request" in first.text
    assert "read from the cookie" in second.text
    assert tracking_id(first.text) == tracking_id(second.text) == browser.cookies["helloRetailTrackingUserId"]
    assert browser.cookies["hello_retail_id"] == tracking_id(first.text)


def test_demo_new_visitor_gets_a_new_id(demo_url: str) -> None:
    one = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)
    two = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)

    assert one != two
