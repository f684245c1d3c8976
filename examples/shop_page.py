"""The demo shop's one page, shared by the Flask, Starlette and Django examples: same look, same content.

It shows the visitor's trackingUserId and where it came from (or, without one,
why not), what this response did (its ``Set-Cookie``, ``Cache-Control`` and
``Vary`` headers, filled in by :mod:`examples.response_headers`) and how many
calls reached Hello Retail so far; buttons to become a new visitor and to
accept or decline tracking; what Hello Retail's script on the page was told
(its website, the consent decision, the customer); the region (one Hello
Retail website per host, :data:`REGIONS`) with a switch to the other one; a
"log in" button that links a demo customer (:data:`DEMO_CUSTOMER`) and says
what the link did; a search box and "Recommended for you" as product cards.
Everything is inline: no external asset, so it works offline.

The products come from the fields Hello Retail really returns: a
recommendations answer's ``responses[i].products``, a search answer's
``products.results`` with ``totalCount``, and a facet value's ``query`` reused
as the next filter. Against the fake Hello Retail, ``imgUrl`` points at the
fake's own generated pictures, which the page shows through the demo's own
origin (:data:`IMAGES_PATH`): a browser on another machine (``HOST=0.0.0.0``)
cannot reach the fake's loopback port.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping, Sequence
from string import Template
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from examples.response_headers import MARKER
from hr_middleware import OPT_OUT_ID, HelloRetailError, TrackingUser
from hr_middleware.client import ProductsQuery, facets, paging, with_filter
from hr_middleware.consent import cookie_consent
from hr_middleware.customers import LinkOutcome
from hr_middleware.testing import FakeHelloRetail

__all__ = [
    "CONSENT_COOKIE",
    "CUSTOMER_COOKIE",
    "DEMO_CUSTOMER",
    "DEMO_WEBSITE_UUIDS",
    "IMAGES_PATH",
    "MIDDLEWARE_OPTIONS",
    "ORIGIN_TEXT",
    "RECOMMENDATIONS_KEY",
    "REGIONS",
    "SEARCH_KEY",
    "SearchForm",
    "click_fragment",
    "consent_value",
    "fake_image",
    "logged_in_customer",
    "products_of",
    "recommendation_requests",
    "render_page",
    "search_html",
    "shown_image",
    "website_options",
]

logger = logging.getLogger(__name__)

#: The recommendation box shown on the page (a key from Hello Retail's
#: dashboard; any key works with the fake server). Environment: ``RECOMMENDATIONS_KEY``.
RECOMMENDATIONS_KEY = "frontpage-personal"
#: The search configuration's key (any key works with the fake). Environment: ``SEARCH_KEY``.
SEARCH_KEY = "demo-search"
#: Search results per page.
PAGE_SIZE = 8
#: The demo's consent banner stores the visitor's answer here: "yes" or "no".
CONSENT_COOKIE = "demo_consent"
#: A year, as consent banners keep an answer.
CONSENT_MAX_AGE = 365 * 24 * 3600
#: The middleware's options that every demo adds to the website UUID and address:
#: consent read from the demo's own cookie, and an unanswered banner counted as
#: consent so that a first visit gets an id (the default, ``consent_unknown=False``,
#: counts it as a refusal; the page says so).
MIDDLEWARE_OPTIONS: dict[str, Any] = {"consent": cookie_consent(CONSENT_COOKIE, "yes"), "consent_unknown": True}

ORIGIN_TEXT = {
    "cookie": "read from the cookie (a returning visitor)",
    "sdk_cookie": "adopted from Hello Retail's own hello_retail_id cookie",
    "minted": "minted from Hello Retail on this request (a first visit)",
    "opt_out": "the opt-out id: this visitor declined tracking, and Hello Retail gets no id of theirs",
}
CONSENT_TEXT = {
    # What the demo's own options make of an unanswered banner, next to what the default makes of it.
    None: (
        "not answered yet: counted as consent, because this demo sets consent_unknown=True "
        "(by default, consent_unknown=False, it counts as declined)"
        if MIDDLEWARE_OPTIONS["consent_unknown"]
        else "not answered yet: counted as declined (consent_unknown=False, the default)"
    ),
    "yes": "accepted",
    "no": "declined",
}
#: Where the demo serves the embedded fake's product pictures, on its own origin.
IMAGES_PATH = "/images/"
# A picture's name: one path segment, so that nothing but the fake's pictures is fetched.
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,200}")
#: The demo's two regions, each a Hello Retail website of its own on a host of its own, as
#: (name, host): both hosts reach the demo on one machine, and a browser keeps cookies per host,
#: so a visitor has one id per website (docs/websites.md). The first is the default website.
REGIONS = (("Denmark", "127.0.0.1"), ("Sweden", "localhost"))
#: The embedded fake Hello Retail's websites, one per region (it refuses calls naming any other).
DEMO_WEBSITE_UUIDS = ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222")
#: The shop's customer that "Log in" logs in as (a shop's own customer number).
DEMO_CUSTOMER = "53967"
#: The demo's stand-in for a login session: the logged-in customer's id.
CUSTOMER_COOKIE = "demo_customer"
#: What a customer link did, in words (:func:`hr_middleware.customers.link_customer`'s outcome).
LINK_TEXT = {
    LinkOutcome.LINKED: "linked to your id on this request: one call to Hello Retail",
    LinkOutcome.ALREADY_LINKED: "already linked to your id: no call to Hello Retail",
    LinkOutcome.OPTED_OUT: "not linked: you declined tracking, so Hello Retail hears nothing of it",
    LinkOutcome.NO_ID: "not linked: this request has no id (linked at a later login)",
    LinkOutcome.FAILED: "not linked: Hello Retail failed (tried again on the next page)",
    LinkOutcome.OUTSIDE_REQUEST: "not linked: outside a request of the middleware",
}
#: The cookies "Become a new visitor" forgets: both ids, the consent answer and the login.
FORGOTTEN_COOKIES = ("helloRetailTrackingUserId", "hello_retail_id", CONSENT_COOKIE, CUSTOMER_COOKIE)


def website_options(website_uuid: str, second_website_uuid: str | None = None) -> dict[str, Any]:
    """The middleware's options naming the demo's websites: *website_uuid* for the first region (and
    any host not in :data:`REGIONS`), and with *second_website_uuid* the ``websites`` option that gives
    the second region's host that website."""
    if not second_website_uuid:
        return {"website_uuid": website_uuid}
    websites = {host: uuid for (_, host), uuid in zip(REGIONS, (website_uuid, second_website_uuid), strict=True)}
    return {"website_uuid": website_uuid, "websites": websites}


