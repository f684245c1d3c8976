"""The demo shop's one page, shared by the Flask and Starlette examples."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from string import Template
from typing import Any

from hr_middleware import TrackingUser

__all__ = ["ORIGIN_TEXT", "RECOMMENDATIONS_KEY", "products_of", "recommendation_requests", "render_page"]

logger = logging.getLogger(__name__)

#: The recommendation box shown on the page (a key from Hello Retail's
#: dashboard; any key works with the fake server). Environment: ``RECOMMENDATIONS_KEY``.
RECOMMENDATIONS_KEY = "frontpage-personal"

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
    """The ``requests`` of a recommendations call for the page's box."""
    return [{"key": key, "format": "json", "fields": ["title", "url", "price", "productNumber", "imgUrl"]}]


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
    items = "\n".join(
        f' <li class="product" data-product-number="{html.escape(str(p.get("productNumber", "")))}">'
        f'<a href="{html.escape(str(p.get("url", "#")))}">{html.escape(str(p.get("title", "")))}</a> '
        f'<span class="price">{html.escape(str(p.get("price", "")))}</span></li>'
        for p in products
    )
    return f'<section id="recommendations">\n<h2>Recommended for you</h2>\n<ul>\n{items}\n</ul>\n</section>'


def render_page(user: TrackingUser, framework: str, products: Sequence[Mapping[str, Any]] = ()) -> str:
    """The page for *user* (from :func:`hr_middleware.get_tracking_user`) and its recommended *products*."""
    return PAGE.substitute(
        framework=html.escape(framework),
        tracking_user_id=html.escape(user.id or "none"),
        origin_text=html.escape(ORIGIN_TEXT.get(str(user.origin), NO_ID_TEXT)),
        recommendations=_recommendations_html(products),
    )
