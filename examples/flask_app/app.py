"""A tiny Flask shop page: the visitor's Hello Retail trackingUserId and "Recommended for you"."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, render_template_string

from hr_middleware import HelloRetailError, get_tracking_user
from hr_middleware.client import HelloRetailClient
from hr_middleware.flask import HelloRetail

logger = logging.getLogger(__name__)

#: The recommendation box shown on the page (a key from Hello Retail's
#: dashboard; any key works with the fake server). Config: ``RECOMMENDATIONS_KEY``.
DEFAULT_RECOMMENDATIONS_KEY = "frontpage-personal"

ORIGIN_TEXT = {
    "cookie": "read from the cookie (a returning visitor)",
    "sdk_cookie": "adopted from Hello Retail's own hello_retail_id cookie",
    "minted": "minted from Hello Retail on this request (a first visit)",
    "opt_out": "the opt-out id: this visitor declined tracking",
}

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>hr-middleware demo shop</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; line-height: 1.5; }
 code { background: #f3f3f3; padding: .1rem .3rem; border-radius: 3px; }
</style></head>
<body>
<h1>Demo shop</h1>
<p>Your Hello Retail trackingUserId: <code id="tracking-user-id">{{ user.id or "none" }}</code></p>
<p id="origin">{{ origin_text }}</p>
{% if products %}
<section id="recommendations">
<h2>Recommended for you</h2>
<ul>
{% for product in products %}
 <li class="product" data-product-number="{{ product.productNumber }}">
  <a href="{{ product.url }}">{{ product.title }}</a> <span class="price">{{ product.price }}</span>
 </li>
{% endfor %}
</ul>
</section>
{% endif %}
<p>Reload the page: the id and the recommendations stay the same. Delete the
cookies to be a new visitor.</p>
<p><small>Hello Retail's JavaScript would read <code>hello_retail_id</code>:
<code id="document-cookie"></code></small></p>
<script>
document.getElementById("document-cookie").textContent =
  (document.cookie.match(/(?:^|; )hello_retail_id=([^;]*)/) || [, "not set"])[1];
</script>
</body></html>
"""


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The demo app; *config* must hold at least ``HELLO_RETAIL_WEBSITE_UUID``."""
    app = Flask(__name__)
    app.config.update(config or {})
    HelloRetail(app)
    # One client for the app's life: it keeps a pool of connections.
    hello_retail = HelloRetailClient.from_settings(HelloRetail.settings(app))
    recommendations_key = app.config.get("RECOMMENDATIONS_KEY", DEFAULT_RECOMMENDATIONS_KEY)

    @app.get("/")
    def index() -> str:
        user = get_tracking_user()
        origin_text = ORIGIN_TEXT.get(str(user.origin), "no id: this request does not mint, or Hello Retail failed")
        products = recommended_for_you(hello_retail, recommendations_key)
        return render_template_string(PAGE, user=user, origin_text=origin_text, products=products)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def recommended_for_you(hello_retail: HelloRetailClient, key: str) -> list[dict[str, Any]]:
    """The visitor's recommended products; [] when Hello Retail fails, so the page renders without them."""
    try:
        # The client fills in the visitor's trackingUserId itself.
        answer = hello_retail.recommendations(
            [{"key": key, "format": "json", "fields": ["title", "url", "price", "productNumber", "imgUrl"]}]
        )
    except HelloRetailError as exc:
        logger.warning("no recommendations: %s", exc)
        return []
    try:
        products = answer["responses"][0]["products"]
    except (LookupError, TypeError):
        logger.warning("no recommendations: unexpected answer")
        return []
    return [product for product in products if isinstance(product, dict)] if isinstance(products, list) else []