def logged_in_customer(cookie: object) -> str | None:
    """The customer the demo's login cookie names: :data:`DEMO_CUSTOMER`, or None for anything else."""
    return DEMO_CUSTOMER if cookie == DEMO_CUSTOMER else None


STYLE = """
:root { --ink: #1d2433; --muted: #5c6577; --line: #e3e6ee; --accent: #4f46e5; --bg: #f5f6fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); }
.bar, main { max-width: 68rem; margin: 0 auto; padding: 0 1.25rem; }
.bar { display: flex; align-items: baseline; gap: .75rem; padding-top: .9rem; padding-bottom: .9rem; }
.bar h1 { font-size: 1.25rem; margin: 0; }
.badge { background: var(--accent); color: #fff; border-radius: 99px; padding: .05rem .6rem; font-size: .8rem; }
.bar .backend { margin-left: auto; color: var(--muted); font-size: .85rem; }
main { padding-top: 1.25rem; padding-bottom: 2rem; }
.panels { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1.25fr); gap: 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 1rem 1.25rem; }
.card h2, section h2 { font-size: .8rem; letter-spacing: .06em; text-transform: uppercase; color: var(--muted);
  margin: 0 0 .6rem; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85em; }
#tracking-user-id { display: inline-block; font-size: 1.15rem; background: #eef0ff; color: #312e81;
  padding: .2rem .55rem; border-radius: 6px; }
#origin { margin: .5rem 0 .25rem; }
#no-id-reason { margin: .25rem 0; color: #9a3412; background: #fff7ed; border-radius: 6px; padding: .4rem .6rem; }
.muted { color: var(--muted); font-size: .85rem; }
.buttons { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0 .9rem; }
.buttons .muted { flex: 1; align-self: center; min-width: 10rem; }
button { font: inherit; font-size: .9rem; border-radius: 8px; padding: .4rem .85rem; cursor: pointer;
  border: 1px solid var(--line); background: #fff; color: var(--ink); }
button.accept { background: #15803d; border-color: #15803d; color: #fff; }
button.decline { color: #b91c1c; border-color: #fca5a5; }
#region, #customer { border-top: 1px solid var(--line); margin-top: .6rem; padding-top: .6rem; }
#region p, #customer p { margin: .25rem 0; }
a#region-switch { color: var(--accent); }
table { width: 100%; border-collapse: collapse; font-size: .85rem; }
th { text-align: left; white-space: nowrap; vertical-align: top; padding: .3rem .75rem .3rem 0; color: var(--muted);
  font-weight: 600; }
td { padding: .3rem 0; border-top: 1px solid var(--line); overflow-wrap: anywhere; }
tr:first-child td { border-top: 0; }
tr.not-sent td { color: var(--muted); font-style: italic; }
.deletes { background: #fee2e2; color: #991b1b; border-radius: 4px; padding: 0 .35rem; margin-left: .3rem;
  font-size: .75rem; white-space: nowrap; }
#calls { margin: .8rem 0 0; }
#hello-retail-calls { font-size: 1.1rem; }
#search { display: flex; gap: .5rem; margin: 1.25rem 0; }
#search input { flex: 1; font: inherit; padding: .55rem .8rem; border: 1px solid var(--line); border-radius: 8px; }
#search button { background: var(--accent); border-color: var(--accent); color: #fff; }
section { margin-top: 1.25rem; }
section > h2 { font-size: .9rem; }
ul.products { list-style: none; padding: 0; margin: 0; display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); }
li.product { background: #fff; border: 1px solid var(--line); border-radius: 12px; overflow: hidden; }
li.product a { color: inherit; text-decoration: none; display: block; }
li.product img { display: block; width: 100%; height: auto; aspect-ratio: 4 / 3; object-fit: cover;
  background: var(--line); }
li.product .title { display: block; padding: .5rem .75rem 0; font-weight: 600; }
li.product .price { display: block; padding: 0 .75rem .6rem; color: var(--muted); }
ul.facets { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem; margin: .5rem 0 1rem; }
a.facet { display: inline-block; border: 1px solid var(--line); background: #fff; border-radius: 99px;
  padding: .15rem .7rem; color: var(--ink); text-decoration: none; font-size: .85rem; }
a.facet.selected { background: var(--accent); border-color: var(--accent); color: #fff; }
#next-page { display: inline-block; margin-top: .8rem; color: var(--accent); }
footer { color: var(--muted); font-size: .85rem; margin-top: 1.5rem; }
@media (max-width: 48rem) { .panels { grid-template-columns: 1fr; } }
"""

