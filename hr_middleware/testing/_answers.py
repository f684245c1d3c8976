"""What the fake answers: its endpoints, its modes, and canned answers in Hello Retail's shapes."""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from hr_middleware._core.ids import OPT_OUT_ID, is_valid_id
from hr_middleware._hello_retail import endpoints
from hr_middleware.client import NOT_TRACKED_MESSAGE

from ._images import image_name

if TYPE_CHECKING:
    from ._server import FakeHelloRetail

__all__ = [
    "COLLECT_PATHS",
    "MINT_PATH",
    "PAGES_PREFIX",
    "RECOMS_PATH",
    "SEARCH_PATH",
    "UNEXPECTED_ERROR",
    "UNEXPECTED_MESSAGE",
    "Mode",
    "api_answer",
    "api_problem",
    "error_answer",
    "fake_products",
    "mint_answer",
    "mint_problem",
]

MINT_PATH = endpoints.MINT
RECOMS_PATH = endpoints.RECOMMENDATIONS
SEARCH_PATH = endpoints.SEARCH
PAGES_PREFIX = endpoints.PAGES_PREFIX
COLLECT_PATHS = endpoints.COLLECT


class Mode(str, Enum):
    """How the fake server answers: ``mode`` for mints, ``api_mode`` for the other endpoints.

    ``NO_ID``, ``INVALID_ID`` and ``ID_ONLY`` concern mints only; the other
    endpoints answer normally in them.
    """

    #: 200 with a fresh valid id (other endpoints: their canned answer).
    OK = "ok"
    #: Accept the request and never answer (until the server stops or the mode changes).
    HANG = "hang"
    #: 500 with Hello Retail's JSON error body.
    SERVER_ERROR = "server_error"
    #: 400 with Hello Retail's JSON error body.
    BAD_REQUEST = "bad_request"
    #: 502 with an HTML body, as a proxy in front of Hello Retail answers.
    GATEWAY_ERROR = "gateway_error"
    #: 200 with an HTML body.
    NOT_JSON = "not_json"
    #: 200 JSON without an id.
    NO_ID = "no_id"
    #: 200 JSON whose id is not 24 lower-case hex.
    INVALID_ID = "invalid_id"
    #: 200 JSON ``{"id": ...}`` without ``success``: the shape Hello Retail's public documentation shows.
    ID_ONLY = "id_only"
    #: 200 JSON with ``success: false`` (other endpoints: with a ``code`` and ``message``).
    SUCCESS_FALSE = "success_false"
    #: Read the request, then close the connection without a word.
    DROP = "drop"
    #: Read the request, then reset the connection (TCP RST).
    RESET = "reset"
    #: 200 whose (good) body arrives one byte per ``drip_interval`` seconds.
    DRIP = "drip"
    #: 200 whose status line and headers arrive one byte per ``drip_interval`` seconds.
    DRIP_HEADERS = "drip_headers"
    #: 200 with a 16 MiB body.
    HUGE = "huge"


# -- what the endpoints answer -------------------------------------------------------
#
# The shapes below are Hello Retail's (see tests/contract/*.json, which the fake is
# tested against); where the published facts are silent, the contract says so.

#: ``code`` of Hello Retail's error answers: strings, never numbers.
INVALID_REQUEST = "INVALID REQUEST"
NOT_FOUND = "NOT FOUND"
UNEXPECTED_ERROR = "UNEXPECTED ERROR"
ACCESS_DENIED = "ACCESS DENIED"

UNEXPECTED_MESSAGE = "Unexpected error, please contact Hello Retail support"
ACCESS_DENIED_MESSAGE = (
    "Authentication with access to the website is required when using email or customerId as identifier"
)
TWO_IDENTITIES_MESSAGE = "Only one of email, customerId, or trackingUserId can be provided"
INVALID_ID_MESSAGE = "Invalid trackingUserId: must be 24-character hex string"
#: Pageview and click name an unknown website so (Hello Retail's REST notes, observed live).
UNKNOWN_WEBSITE_MESSAGE = "website with websiteUuid not found"
#: Cart and conversion name a missing or unknown website so.
WEBSITE_NOT_FOUND_MESSAGE = "Website not found"
#: A click without trackingUserId or customerId (Hello Retail enforces one; its wording is not
#: published, so this one is chosen in its style, like "websiteUuid is required").
CLICK_IDENTITY_MESSAGE = "trackingUserId or customerId is required"

