"""Hello Retail's endpoints, named once: the paths below ``api_url`` that the mint, the client and the fake use."""

from __future__ import annotations

__all__ = [
    "CART",
    "CLICK",
    "COLLECT",
    "CONVERSION",
    "CUSTOMER_BIAS",
    "CUSTOMER_LINK",
    "MINT",
    "PAGES_PREFIX",
    "PAGEVIEW",
    "RECOMMENDATIONS",
    "SEARCH",
]

#: ``POST`` a ``websiteUuid``, get a new ``trackingUserId``.
MINT = "/serve/trackingUser"
#: Recommendations (a batch of boxes).
RECOMMENDATIONS = "/serve/recoms"
#: Search.
SEARCH = "/serve/search"
#: Category and landing pages: the page's key follows.
PAGES_PREFIX = "/serve/pages/"
#: Server-side tracking.
PAGEVIEW = "/serve/collect/pageview"
CLICK = "/serve/collect/click"
CART = "/serve/collect/cart"
CONVERSION = "/serve/collect/conversion"
#: A visitor's leaning: the values of product fields they favour.
CUSTOMER_BIAS = "/serve/customer/bias"
#: Linking the visitor's id to the shop's customer id (``{trackingUserId, websiteUuid, id}``).
#: Not in :data:`COLLECT`: it tracks no event.
CUSTOMER_LINK = "/serve/collect/customerId"
#: The tracking endpoints.
COLLECT = frozenset((PAGEVIEW, CLICK, CART, CONVERSION))
