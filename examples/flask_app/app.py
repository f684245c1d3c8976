"""A tiny Flask shop page that shows the visitor's Hello Retail trackingUserId."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template_string

from hr_middleware import get_tracking_user
from hr_middleware.flask import HelloRetail

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
<p>Reload the page: the id stays the same. Delete the cookies to be a new visitor.</p>
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

    @app.get("/")
    def index() -> str:
        user = get_tracking_user()
        origin_text = ORIGIN_TEXT.get(str(user.origin), "no id: this request does not mint, or Hello Retail failed")
        return render_template_string(PAGE, user=user, origin_text=origin_text)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