PAGE = Template("""<!doctype html>
<html lang="en">
<head><meta charset="utf-8">
$script
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hr-middleware demo shop ($framework)</title>
<style>$style</style></head>
<body>
<header><div class="bar"><h1>hr-middleware demo shop</h1><span class="badge" id="framework">$framework</span>
<span class="backend">$backend</span></div></header>
<main>
<div class="panels">
<div class="card" id="visitor">
<h2>You</h2>
<div>Your Hello Retail trackingUserId: <code id="tracking-user-id">$tracking_user_id</code></div>
<p id="origin">$origin_text</p>
$reason
<p class="muted" id="consent-state">Tracking consent: $consent_text</p>
<p class="muted">Hello Retail's script: <span id="script-state">$script_state</span><br>
website: <code id="script-website">&hellip;</code>, customer: <code id="script-customer">&hellip;</code><br>
told: <code id="script-told">&hellip;</code></p>
<form method="post" action="/consent" id="consent" class="buttons">
<button class="accept" name="answer" value="accept" id="consent-accept">Accept tracking</button>
<button class="decline" name="answer" value="decline" id="consent-decline">Decline tracking</button>
</form>
<div class="buttons"><button type="button" id="new-visitor">Become a new visitor</button>
<span class="muted">forgets both id cookies, the consent answer and the login</span></div>
<p class="muted">Hello Retail's JavaScript would read <code>hello_retail_id</code>:
<code id="document-cookie">&hellip;</code></p>
$region
$customer
</div>
<div class="card" id="this-response">
<h2>What this response did</h2>
<table id="response-headers">
$marker
</table>
<p id="calls">$calls</p>
</div>
</div>
<form id="search" action="/" method="get"><input type="search" name="q" value="$query"
 placeholder="Search the shop" aria-label="Search the shop"><button>Search</button></form>
$search
$recommendations
<footer><p>Reload the page: the id and the recommendations stay the same. Accept or decline tracking to see
the id and the cookies change; become a new visitor to start again.</p></footer>
</main>
<script>
document.getElementById("new-visitor").addEventListener("click", () => {
  for (const name of $forgotten) {
    document.cookie = name + "=; Max-Age=0; Path=/; SameSite=Lax";
  }
  location.assign("/");
});
// After a consent answer (a POST), a reload is a plain visit to the shop.
if (location.pathname !== "/") history.replaceState(null, "", "/");
// What Hello Retail's script was told and does (the fake's stand-in reports it; the real script keeps its own).
function showScript() {
  const script = window.helloRetailStandIn;
  if (!script) {
    // Hello Retail's own script: the page's <head> says what it is told; its state is its own.
    if (document.readyState === "complete" && document.querySelector("head script[src]")) {
      document.getElementById("script-state").textContent = "Hello Retail's own: its init is in the page's <head>";
    }
    return;
  }
  document.getElementById("script-state").textContent = script.optedOut
    ? "opted out: tracks nothing"
    : "tracking as " + (script.trackingUserId || "no id") + " (page views: " + script.pageviews
      + ", clicks: " + script.clicks + ")";
  document.getElementById("script-website").textContent = script.websiteUuid || "none";
  document.getElementById("script-customer").textContent = script.customerId || "none";
  document.getElementById("script-told").textContent = script.commands.map(c => JSON.stringify(c)).join(" ");
}
document.addEventListener("helloretail:standin", showScript);
window.addEventListener("load", showScript);
showScript();
document.getElementById("document-cookie").textContent =
  (document.cookie.match(/(?:^|; )hello_retail_id=([^;]*)/) || [, "not set"])[1];
</script>
</body></html>
""")