#: The good answer's ``message`` of each collect endpoint.
TRACKED_MESSAGES = {
    endpoints.PAGEVIEW: "Page view tracked",
    endpoints.CLICK: "Click tracked",
    endpoints.CART: "Cart tracked",
    endpoints.CONVERSION: "Conversion tracked",
}
SOURCE_TYPES = frozenset(
    {"TOP", "MOST_BOUGHT", "MOST_VIEWED", "ALTERNATIVES", "BOUGHT_TOGETHER", "RETARGETED", "RECENTLY_BOUGHT", "RELATED"}
)
#: Search's content types besides products, and how many of each match any query.
SEARCH_CONTENT = {"categories": 12, "brands": 6, "blogPosts": 4, "sitePages": 3, "redirects": 0}
#: How many products match a query, a page or a recommendation box without filters: the
#: catalogue is finite, so however many products are asked for, at most this many come back.
CATALOGUE_SIZE = 100
#: A search for this query matches nothing (the fake's default ``zero_result_queries``).
ZERO_RESULT_QUERY = "no-such-product"
#: Where :func:`fake_products` places the products' pages unless told.
SHOP_URL = "https://shop.example"
BRANDS = ("Acme", "Globex", "Initech", "Umbrella")


def error_answer(code: str, message: str) -> dict[str, Any]:
    """Hello Retail's error answer: ``success: false``, a string *code* and a *message*."""
    return {"success": False, "code": code, "message": message}


