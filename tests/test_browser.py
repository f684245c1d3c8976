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
from urllib.parse import unquote

import pytest

from examples.shop_page import DEMO_CUSTOMER, DEMO_WEBSITE_UUIDS, LINK_TEXT
from hr_middleware import OPT_OUT_ID, NoIdReason
from hr_middleware.customers import LinkOutcome
from hr_middleware.testing import FakeHelloRetail, ScriptEvent, ScriptLog

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


#: The demo's second region (Sweden, on localhost): a website of its own, which the fake is told it knows.
SECOND_WEBSITE = DEMO_WEBSITE_UUIDS[1]


@pytest.fixture
def shop(fake_hello_retail: FakeHelloRetail) -> Iterator[str]:
    env = {"HELLO_RETAIL_WEBSITE_UUID": fake_hello_retail.website_uuid, "HELLO_RETAIL_API_URL": fake_hello_retail.url}
    env["HELLO_RETAIL_SCRIPT_URL"] = fake_hello_retail.script_url  # the fake's stand-in for Hello Retail's script
    env["HELLO_RETAIL_SECOND_WEBSITE_UUID"] = SECOND_WEBSITE
    fake_hello_retail.website_uuids.add(SECOND_WEBSITE)  # reset() forgets it after the test
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
    deletions = page.eval_on_selector_all(
        "#response-headers .deletes", "marks => marks.map(m => m.previousElementSibling.textContent.split('=')[0])"
    )
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
    # Both id cookies and the customer link's, each marked "deletes the cookie".
    assert deletions == ["helloRetailTrackingUserId", "hello_retail_id", "helloRetailTrackingUserId_link"]
    assert cookies_after_decline == {}
    assert "demo_consent" not in reloaded_headers  # a GET, not the form sent again
    assert accepted not in (first, OPT_OUT_ID)
    assert cookies_after_accept == {"helloRetailTrackingUserId": accepted, "hello_retail_id": accepted}
    assert "minted from Hello Retail" in page.inner_text("#origin")
    assert page.inner_text("#consent-state") == (
        "Tracking consent: not answered yet: counted as consent, because this demo sets consent_unknown=True "
        "(by default, consent_unknown=False, it counts as declined)"
    )
    assert fake_hello_retail.minted == [first, accepted, renewed]
    assert id_cookies(context) == {"helloRetailTrackingUserId": renewed, "hello_retail_id": renewed}
    context.close()


def told_and_tracked(events: list[ScriptEvent]) -> list[tuple[str, str, list[Any]]]:
    return [(e.kind, e.name, e.args) for e in events]


#: Keeps the page on a product click (the product's own page is not the demo's): the click still reaches
#: the script's listener, which is what is under test.
STAY_ON_PRODUCT_CLICK = "addEventListener('click', e => e.target.closest('li.product a') && e.preventDefault(), true)"


def click_product(page: Any, script: ScriptLog, events: list[ScriptEvent]) -> list[ScriptEvent]:
    """Click the first product link of *page*, whose script reported *events* so far: every report of
    the page up to a marker pushed after the click (reports carry their order, so the click's is in)."""
    page.evaluate(STAY_ON_PRODUCT_CLICK)
    page.click("#recommendations li.product a")
    page.evaluate("hrq.push(['test-marker'])")  # an unknown command: the stand-in reports it, in order
    assert script.wait_for(lambda log: any(e.name == "test-marker" for e in log.events_of(events[0].page)))
    return script.events_of(events[0].page)