def recommendation_requests(key: str) -> list[dict[str, Any]]:
    """The ``requests`` of a recommendations call for the page's box (a front page: empty context)."""
    fields = ["title", "originalUrl", "url", "price", "productNumber", "imgUrl", "trackingCode"]
    return [{"key": key, "format": "json", "fields": fields, "context": {}}]


def consent_value(answer: object) -> str | None:
    """The consent cookie's value for a consent form's *answer* ("accept" or "decline"); None for anything else."""
    return {"accept": "yes", "decline": "no"}.get(str(answer))


class SearchForm:
    """The search box's query string: ``q``, ``start`` and ``filter`` (repeated), checked."""

    def __init__(self, args: Mapping[str, Any], filters: Sequence[str] = ()) -> None:
        #: What the visitor searched for; "" shows no search.
        self.query = str(args.get("q") or "").strip()[:200]
        start = str(args.get("start") or "0")
        #: The offset of the page shown.
        self.start = int(start) if start.isdigit() and int(start) < 10_000 else 0
        #: The facet values chosen: Hello Retail's own ``query`` strings.
        self.filters = [f for f in filters if isinstance(f, str) and f][:10]

    def products(self) -> ProductsQuery:
        """The ``products`` of the search request."""
        return {
            "start": self.start,
            "count": PAGE_SIZE,
            "fields": ["title", "originalUrl", "url", "price", "productNumber", "imgUrl", "trackingCode"],
            "filters": self.filters,
            "returnFilters": True,
        }

    def link(self, products: Mapping[str, Any]) -> str:
        """The page URL that searches with *products* (another page, another filter)."""
        pairs = [("q", self.query), ("start", str(products.get("start", 0)))]
        pairs += [("filter", f) for f in products.get("filters") or ()]
        return "/?" + urlencode(pairs)