def mint_problem(document: Any) -> tuple[int, Any] | None:
    """Hello Retail's answer to a mint request it rejects, or None."""
    if not isinstance(document, dict) or not isinstance(document.get("websiteUuid"), str):
        return 500, error_answer(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
    return None


def mint_answer(fake: FakeHelloRetail, mode: Mode, document: Any = None) -> tuple[int, Any]:
    """The answer to a mint in *mode* (a fresh id, or one of the shapes a broken service answers).

    An id is minted whatever website *document* names, known to the fake or not: Hello
    Retail mints on a bare ``GET`` that names no website at all, so an id belongs to
    no website. The fake records which one each was for (:meth:`FakeHelloRetail.minted_for`).
    """
    website = document.get("websiteUuid") if isinstance(document, dict) else None
    if mode is Mode.NO_ID:
        return 200, {"success": True}
    if mode is Mode.INVALID_ID:
        return 200, {"success": True, "id": "<script>alert(1)</script>"}
    if mode is Mode.SUCCESS_FALSE:
        return 200, {"success": False, "id": fake.new_id(website)}
    if mode is Mode.ID_ONLY:
        return 200, {"id": fake.new_id(website)}
    return 200, {"id": fake.new_id(website), "success": True}


def _is_id_or_opt_out(value: object) -> bool:
    return value == OPT_OUT_ID or is_valid_id(value)


def _named_by(document: dict[str, Any]) -> list[str]:
    """The body fields that name the visitor."""
    return [name for name in ("trackingUserId", "email", "customerId") if name in document]


def _authenticated(fake: FakeHelloRetail, query: dict[str, str]) -> bool:
    key = query.get("apiKey")
    return bool(key) and (fake.api_key is None or key == fake.api_key)


def _empty_id_absent(document: Any) -> Any:
    """*document* without an empty ``trackingUserId``: recommendations, pages and search take
    ``""`` as no id at all (Hello Retail's example collection sends it on every such example)."""
    if isinstance(document, dict) and document.get("trackingUserId") == "":
        return {name: value for name, value in document.items() if name != "trackingUserId"}
    return document


def api_problem(fake: FakeHelloRetail, path: str, query: dict[str, str], document: Any) -> tuple[int, Any] | None:
    """Hello Retail's answer to a request it rejects, or None."""
    if path in COLLECT_PATHS:
        return _collect_problem(fake, path, document)
    document = _empty_id_absent(document)
    if path == RECOMS_PATH:
        return _recoms_problem(fake, query, document)
    if path.startswith(PAGES_PREFIX):
        key = unquote(path[len(PAGES_PREFIX) :])
        known = fake.known_page_keys
        if not isinstance(document, dict) or not isinstance(document.get("url"), str) or not key:
            return 500, error_answer(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
        if (known is not None and key not in known) or not _valid_optional_id(document):
            return 500, error_answer(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
        return None
    # search
    if not isinstance(document, dict) or not isinstance(document.get("key"), str) or not _valid_optional_id(document):
        return 500, error_answer(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
    return None


def _valid_optional_id(document: dict[str, Any]) -> bool:
    return "trackingUserId" not in document or _is_id_or_opt_out(document["trackingUserId"])


def _collect_problem(fake: FakeHelloRetail, path: str, document: Any) -> tuple[int, Any] | None:
    if not isinstance(document, dict):
        return 400, {"success": False, "message": "Invalid request body"}
    if not _valid_optional_id(document):
        # Hello Retail's conversion endpoint words it without the last word.
        message = INVALID_ID_MESSAGE.removesuffix(" string") if path == endpoints.CONVERSION else INVALID_ID_MESSAGE
        return 400, {"success": False, "message": message}
    website = document.get("websiteUuid")
    basket = path in (endpoints.CART, endpoints.CONVERSION)
    if not isinstance(website, str) or not website:
        return 400, {"success": False, "message": WEBSITE_NOT_FOUND_MESSAGE if basket else "websiteUuid is required"}
    if not fake.knows_website(website):
        return 400, {"success": False, "message": WEBSITE_NOT_FOUND_MESSAGE if basket else UNKNOWN_WEBSITE_MESSAGE}
    if path == endpoints.CLICK and "trackingUserId" not in document and not _names(document, "customerId"):
        return 400, {"success": False, "message": CLICK_IDENTITY_MESSAGE}
    return None


def _names(document: dict[str, Any], field: str) -> bool:
    """Whether *document*'s *field* (``customerId``, ``email``) names someone: a non-empty string."""
    value = document.get(field)
    return isinstance(value, str) and bool(value)


def _recoms_problem(fake: FakeHelloRetail, query: dict[str, str], document: Any) -> tuple[int, Any] | None:
    if not isinstance(document, dict):
        return 500, error_answer(INVALID_REQUEST, "Request body must be a JSON object")
    named_by = _named_by(document)
    if len(named_by) > 1:
        return 500, error_answer(INVALID_REQUEST, TWO_IDENTITIES_MESSAGE)
    if not _valid_optional_id(document):
        return 500, error_answer(INVALID_REQUEST, INVALID_ID_MESSAGE)
    if named_by and named_by[0] != "trackingUserId" and not _authenticated(fake, query):
        return 500, error_answer(ACCESS_DENIED, ACCESS_DENIED_MESSAGE)
    requests = document.get("requests")
    if not isinstance(requests, list) or not requests or not all(isinstance(r, dict) for r in requests):
        return 500, error_answer(INVALID_REQUEST, "requests must be a non-empty list of recom requests")
    known = fake.known_recommendation_keys
    for request in requests:
        key = request.get("key")
        if isinstance(key, str):
            if known is not None and key not in known:
                return 500, error_answer(NOT_FOUND, f"Recom with key {key} not found")
            continue
        if not isinstance(request.get("trackingKey"), str) or not request["trackingKey"]:
            return 500, error_answer(INVALID_REQUEST, "key or trackingKey is required")
        if not isinstance(document.get("websiteUuid"), str):
            return 500, error_answer(INVALID_REQUEST, "websiteUuid is required when loading any unmanaged recoms")
        sources = request.get("sources")
        if not isinstance(sources, list) or not all(
            isinstance(s, dict) and s.get("type") in SOURCE_TYPES for s in sources
        ):
            return 500, error_answer(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE + ". ")
    return None


def api_answer(fake: FakeHelloRetail, mode: Mode, path: str, query: dict[str, str], document: Any) -> tuple[int, Any]:
    """The good answer of a downstream endpoint."""
    if mode is Mode.SUCCESS_FALSE:
        return 200, error_answer(INVALID_REQUEST, "Request could not be served")
    if path in COLLECT_PATHS:
        return 200, {"success": True, "message": _collect_message(fake, path, query, document)}
    document = _empty_id_absent(document)
    catalogue = _Catalogue(_visitor(document), fake.images_url, fake.shop_url or fake.url)
    if path == RECOMS_PATH:
        responses = [_recom_response(catalogue, r) for r in document["requests"]]
        return 200, {"success": True, "responses": responses}
    if path == SEARCH_PATH:
        return 200, _search_answer(catalogue, document, fake.zero_result_queries)
    return 200, _page_answer(catalogue, unquote(path[len(PAGES_PREFIX) :]), document)


def _collect_message(fake: FakeHelloRetail, path: str, query: dict[str, str], document: dict[str, Any]) -> str:
    if path in (endpoints.CART, endpoints.CONVERSION):
        # There the visitor is a trackingUserId or, with the API key, a customerId; an email is
        # abandoned-cart data, not an identity (Hello Retail's examples send it next to a
        # trackingUserId, without a key), so an email alone is an anonymous visitor.
        if is_valid_id(document.get("trackingUserId")):
            return TRACKED_MESSAGES[path]
        if _names(document, "customerId") and _authenticated(fake, query):
            return TRACKED_MESSAGES[path]
        return NOT_TRACKED_MESSAGE
    by_customer = [name for name in _named_by(document) if name != "trackingUserId"]
    if by_customer and "trackingUserId" not in document and not _authenticated(fake, query):
        return NOT_TRACKED_MESSAGE  # email/customerId without the API key: an anonymous visitor
    return TRACKED_MESSAGES[path]


def _visitor(document: dict[str, Any]) -> str:
    """Who the products are for: "" for an anonymous or opted-out visitor."""
    tracking_user_id = document.get("trackingUserId")
    if is_valid_id(tracking_user_id):
        return str(tracking_user_id)
    for name in ("customerId", "email"):
        if isinstance(document.get(name), str) and document[name]:
            return f"{name}:{document[name]}"
    return ""


def _fields(request: dict[str, Any]) -> list[str] | None:
    fields = request.get("fields")
    if isinstance(fields, list) and all(isinstance(f, str) for f in fields) and fields:
        return list(fields)
    return None


class _Catalogue:
    """The products of one answer: for whom, and where their images and pages are."""

    def __init__(self, visitor: str, images: str, shop: str) -> None:
        self.visitor, self.images, self.shop = visitor, images, shop

    def products(
        self, scope: str, start: int, count: int, *, fields: list[str] | None, tracking: str, query: str = "*"
    ) -> list[dict[str, Any]]:
        return fake_products(
            self.visitor,
            scope,
            start,
            count,
            fields=fields,
            images=self.images,
            shop=self.shop,
            tracking=tracking,
            query=query,
        )


def _recom_response(catalogue: _Catalogue, request: dict[str, Any]) -> dict[str, Any]:
    count = min(_count(request.get("count"), default=4), CATALOGUE_SIZE)
    context = request.get("context")
    managed = isinstance(request.get("key"), str)
    name = request["key"] if managed else request["trackingKey"]
    scope = f"recoms:{name}:{json.dumps(context, sort_keys=True)}"
    # Recommendation boxes' codes start "pb-", unmanaged recommendations' "ur-".
    tracking = f"{'pb' if managed else 'ur'}-{name}"
    products = catalogue.products(scope, 0, count, fields=_fields(request), tracking=tracking)
    if managed:
        return {"key": name, "success": True, "products": products}
    sources = [s.get("type") for s in request.get("sources", [])]
    steps = ", ".join(f"{i}. {source} (1ms): {count}" for i, source in enumerate(sources))
    return {"trackingKey": name, "success": True, "products": products, "countAfterSource": steps}


def _slice(query: dict[str, Any], total: int) -> tuple[int, int, int]:
    """start, requested count and returned count of a query over *total* matches.

    Whatever is asked is echoed (Hello Retail documents no maximum); what comes back is
    bounded by the matches, so a large count costs no more than the whole catalogue.
    """
    start = _count(query.get("start"), default=0)
    requested = _count(query.get("count"), default=10)
    return start, requested, max(0, min(requested, total - start))


def _filters(query: dict[str, Any]) -> list[str]:
    filters = query.get("filters")
    return [f for f in filters if isinstance(f, str)] if isinstance(filters, list) else []


def _matches(filters: list[str]) -> int:
    """How many products match *filters*: each filter halves the catalogue."""
    return max(1, CATALOGUE_SIZE >> len(filters))


#: The price range of the canned catalogue (a RANGE facet's ``min``/``max``).
PRICE_RANGE = ("5.0", "205.0")


def _selected_range(filters: list[str], name: str) -> tuple[str, str] | None:
    """The bounds of a range filter ``name:low,high`` in *filters*, if one is selected."""
    for item in filters:
        field, _, bounds = item.partition(":")
        low, comma, high = bounds.partition(",")
        if field == name and comma:
            return low, high
    return None


def _facets(filters: list[str], total: int, *, pages: bool = False) -> list[dict[str, Any]]:
    """Facets in Hello Retail's shape: a LIST (brand), a RANGE (price) and a BOOLEAN (isOnSale).

    A RANGE with a selected range carries ``selectedMin``/``selectedMax``; the pages
    endpoint's facet settings also carry ``filteringText`` and ``negatedFilteringText``
    (empty strings, as observed live).
    """
    share, rest = divmod(total, len(BRANDS))
    brand_values = [
        {
            "title": brand,
            "count": share + (1 if i < rest else 0),
            "query": f"brand:{brand}",
            "selected": f"brand:{brand}" in filters,
        }
        for i, brand in enumerate(BRANDS)
    ]
    price: dict[str, Any] = {
        "name": "price",
        "settings": {"name": "price", "type": "RANGE", "title": "Price"},
        "min": PRICE_RANGE[0],
        "max": PRICE_RANGE[1],
    }
    selected = _selected_range(filters, "price")
    if selected is not None:
        price.update(selectedMin=selected[0], selectedMax=selected[1])
    facets: list[dict[str, Any]] = [
        {"name": "brand", "settings": {"name": "brand", "type": "LIST", "title": "Brand"}, "values": brand_values},
        price,
        {
            "name": "isOnSale",
            "settings": {"name": "isOnSale", "type": "BOOLEAN", "title": "On sale"},
            "values": [
                {"title": "true", "count": total // 3, "query": "isOnSale:true", "selected": "isOnSale:true" in filters}
            ],
        },
    ]
    if pages:
        for facet in facets:
            facet["settings"].update(filteringText="", negatedFilteringText="")
    return facets


def _sorting(query: dict[str, Any]) -> list[dict[str, Any]]:
    sorting = query.get("sorting")
    chosen: list[Any] = sorting if isinstance(sorting, list) else []
    options = []
    for name, title in (("price", "Price"), ("title", "Name")):
        options.append(
            {
                "name": name,
                "settings": {"name": name, "title": title, "ascendingText": "asc", "descendingText": "desc"},
                "ascending": {"query": f"{name} asc", "selected": f"{name} asc" in chosen},
                "descending": {"query": f"{name} desc", "selected": f"{name} desc" in chosen},
            }
        )
    return options


#: The title of the zero-result content the fake's search configuration shows.
ZERO_RESULT_TITLE = "Popular right now"
#: How many products the zero-result content holds.
ZERO_RESULT_COUNT = 4


def _search_answer(catalogue: _Catalogue, document: dict[str, Any], unmatched: set[str]) -> dict[str, Any]:
    text = document.get("query", "")
    answer: dict[str, Any] = {"success": True, "query": text}
    scope = f"search:{document['key']}:{text}"
    nothing = isinstance(text, str) and text.strip().lower() in {q.strip().lower() for q in unmatched}
    # Search codes read "ps-<search key>|<product>|<query>|pos:<n>|per:<personalised>|".
    tracking, query = f"ps-{document['key']}", str(text).replace("|", " ") or "*"
    products = document.get("products")
    if isinstance(products, dict):
        filters = _filters(products)
        total = 0 if nothing else _matches(filters)
        start, requested, returned = _slice(products, total)
        results = catalogue.products(
            f"{scope}:{filters}", start, returned, fields=_fields(products), tracking=tracking, query=query
        )
        section: dict[str, Any] = {
            "start": start,
            "requestedCount": requested,
            "returnedCount": returned,
            "totalCount": total,
            "results": [{**p, **_SEARCH_METADATA} for p in results],
            "sorting": _sorting(products),
            "suggestedProductStatus": "NO_SUGGESTED",
        }
        if products.get("returnFilters") is True:
            section["filters"] = _facets(filters, total)
        if nothing:
            section["zeroResultContent"] = [_zero_result_content(catalogue, document["key"])]
        answer["products"] = section
    for content, total in SEARCH_CONTENT.items():
        request = document.get(content)
        if not isinstance(request, dict):
            continue
        start, requested, returned = _slice(request, 0 if nothing else total)
        answer[content] = {
            "start": start,
            "requestedCount": requested,
            "returnedCount": returned,
            "totalCount": 0 if nothing else total,
            "results": [_content_item(content, scope, i, catalogue.shop) for i in range(start, start + returned)],
        }
    return answer


def _zero_result_content(catalogue: _Catalogue, key: str) -> dict[str, Any]:
    """What the search configuration shows when nothing matched: whole products, not only the
    requested fields, with Hello Retail's full product's extra fields."""
    products = catalogue.products(f"zero:{key}", 0, ZERO_RESULT_COUNT, fields=None, tracking=f"ps-{key}")
    whole = [{**p, "description": f"{p['title']}, from {p['brand']}.", **_FULL_PRODUCT} for p in products]
    return {"title": ZERO_RESULT_TITLE, "count": len(whole), "products": whole}


_SEARCH_METADATA: dict[str, Any] = {
    "extraData": {},
    "extraDataList": {},
    "extraDataNumber": {},
    "suggestedResult": False,
}
_FULL_PRODUCT: dict[str, Any] = {"onSale": False, "extraData": {}, "extraDataList": {}, "extraDataNumber": {}}


def _content_item(content: str, scope: str, position: int, shop: str) -> dict[str, Any]:
    digest = hashlib.sha256(f"{scope}|{content}|{position}".encode()).hexdigest()
    slug = f"{content.lower()}-{digest[:6]}"
    if content == "redirects":
        return {"url": f"{shop}/{slug}", "originalUrl": f"{shop}/{slug}", "trackingCode": digest[16:40]}
    return {
        "title": f"{content[:1].upper()}{content[1:]} {digest[:4]}",
        "url": f"{shop}/{slug}",
        "trackingCode": digest[16:40],
    }


def _page_answer(catalogue: _Catalogue, key: str, document: dict[str, Any]) -> dict[str, Any]:
    first_load = document.get("firstLoad") is True
    products = document.get("products")
    if not isinstance(products, dict):
        products = {}
    filters = _filters(products)
    params = document.get("params")
    total = _matches(filters)
    start, requested, returned = _slice(products, total)
    scope = f"page:{key}:{document['url']}:{json.dumps(params, sort_keys=True)}:{filters}"
    result = catalogue.products(scope, start, returned, fields=_fields(products), tracking=f"pa-{key}")
    section: dict[str, Any] = {
        "start": start,
        "count": requested,
        "total": total,
        "result": result,
        "filters": _facets(filters, total, pages=True) if first_load else [],
        "sorting": _sorting(products),
        "html": None,
        "style": None,
        "javascript": None,
    }
    if document.get("format", "html") == "html":
        items = "".join(f'<li class="hr-product">{p.get("title", "")}</li>' for p in result)
        section.update(html=f'<ul class="hr-page">{items}</ul>', style=".hr-page{list-style:none}", javascript="")
    return {"success": True, "firstLoad": first_load, "errors": [], "products": section}


def _count(value: object, *, default: int) -> int:
    """A non-negative whole number asked for (a start or a count), else *default*."""
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(0, value)


_ADJECTIVES = ("Classic", "Organic", "Vintage", "Compact", "Deluxe", "Rugged", "Silky", "Bright", "Cosy", "Swift")
_NOUNS = ("Teapot", "Backpack", "Lamp", "Sneakers", "Scarf", "Notebook", "Kettle", "Jacket", "Mug", "Headphones")
#: What may stay as it is in a tracking code put in a URL's fragment (the rest is %-escaped).
_FRAGMENT_SAFE = "|*:-.,_~!$'()+;=/?@"


def tracked_url(original_url: str, tracking_code: str) -> str:
    """A product's ``url`` as Hello Retail sends it: its plain ``originalUrl`` followed by
    ``#aw_source=<trackingCode>``, the fragment Hello Retail's script tracks a click by."""
    return f"{original_url}#aw_source={quote(tracking_code, safe=_FRAGMENT_SAFE)}"


def fake_products(
    visitor: str,
    scope: str,
    start: int,
    count: int,
    *,
    fields: list[str] | None = None,
    images: str = "https://shop.example/images",
    shop: str = SHOP_URL,
    tracking: str = "pb-fake",
    query: str = "*",
) -> list[dict[str, Any]]:
    """Products *start* to *start + count* for *visitor* ("" = anonymous) in *scope*, derived from a hash.

    With *fields*, each product holds only those of its fields (as Hello
    Retail returns only the requested ones); without, all of them. Their
    ``imgUrl`` is under *images* (the fake answers with its own
    :attr:`~hr_middleware.testing.FakeHelloRetail.images_url`, where it serves them),
    their ``originalUrl`` under *shop* (``<shop>/products/<productNumber>``), and their
    ``url`` is the ``originalUrl`` with ``#aw_source=<trackingCode>``. A ``trackingCode``
    reads ``<tracking>|<product>|<query>|pos:<position>|per:<personalised>|``, the shape
    of Hello Retail's own (*tracking* starts ``ps-`` for search, ``pb-`` for a
    recommendation box, ``ur-`` for unmanaged recommendations, ``pa-`` for pages).
    """
    products = []
    personalised = "true" if visitor else "false"
    for position in range(start, start + count):
        digest = hashlib.sha256(f"{visitor}|{scope}|{position}".encode()).hexdigest()
        number = str(10_000 + int(digest[:8], 16) % 90_000)
        title = f"{_ADJECTIVES[int(digest[8:10], 16) % 10]} {_NOUNS[int(digest[10:12], 16) % 10]}"
        original_url = f"{shop}/products/{number}"
        code = f"{tracking}|{digest[16:40]}|{query}|pos:{position}|per:{personalised}|"
        product = {
            "title": title,
            "productNumber": number,
            "url": tracked_url(original_url, code),
            "originalUrl": original_url,
            "imgUrl": f"{images}/{image_name(number, title)}",
            "price": round(5 + int(digest[12:16], 16) % 20_000 / 100, 2),
            "brand": BRANDS[int(digest[40:42], 16) % len(BRANDS)],
            "trackingCode": code,
        }
        products.append(product if fields is None else {name: product[name] for name in fields if name in product})
    return products
