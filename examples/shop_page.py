"""The demo shop's one page, shared by the Flask and Starlette examples."""

from __future__ import annotations

import html
from string import Template

from hr_middleware import TrackingUser

__all__ = ["ORIGIN_TEXT", "render_page"]

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
<p>Reload the page: the id stays the same. Delete the cookies to be a new visitor.</p>
<p><small>Hello Retail's JavaScript would read <code>hello_retail_id</code>:
<code id="document-cookie"></code></small></p>
<script>
document.getElementById("document-cookie").textContent =
  (document.cookie.match(/(?:^|; )hello_retail_id=([^;]*)/) || [, "not set"])[1];
</script>
</body></html>
""")


def render_page(user: TrackingUser, framework: str) -> str:
    """The page for *user* (from :func:`hr_middleware.get_tracking_user`)."""
    return PAGE.substitute(
        framework=html.escape(framework),
        tracking_user_id=html.escape(user.id or "none"),
        origin_text=html.escape(ORIGIN_TEXT.get(str(user.origin), NO_ID_TEXT)),
    )