def search_html(form: SearchForm, answer: Any, fake: FakeHelloRetail | None = None) -> str:
    """The search results of *answer* (a search answer for *form*), or "" when it is unusable.

    *fake* is the embedded fake Hello Retail, whose pictures are shown through the demo's origin.
    """
    if not form.query:
        return ""
    try:
        where = paging(answer)
        results = answer["products"]["results"]
        brand = next((f for f in facets(answer) if f.name == "brand"), None)
    except (HelloRetailError, LookupError, TypeError):
        logger.warning("no search results: unexpected answer")
        return ""
    query = form.products()
    items = "\n".join(_product_html(p, fake) for p in results if isinstance(p, dict))
    choices = "".join(
        f'<li><a class="facet{" selected" if value.selected else ""}" '
        f'href="{html.escape(form.link(with_filter(query, value.query)))}">'
        f"{html.escape(value.title)} ({value.count})</a></li>"
        for value in (brand.values if brand else ())
    )
    following = ""
    if where.has_next:
        next_link = form.link({**query, "start": where.start + where.count})
        following = f'<a id="next-page" href="{html.escape(next_link)}">Next page &rarr;</a>'
    return (
        f'<section id="search-results">\n<h2>{where.total} results for &ldquo;{html.escape(form.query)}&rdquo;</h2>\n'
        f'<p id="page-of" class="muted">Page {where.page} of {where.pages}</p>\n<ul class="facets">{choices}</ul>\n'
        f'<ul class="products">\n{items}\n</ul>\n{following}\n</section>'
    )


def shown_image(url: str, fake: FakeHelloRetail | None) -> str:
    """The ``src`` of a product picture: the embedded *fake*'s through :data:`IMAGES_PATH`, any other as is."""
    if fake is not None and url.startswith(fake.images_url + "/"):
        return IMAGES_PATH + url[len(fake.images_url) + 1 :]
    return url


def fake_image(fake: FakeHelloRetail | None, name: str) -> tuple[int, str, bytes]:
    """The embedded *fake*'s picture *name*, for the demo's :data:`IMAGES_PATH`: status, content type, body."""
    if fake is None or not _IMAGE_NAME.fullmatch(name):
        return 404, "text/plain", b"no such image"
    try:
        answer = requests.get(f"{fake.images_url}/{name}", timeout=5)
    except requests.RequestException as exc:
        logger.warning("no picture %s: %s", name, exc)
        return 502, "text/plain", b"the fake Hello Retail did not answer"
    return answer.status_code, answer.headers.get("Content-Type", "application/octet-stream"), answer.content


