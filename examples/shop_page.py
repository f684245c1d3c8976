"""The demo shop's one page, shared by the Flask, Starlette and Django examples.

Everything here reads the fields Hello Retail really returns: a recommendations
answer's ``responses[i].products``, a search answer's ``products.results`` with
``totalCount``, and a facet value's ``query`` reused as the next filter.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from string import Template
from typing import Any
from urllib.parse import urlencode

from hr_middleware import HelloRetailError, TrackingUser
from hr_middleware.client import ProductsQuery, facets, paging, with_filter

__all__ = [
    "ORIGIN_TEXT",
    "RECOMMENDATIONS_KEY",
    "SEARCH_KEY",
    "SearchForm",
    "products_of",
    "recommendation_requests",
    "render_page",
    "search_html",
]

logger = logging.getLogger(__name__)

#: The recommendation box shown on the page (a key from Hello Retail's
#: dashboard; any key works with the fake server). Environment: ``RECOMMENDATIONS_KEY``.
RECOMMENDATIONS_KEY = "frontpage-personal"
#: The search configuration's key (any key works with the fake). Environment: ``SEARCH_KEY``.
SEARCH_KEY = "demo-search"
#: Search results per page.
PAGE_SIZE = 8

ORIGIN_TEXT = {
    "cookie": "read from the cookie (a returning visitor)",
    "sdk_cookie": "adopted from Hello Retail's own hello_retail_id cookie",
    "minted": "minted from Hello Retail on this request (a first visit)",
    "opt_out": "the opt-out id: this visitor declined tracking",
}
NO_ID_TEXT = "no id: this request does not mint, or Hello Retail failed"

PAGE = Template("""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>hr-middleware demo shop</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; line-height: 1.5; }
 code { background: #f3f3f3; padding: .1rem .3rem; border-radius: 3px; }
</style></head>
<body>
<h1>Demo shop <small>($framework)</small></h1>
<p>Your Hello Retail trackingUserId: <code id="tracking-user-id">$tracking_user_id</code></p>
<p id="origin">$origin_text</p>
<form id="search" action="/" method="get"><input type="search" name="q" value="$query" placeholder="Search the shop">
<button>Search</button></form>
$search
$recommendations
<p>Reload the page: the id and the recommendations stay the same. Delete the
cookies to be a new visitor.</p>
<p><small>Hello Retail's JavaScript would read <code>hello_retail_id</code>:
<code id="document-cookie"></code></small></p>
<script>
document.getElementById("document-cookie").textContent =
  (document.cookie.match(/(?:^|; )hello_retail_id=([^;]*)/) || [, "not set"])[1];
</script>
</body></html>
""")


def recommendation_requests(key: str) -> list[dict[str, Any]]:
    """The ``requests`` of a recommendations call for the page's box (a front page: empty context)."""
    fields = ["title", "url", "price", "productNumber", "imgUrl", "trackingCode"]
    return [{"key": key, "format": "json", "fields": fields, "context": {}}]


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
            "fields": ["title", "url", "price", "productNumber", "trackingCode"],
            "filters": self.filters,
            "returnFilters": True,
        }

    def link(self, products: Mapping[str, Any]) -> str:
        """The page URL that searches with *products* (another page, another filter)."""
        pairs = [("q", self.query), ("start", str(products.get("start", 0)))]
        pairs += [("filter", f) for f in products.get("filters") or ()]
        return "/?" + urlencode(pairs)


def search_html(form: SearchForm, answer: Any) -> str:
    """The search results of *answer* (a search answer for *form*), or "" when it is unusable."""
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
    items = "\n".join(_product_html(p) for p in results if isinstance(p, dict))
    choices = "".join(
        f'<li><a class="facet{" selected" if value.selected else ""}" '
        f'href="{html.escape(form.link(with_filter(query, value.query)))}">'
        f"{html.escape(value.title)} ({value.count})</a></li>"
        for value in (brand.values if brand else ())
    )
    following = ""
    if where.has_next:
        next_link = form.link({**query, "start": where.start + where.count})
        following = f'<a id="next-page" href="{html.escape(next_link)}">Next page</a>'
    return (
        f'<section id="search-results">\n<h2>{where.total} results for &ldquo;{html.escape(form.query)}&rdquo;</h2>\n'
        f'<p id="page-of">Page {where.page} of {where.pages}</p>\n<ul class="facets">{choices}</ul>\n'
        f"<ul>\n{items}\n</ul>\n{following}\n</section>"
    )


def _product_html(p: Mapping[str, Any]) -> str:
    return (
        f' <li class="product" data-product-number="{html.escape(str(p.get("productNumber", "")))}">'
        f'<a href="{html.escape(str(p.get("url", "#")))}">{html.escape(str(p.get("title", "")))}</a> '
        f'<span class="price">{html.escape(str(p.get("price", "")))}</span></li>'
    )


def products_of(answer: Any) -> list[Mapping[str, Any]]:
    """The products of the first box of a recommendations answer; [] if it has none."""
    try:
        products = answer["responses"][0]["products"]
    except (LookupError, TypeError):
        logger.warning("no recommendations: unexpected answer")
        return []
    return [product for product in products if isinstance(product, dict)] if isinstance(products, list) else []


def _recommendations_html(products: Sequence[Mapping[str, Any]]) -> str:
    if not products:
        return ""
    items = "\n".join(_product_html(p) for p in products)
    return f'<section id="recommendations">\n<h2>Recommended for you</h2>\n<ul>\n{items}\n</ul>\n</section>'


def render_page(
    user: TrackingUser,
    framework: str,
    products: Sequence[Mapping[str, Any]] = (),
    *,
    query: str = "",
    search: str = "",
) -> str:
    """The page for *user* (from :func:`hr_middleware.get_tracking_user`), its recommended *products*,
    and the *search* results (from :func:`search_html`) for *query*."""
    return PAGE.substitute(
        framework=html.escape(framework),
        tracking_user_id=html.escape(user.id or "none"),
        origin_text=html.escape(ORIGIN_TEXT.get(str(user.origin), NO_ID_TEXT)),
        query=html.escape(query),
        search=search,
        recommendations=_recommendations_html(products),
    )