def test_the_script_is_told_the_consent_decision_before_it_tracks_and_sees_the_servers_id(
    shop: str, chromium: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    """Hello Retail's script (the fake's stand-in) as the demo's <head> renders it, page after page."""
    script, website = fake_hello_retail.script, fake_hello_retail.website_uuid
    context = chromium.new_context(user_agent=CHROME_UA)
    page = context.new_page()

    page.goto(shop + "/")  # a first visit: the banner is not answered, which the demo counts as consent
    first_page = script.wait_for_page_loaded(1)
    first = page.inner_text("#tracking-user-id")
    page.wait_for_function("document.getElementById('script-state').textContent.startsWith('tracking as')")
    first_state = page.inner_text("#script-state")
    with page.expect_navigation():
        page.click("#consent-decline")
    declined_page = click_product(page, script, script.wait_for_page_loaded(2))  # no click tracked
    page.wait_for_function("document.getElementById('script-state').textContent.startsWith('opted out')")
    page.reload()  # a plain visit of a visitor who declined
    opted_out_page = script.wait_for_page_loaded(3)
    with page.expect_navigation():
        page.click("#consent-accept")
    accepted = page.inner_text("#tracking-user-id")
    link = page.get_attribute("#recommendations li.product a", "href")
    accepted_page = click_product(page, script, script.wait_for_page_loaded(4))

    init_opted_out = ("command", "init", [{"websiteUuid": website, "setTrackingOptOut": True}])
    loaded, marker = ("loaded", "queue", []), ("command", "test-marker", [])
    assert told_and_tracked(declined_page) == [init_opted_out, loaded, marker]
    assert told_and_tracked(opted_out_page) == [init_opted_out, loaded]
    tracking = [
        ("command", "init", [{"websiteUuid": website}]),
        ("tracked", "pageview", []),
        ("command", "setTrackingOptOut", [False]),
        loaded,
    ]
    assert told_and_tracked(first_page) == tracking
    assert link is not None
    code = unquote(link.partition("#aw_source=")[2])
    assert code
    assert told_and_tracked(accepted_page) == [*tracking, ("tracked", "click", [code]), marker]
    # The id the script sees is the server's: the first visit's, then the one minted at grant().
    assert first_page[1].tracking_user_id == first
    assert accepted_page[1].tracking_user_id == accepted_page[4].tracking_user_id == accepted
    assert fake_hello_retail.minted == [first, accepted]
    assert first_state == f"tracking as {first} (page views: 1, clicks: 0)"
    # Nothing at all was tracked while the visitor had declined.
    assert [(e.name, e.page) for e in script.tracked()] == [
        ("pageview", first_page[0].page),
        ("pageview", accepted_page[0].page),
        ("click", accepted_page[0].page),
    ]
    context.close()


def test_the_stand_in_takes_a_customer_and_a_reload_as_a_single_page_app_sends_them(
    shop: str, chromium: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    script = fake_hello_retail.script
    context = chromium.new_context(user_agent=CHROME_UA)
    page = context.new_page()
    page.goto(shop + "/")
    events = script.wait_for_page_loaded(1)

    page.evaluate("hrq.push(['setCustomerId', 'c-42'], ['reload'], ['test-marker'])")
    assert script.wait_for(lambda log: any(e.name == "test-marker" for e in log.events_of(events[0].page)))

    later = script.events_of(events[0].page)[len(events) :]
    assert [(e.kind, e.name, e.args) for e in later] == [
        ("command", "setCustomerId", ["c-42"]),
        ("command", "reload", []),
        ("tracked", "pageview", []),
        ("command", "test-marker", []),
    ]
    assert later[2].customer_id == "c-42"
    assert later[2].tracking_user_id == page.inner_text("#tracking-user-id")
    context.close()


def click_and_wait(page: Any, script: ScriptLog, selector: str, pages: int) -> list[ScriptEvent]:
    """Click *selector* (a form's button or a link) and wait for the page it opens to run the script,
    which is then the *pages*-th page to have done so: that page's events."""
    with page.expect_navigation():
        page.click(selector)
    return script.wait_for_page_loaded(pages)


def commands(events: list[ScriptEvent]) -> list[tuple[str, list[Any]]]:
    return [(e.name, e.args) for e in events if e.kind == "command"]


def test_logging_in_links_the_customer_once_and_each_region_has_its_website_and_its_id(
    shop: str, chromium: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    """The demo's "Log in" and region switch: one link per visitor and customer, whatever the pages
    and logins in between; the other region is another website, with another id, told to the script."""
    script, first_website = fake_hello_retail.script, fake_hello_retail.website_uuid
    context = chromium.new_context(user_agent=CHROME_UA)
    page = context.new_page()
    page.goto(shop + "/")  # 127.0.0.1: the first region, the default website
    pages = [script.wait_for_page_loaded(1)]
    first_id = page.inner_text("#tracking-user-id")
    first_region = (page.inner_text("#region-name"), page.inner_text("#website-uuid"))

    pages.append(click_and_wait(page, script, "#log-in", 2))
    linked = page.inner_text("#customer-link")
    page.wait_for_function(f"document.getElementById('script-customer').textContent === '{DEMO_CUSTOMER}'")
    for count, path in enumerate(("/", "/?q=lamp", "/"), start=3):  # browsing, logged in
        page.goto(shop + path)
        pages.append(script.wait_for_page_loaded(count))
    browsing = page.inner_text("#customer-link")
    pages.append(click_and_wait(page, script, "#log-out", 6))
    logged_out = page.inner_text("#customer-state")
    pages.append(click_and_wait(page, script, "#log-in", 7))
    logged_in_again = page.inner_text("#customer-link")
    links_in_the_first_region = list(fake_hello_retail.customer_links)

    second = click_and_wait(page, script, "#region-switch", 8)  # localhost: the second region's website
    second_url = page.url
    second_id = page.inner_text("#tracking-user-id")
    second_region = (page.inner_text("#region-name"), page.inner_text("#website-uuid"))
    page.wait_for_function(f"document.getElementById('script-website').textContent === '{SECOND_WEBSITE}'")
    second_not_logged_in = page.inner_text("#customer-state")
    second_login = click_and_wait(page, script, "#log-in", 9)
    second_linked = page.inner_text("#customer-link")
    back = click_and_wait(page, script, "#region-switch", 10)
    back_id = page.inner_text("#tracking-user-id")
    back_link = page.inner_text("#customer-link")

    assert first_region == ("Denmark", first_website)
    assert (linked, browsing, logged_in_again) == (
        LINK_TEXT[LinkOutcome.LINKED],
        LINK_TEXT[LinkOutcome.ALREADY_LINKED],
        LINK_TEXT[LinkOutcome.ALREADY_LINKED],
    )
    assert logged_out == "Not logged in."
    # One link for the visitor and customer: the login, not the three pages or the second login after it.
    assert links_in_the_first_region == [(first_id, DEMO_CUSTOMER)]
    # The script was named the customer on every page of the logged-in customer, and not after the logout.
    told_the_customer = [("setCustomerId", [DEMO_CUSTOMER]) in commands(events) for events in pages]
    assert told_the_customer == [False, True, True, True, True, False, True]
    # Every page told the script the first website, and it saw the server's id.
    assert all(commands(events)[0] == ("init", [{"websiteUuid": first_website}]) for events in pages)
    assert {e.tracking_user_id for events in pages for e in events} == {first_id}
    assert pages[1][-1].customer_id == DEMO_CUSTOMER  # the script's state once its queue ran

    assert second_url.startswith("http://localhost:")
    assert second_region == ("Sweden", SECOND_WEBSITE)
    assert second_id not in (first_id, OPT_OUT_ID)
    assert fake_hello_retail.minted_for(first_website) == [first_id]
    assert fake_hello_retail.minted_for(SECOND_WEBSITE) == [second_id]
    assert commands(second)[0] == ("init", [{"websiteUuid": SECOND_WEBSITE}])
    assert {e.tracking_user_id for e in second + second_login} == {second_id}
    assert second_not_logged_in == "Not logged in."  # the login lives on the other host
    assert second_linked == LINK_TEXT[LinkOutcome.LINKED]
    # A link per website's visitor: the second region's id, with its website.
    assert fake_hello_retail.customer_links == [(first_id, DEMO_CUSTOMER), (second_id, DEMO_CUSTOMER)]
    links = fake_hello_retail.api_requests("/serve/collect/customerId")
    assert [(r.json["trackingUserId"], r.website_uuid) for r in links] == [
        (first_id, first_website),
        (second_id, SECOND_WEBSITE),
    ]
    # Back in the first region: its own id and login, still linked.
    assert (back_id, back_link) == (first_id, LINK_TEXT[LinkOutcome.ALREADY_LINKED])
    assert commands(back)[0] == ("init", [{"websiteUuid": first_website}])
    assert {e.tracking_user_id for e in back} == {first_id}
    context.close()


def test_a_logged_in_visitor_who_declines_is_not_linked_nor_named_to_the_script(
    shop: str, chromium: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    script, website = fake_hello_retail.script, fake_hello_retail.website_uuid
    context = chromium.new_context(user_agent=CHROME_UA)
    page = context.new_page()
    page.goto(shop + "/")
    script.wait_for_page_loaded(1)
    click_and_wait(page, script, "#consent-decline", 2)

    logged_in = click_and_wait(page, script, "#log-in", 3)
    outcome = page.inner_text("#customer-link")
    page.reload()
    later = script.wait_for_page_loaded(4)
    accepted = click_and_wait(page, script, "#consent-accept", 5)
    accepted_id = page.inner_text("#tracking-user-id")
    accepted_outcome = page.inner_text("#customer-link")

    opted_out = [("command", "init", [{"websiteUuid": website, "setTrackingOptOut": True}]), ("loaded", "queue", [])]
    assert told_and_tracked(logged_in) == told_and_tracked(later) == opted_out
    assert outcome == LINK_TEXT[LinkOutcome.OPTED_OUT]
    # Consent given while logged in: the new id is linked at once, and the script told the customer.
    assert accepted_outcome == LINK_TEXT[LinkOutcome.LINKED]
    assert ("setCustomerId", [DEMO_CUSTOMER]) in commands(accepted)
    assert fake_hello_retail.customer_links == [(accepted_id, DEMO_CUSTOMER)]
    assert [e.page for e in script.tracked()] == [script.events[0].page, accepted[0].page]
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