def _product_html(p: Mapping[str, Any], fake: FakeHelloRetail | None = None) -> str:
    title = str(p.get("title", ""))
    # A product links to its page, originalUrl (without one, to a search for it), with the fragment of its
    # url (#aw_source=<trackingCode>): Hello Retail's script tracks the click (docs/script.md).
    original = str(p.get("originalUrl", ""))
    page = original if original.startswith(("http://", "https://")) else "/?" + urlencode({"q": title})
    link = page + click_fragment(p)
    image = shown_image(str(p.get("imgUrl", "")), fake)
    picture = (
        f'<img src="{html.escape(image)}" alt="" width="320" height="240" loading="lazy">'
        if image.startswith(("http://", "https://", IMAGES_PATH))
        else ""
    )
    price = p.get("price")
    shown_price = f"&euro;{price:.2f}" if isinstance(price, (int, float)) else html.escape(str(price or ""))
    return (
        f' <li class="product" data-product-number="{html.escape(str(p.get("productNumber", "")))}">'
        f'<a href="{html.escape(link)}">{picture}<span class="title">{html.escape(title)}</span></a>'
        f'<span class="price">{shown_price}</span></li>'
    )


def click_fragment(product: Mapping[str, Any]) -> str:
    """The fragment by which Hello Retail's script tracks a click on *product*'s link: its ``url``'s
    ``#aw_source=<trackingCode>`` (or one made from ``trackingCode``); "" when it has neither."""
    url = str(product.get("url") or "")
    if "#aw_source=" in url:
        return url[url.index("#aw_source=") :]
    code = product.get("trackingCode")
    return "#aw_source=" + quote(code, safe="") if isinstance(code, str) and code else ""


def products_of(answer: Any) -> list[Mapping[str, Any]]:
    """The products of the first box of a recommendations answer; [] if it has none."""
    try:
        products = answer["responses"][0]["products"]
    except (LookupError, TypeError):
        logger.warning("no recommendations: unexpected answer")
        return []
    return [product for product in products if isinstance(product, dict)] if isinstance(products, list) else []


def _recommendations_html(products: Sequence[Mapping[str, Any]], fake: FakeHelloRetail | None) -> str:
    if not products:
        return ""
    items = "\n".join(_product_html(p, fake) for p in products)
    return (
        f'<section id="recommendations">\n<h2>Recommended for you</h2>\n'
        f'<ul class="products">\n{items}\n</ul>\n</section>'
    )


def _calls_html(fake: FakeHelloRetail | None) -> str:
    if fake is None:
        return '<span class="muted">Calls to Hello Retail are counted only by the embedded fake Hello Retail.</span>'
    mints, others = len(fake.mint_requests()), len(fake.api_requests())
    return (
        f'<strong id="hello-retail-calls">{mints + others}</strong> calls reached Hello Retail so far: '
        f"{mints} to mint an id, {others} for recommendations, search and customer links."
    )


def _reason_html(user: TrackingUser) -> str:
    if user.reason is None:
        return ""
    return f'<p id="no-id-reason">No id for this request: {html.escape(user.reason.explanation)}.</p>'


def _origin_text(user: TrackingUser) -> str:
    if user.id is None:
        return "No trackingUserId on this request."
    text = ORIGIN_TEXT.get(str(user.origin), "")
    if user.id == OPT_OUT_ID:
        return f"{text[:1].upper()}{text[1:]}."
    return f"Where it came from: {text}."


