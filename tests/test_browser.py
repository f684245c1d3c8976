"""End to end in a real headless Chromium: the Flask example shop on a real server.

CI installs Debian's chromium (.ci/run); on a machine without it this test is
skipped locally and fails under CI=true.

The first-visit test also takes the screenshot that heads the README,
``docs/demo.png``. Its id, port and products change on every run, so it is
written only when it is missing or when ``UPDATE_DEMO_SCREENSHOT=1`` is set
(``make screenshot``): a test run leaves the tree clean.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hr_middleware import OPT_OUT_ID, NoIdReason
from hr_middleware.testing import FakeHelloRetail

from .drivers import CHROME_UA
from .ids import cookie_id
from .servers import ROOT, demo_argv, free_port, running

#: The fake over a real socket: the demo shop runs in another process.
pytestmark = pytest.mark.loopback

SCREENSHOT = ROOT / "docs" / "demo.png"
#: The README's screenshot: a laptop-sized window.
VIEWPORT = {"width": 1280, "height": 900}
ALL_IMAGES_SHOWN = (
    "[...document.images].length > 0 && [...document.images].every(i => i.complete && i.naturalWidth > 0)"
)

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
    assert cookie_id(cookies["helloRetailTrackingUserId"]["value"]) == first
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
    assert page.inner_text("#no-id-reason") == f"No id for this request: {NoIdReason.BOT.explanation}."
    assert fake_hello_retail.mint_attempts == 0


def id_cookies(context: Any) -> dict[str, str]:
    return {
        c["name"]: cookie_id(c["value"])  # ours says in which period it was set (docs/renewal.md)
        for c in context.cookies()
        if c["name"] in ("helloRetailTrackingUserId", "hello_retail_id")
    }


def test_decline_accept_and_become_a_new_visitor_with_the_buttons(
    shop: str, chromium: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    context = chromium.new_context(user_agent=CHROME_UA)
    page = context.new_page()
    page.goto(shop + "/")
    page.wait_for_function(ALL_IMAGES_SHOWN)  # the recommendations' pictures, from the fake
    first = page.inner_text("#tracking-user-id")

    with page.expect_navigation():
        page.click("#consent-decline")
    declined = page.inner_text("#tracking-user-id")
    deletions = page.locator("#response-headers .deletes").count()
    cookies_after_decline = id_cookies(context)
    page.reload()  # a plain visit: the page put "/" back in the address bar after the POST
    still_declined = page.inner_text("#tracking-user-id")
    reloaded_headers = page.inner_text("#response-headers")
    with page.expect_navigation():
        page.click("#consent-accept")
    accepted = page.inner_text("#tracking-user-id")
    cookies_after_accept = id_cookies(context)
    with page.expect_navigation():
        page.click("#new-visitor")
    renewed = page.inner_text("#tracking-user-id")

    assert declined == still_declined == OPT_OUT_ID
    assert deletions == 2  # both id cookies, marked "deletes the cookie"
    assert cookies_after_decline == {}
    assert "demo_consent" not in reloaded_headers  # a GET, not the form sent again
    assert accepted not in (first, OPT_OUT_ID)
    assert cookies_after_accept == {"helloRetailTrackingUserId": accepted, "hello_retail_id": accepted}
    assert "minted from Hello Retail" in page.inner_text("#origin")
    assert page.inner_text("#consent-state") == "Tracking consent: not answered yet (this demo counts that as consent)"
    assert fake_hello_retail.minted == [first, accepted, renewed]
    assert id_cookies(context) == {"helloRetailTrackingUserId": renewed, "hello_retail_id": renewed}
    context.close()


@pytest.fixture
def demo() -> Iterator[str]:
    """The demo exactly as ``make demo`` runs it: with its embedded fake Hello Retail."""
    with running(demo_argv(), port=free_port()) as url:
        yield url


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_a_first_visit_as_the_readme_shows_it(demo: str, chromium: Any, tmp_path: Path) -> None:
    context = chromium.new_context(user_agent=CHROME_UA, viewport=VIEWPORT)
    page = context.new_page()

    page.goto(demo + "/")
    page.wait_for_function(ALL_IMAGES_SHOWN)
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)

    assert "minted from Hello Retail on this request" in page.inner_text("#origin")
    assert page.locator("#response-headers th", has_text="Set-Cookie").count() == 2
    assert page.inner_text("#hello-retail-calls") == "2"  # the mint and the recommendations
    assert page.locator("#recommendations li.product img").count() == 4
    width, height = png_size(shot.read_bytes())
    assert width == VIEWPORT["width"]
    assert height >= VIEWPORT["height"] // 2
    if not SCREENSHOT.exists() or os.environ.get("UPDATE_DEMO_SCREENSHOT") == "1":
        SCREENSHOT.write_bytes(shot.read_bytes())
    assert png_size(SCREENSHOT.read_bytes())[0] == VIEWPORT["width"]
    context.close()
