"""The Starlette and Django demo shops: recommendations and the search box, read from Hello Retail's real shapes."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pytest
import requests
from starlette.testclient import TestClient

from examples.starlette_app import create_app
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE
from .servers import free_port, running


def check_page(html: str, fake: FakeHelloRetail) -> None:
    assert "Recommended for you" in html
    assert len(re.findall(r'<li class="product"', html)) == 8 + 4  # one page of results, one box
    assert "100 results for &ldquo;lamp&rdquo;" in html
    assert 'class="facet" href="/?q=lamp&amp;start=0&amp;filter=brand%3AAcme"' in html
    (search,) = fake.api_requests("/serve/search")
    assert search.json["query"] == "lamp"
    (recoms,) = fake.api_requests("/serve/recoms")
    assert recoms.json["requests"][0]["context"] == {}
    assert search.json["trackingUserId"] == recoms.json["trackingUserId"] == fake.minted[0]


def test_the_starlette_shop(fake_hello_retail: FakeHelloRetail) -> None:
    app = create_app(website_uuid=fake_hello_retail.website_uuid, api_url=fake_hello_retail.url)
    with TestClient(app) as browser:
        response = browser.get("/?q=lamp", headers=PAGE)

    assert response.status_code == 200
    check_page(response.text, fake_hello_retail)


@pytest.fixture
def django_shop(fake_hello_retail: FakeHelloRetail) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "examples/django_app/manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    env = {"HELLO_RETAIL_WEBSITE_UUID": fake_hello_retail.website_uuid, "HELLO_RETAIL_API_URL": fake_hello_retail.url}
    with running(argv, port=port, env=env, ready_path="/api/tracking-user") as url:
        yield url


def test_the_django_shop(django_shop: str, fake_hello_retail: FakeHelloRetail) -> None:
    response = requests.get(django_shop + "/?q=lamp", headers=PAGE, timeout=10)

    assert response.status_code == 200
    check_page(response.text, fake_hello_retail)
