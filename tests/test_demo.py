"""The demo shop, run the way ``make demo`` runs it: a real server on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from examples.response_headers import headers_html

from .drivers import PAGE
from .ids import cookie_id
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
    ours = cookie_id(browser.cookies["helloRetailTrackingUserId"])  # "<id>.<period>": docs/renewal.md
    assert tracking_id(first.text) == tracking_id(second.text) == ours
    assert browser.cookies["hello_retail_id"] == tracking_id(first.text)


def test_demo_new_visitor_gets_a_new_id(demo_url: str) -> None:
    one = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)
    two = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)

    assert one != two


def calls(html: str) -> int:
    match = re.search(r'<strong id="hello-retail-calls">(\d+)</strong>', html)
    assert match is not None
    return int(match.group(1))


def test_demo_shows_the_headers_it_sent_and_counts_the_embedded_fakes_calls(demo_url: str) -> None:
    browser = requests.Session()

    first = browser.get(demo_url, headers=PAGE, timeout=5)
    second = browser.get(demo_url, headers=PAGE, timeout=5)

    for response in (first, second):
        sent = list(response.raw.headers.items())  # each Set-Cookie apart, as the server sent them
        rows = response.text.split('<table id="response-headers">', 1)[1].split("</table>", 1)[0].strip()
        assert rows == headers_html(sent)
    assert first.text.count("<th>Set-Cookie</th><td><code>") == 2
    assert '<tr class="not-sent"><th>Set-Cookie</th>' in second.text
    assert calls(second.text) == calls(first.text) + 1  # the recommendations; the id came from the cookie
    assert "ids from the embedded fake Hello Retail at http://127.0.0.1:" in first.text


def test_demo_product_pictures_come_from_the_embedded_fake(demo_url: str) -> None:
    html = requests.get(demo_url + "?q=lamp", headers=PAGE, timeout=5).text

    images = re.findall(r'<img src="([^"]+)"', html)
    pictures = [requests.get(src, timeout=5) for src in images[:3]]

    assert len(images) == 12  # 8 search results, 4 recommendations
    assert all(re.fullmatch(r"http://127\.0\.0\.1:\d+/images/\d+(-[a-z0-9]+)+\.svg", src) for src in images)
    assert [(p.status_code, p.headers["Content-Type"]) for p in pictures] == [(200, "image/svg+xml")] * 3
