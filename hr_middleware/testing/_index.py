"""What the fake answers to ``GET /`` and what it logs of each call when it runs on its own.

``python -m hr_middleware.testing`` prints its URL; someone who opens that URL in
a browser or curls it learns what they reached and what it answers, and the
terminal shows each mint and call as a dev server would (``log_requests``).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from hr_middleware._hello_retail import endpoints

from ._images import IMAGE_PREFIX
from ._script import SCRIPT_PATH

if TYPE_CHECKING:
    from ._server import FakeHelloRetail

__all__ = ["index_page", "log_call", "logger"]

#: Each call the fake answers, at INFO, when its ``log_requests`` is set (the command line sets it).
logger = logging.getLogger("hr_middleware.testing")


def index_page(fake: FakeHelloRetail) -> bytes:
    """The fake's front page, as plain text: what it is, how to point the middleware at it, its endpoints."""
    from ._handler import PRODUCT_PREFIX  # here: _handler imports this module

    collect = ", ".join(sorted(path.rsplit("/", 1)[1] for path in endpoints.COLLECT))
    return f"""hr-middleware's fake Hello Retail (hr_middleware.testing.FakeHelloRetail) at {fake.url}

Not Hello Retail: a stand-in for tests and demos, on this machine, that talks to nothing.
Point the middleware at it:
    api_url="{fake.url}", website_uuid="{fake.website_uuid}"
    script_url="{fake.script_url}" (for hello_retail_script())

It answers, in Hello Retail's shapes (POST, JSON):
    {endpoints.MINT:<28} mints a new trackingUserId (mode: {fake.mode.name})
    {endpoints.RECOMMENDATIONS:<28} recommendations (canned products)
    {endpoints.SEARCH:<28} search
    {endpoints.PAGES_PREFIX + "<key>":<28} category and landing pages
    {"/serve/collect/<event>":<28} tracking: {collect}
    {endpoints.CUSTOMER_LINK:<28} links the visitor's id to a customer
    {endpoints.CUSTOMER_BIAS:<28} customer bias (a shape of the fake's choosing)
and GET {IMAGE_PREFIX}<name>.svg, the canned products' pictures,
GET {PRODUCT_PREFIX}<productNumber>, a stand-in page for a product's originalUrl (without shop_url=),
GET {SCRIPT_PATH}, a stand-in for Hello Retail's script (it reports what pages tell it).

So far: {fake.mint_count} id(s) minted, {len(fake.api_requests())} other call(s).
""".encode()


def log_call(
    fake: FakeHelloRetail, method: str, target: str, outcome: str, *, request: bytes = b"", answer: bytes = b""
) -> None:
    """Log one call (*outcome*: the status, or the fault played) when *fake* logs its requests.

    A mint's new id (from the *answer*) and the visitor a call names (from the
    *request*) are shown; nothing else of either body.
    """
    if not fake.log_requests:
        return
    detail = ""
    if target.partition("?")[0] == endpoints.MINT:
        minted = _json(answer).get("id")
        detail = f" minted {minted}" if isinstance(minted, str) else ""
    elif "trackingUserId" in (asked := _json(request)):
        detail = f" trackingUserId={asked['trackingUserId']!r}"
    logger.info("%s %s %s%s", method, target[:200], outcome, detail)


def _json(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body) if body else None
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