def _region_html(host: str, website_uuid: str | None, websites: Mapping[str, object] | None) -> str:
    """The request's region and website, and a link to the other region (the same demo on its host)."""
    website = f'Hello Retail website <code id="website-uuid">{html.escape(website_uuid or "none")}</code>'
    if not websites:
        return (
            f'<div id="region"><p>Region: <strong id="region-name">one website</strong>, {website}.</p>\n'
            '<p class="muted">A second region needs a second website: set HELLO_RETAIL_SECOND_WEBSITE_UUID.</p></div>'
        )
    try:
        port = urlsplit("//" + host).port
    except ValueError:
        port = None
    here = urlsplit("//" + host).hostname or ""
    # A host that is not a region's is of the default website: the first region's.
    name = next((name for name, region_host in REGIONS if region_host == here), REGIONS[0][0])
    other_name, other_host = next(region for region in REGIONS if region[0] != name)
    switch = f"//{other_host}{'' if port is None else f':{port}'}/"
    return (
        f'<div id="region"><p>Region: <strong id="region-name">{html.escape(name)}</strong>, {website}: '
        "the id above is this website's.</p>\n"
        f'<p><a id="region-switch" href="{html.escape(switch)}">Switch to {html.escape(other_name)}</a> '
        f'<span class="muted">({html.escape(other_host)}: another website, so another id)</span></p></div>'
    )


def _customer_html(customer: str | None, link: LinkOutcome | None) -> str:
    """Who is logged in and what linking them did; the button to log in or out."""
    if customer is None:
        return (
            '<div id="customer"><p id="customer-state">Not logged in.</p>\n'
            '<form method="post" action="/login" id="login" class="buttons">'
            f'<button id="log-in">Log in as customer {DEMO_CUSTOMER}</button>'
            '<span class="muted">links the customer to your id at Hello Retail, once</span></form></div>'
        )
    outcome = "" if link is None else LINK_TEXT.get(link, str(link))
    return (
        f'<div id="customer"><p id="customer-state">Logged in as customer <code id="customer-id">'
        f'{html.escape(customer)}</code>: <span id="customer-link">{html.escape(outcome)}</span>.</p>\n'
        '<form method="post" action="/logout" id="logout" class="buttons">'
        '<button id="log-out">Log out</button></form></div>'
    )


def render_page(
    user: TrackingUser,
    framework: str,
    products: Sequence[Mapping[str, Any]] = (),
    *,
    query: str = "",
    search: str = "",
    fake: FakeHelloRetail | None = None,
    consent: str | None = None,
    script: str = "",
    host: str = "",
    website_uuid: str | None = None,
    websites: Mapping[str, object] | None = None,
    customer: str | None = None,
    link: LinkOutcome | None = None,
) -> str:
    """The page for *user* (from :func:`hr_middleware.get_tracking_user`).

    *products* are the recommended ones, *search* the results (from
    :func:`search_html`) for *query*; *fake* is the embedded fake Hello Retail
    whose calls are counted (None: the real one); *consent* is the value of the
    :data:`CONSENT_COOKIE` this response leaves the visitor with; *script* is Hello
    Retail's script for this request (from :func:`hr_middleware.script.hello_retail_script`).
    *host* is the request's ``Host`` header, *website_uuid* its website
    (:func:`hr_middleware.get_website_uuid`) and *websites* the middleware's
    ``websites`` option (from :func:`website_options`; None: one website);
    *customer* is the logged-in customer (None: nobody) and *link* what
    :func:`hr_middleware.customers.link_customer` did for them on this request.
    """
    backend = f"ids from the embedded fake Hello Retail at {fake.url}" if fake is not None else "ids from Hello Retail"
    return PAGE.substitute(
        script=script,
        script_state="not loaded" if "<script" in script else "not on this page (its comment in &lt;head&gt; says why)",
        region=_region_html(host, website_uuid, websites),
        customer=_customer_html(customer, link),
        style=STYLE,
        framework=html.escape(framework),
        backend=html.escape(backend),
        tracking_user_id=html.escape(user.id or "none"),
        origin_text=html.escape(_origin_text(user)),
        reason=_reason_html(user),
        consent_text=html.escape(CONSENT_TEXT.get(consent, CONSENT_TEXT["no"])),
        marker=MARKER,
        calls=_calls_html(fake),
        query=html.escape(query),
        search=search,
        recommendations=_recommendations_html(products, fake),
        forgotten=json.dumps(FORGOTTEN_COOKIES),
    )
