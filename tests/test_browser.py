"""End to end in a real headless Chromium: the Flask example shop on a real server.

CI installs Debian's chromium (.ci/run); on a machine without it this test is
skipped locally and fails under CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from hr_middleware.testing import FakeHelloRetail

from .drivers import CHROME_UA
from .servers import demo_argv, free_port, running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("chromium is not installed; .ci/run installs it with apt-get")
    pytest.skip("chromium not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def shop(fake_hello_retail: FakeHelloRetail) -> Iterator[str]:
    env = {"HELLO_RETAIL_WEBSITE_UUID": fake_hello_retail.website_uuid, "HELLO_RETAIL_API_URL": fake_hello_retail.url}
    with running(demo_argv(), port=free_port(), env=env) as url:
        yield url


@pytest.fixture
def chromium() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_one_id_across_reloads_and_visible_to_the_pages_javascript(
    shop: str, chromium: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    context = chromium.new_context(user_agent=CHROME_UA)
    page = context.new_page()

    page.goto(shop + "/")
    first = page.inner_text("#tracking-user-id")
    assert "minted" in page.inner_text("#origin")
    # What Hello Retail's JavaScript would see: the server-minted id, readable by the page.
    assert page.evaluate("document.cookie").count(f"hello_retail_id={first}") == 1
    assert page.inner_text("#document-cookie") == first

    page.reload()
    assert page.inner_text("#tracking-user-id") == first
    assert "read from the cookie" in page.inner_text("#origin")
    page.goto(shop + "/?page=2")
    assert page.inner_text("#tracking-user-id") == first

    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["helloRetailTrackingUserId"]["value"] == first
    assert cookies["hello_retail_id"]["value"] == first
    assert cookies["hello_retail_id"]["httpOnly"] is False
    assert cookies["hello_retail_id"]["sameSite"] == "Lax"
    assert fake_hello_retail.minted == [first]
    context.close()


def test_headless_chrome_user_agent_is_treated_as_a_bot(
    shop: str, chromium: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    page = chromium.new_page()  # its User-Agent says HeadlessChrome

    page.goto(shop + "/")

    assert page.inner_text("#tracking-user-id") == "none"
    assert fake_hello_retail.mint_attempts == 0
