"""The downstream Hello Retail client: recommendations, search, pages and tracking, with the visitor's id filled in.

Usage::

    from hr_middleware.client import HelloRetailClient

    client = HelloRetailClient.from_settings(settings)   # once, at start-up
    ...
    answer = client.recommendations([{"key": "frontpage-1", "format": "json"}])

:class:`HelloRetailClient` (blocking, requests) and
:class:`AsyncHelloRetailClient` (``await``, httpx) have the same methods; they
share one request builder (:func:`build_body`) and one answer parser
(:func:`parse_answer`) and differ only in how a request is sent. Each keeps a
pooled connection set: make one at start-up and share it between requests and
threads; close it with ``close()`` / ``aclose()`` or a ``with`` block.

Every method fills in ``trackingUserId`` from
:func:`hr_middleware.get_tracking_user_id` unless ``tracking_user_id=`` is
given, and ``websiteUuid`` where the endpoint takes it. Keyword arguments are
body fields in Hello Retail's own (camelCase) names and are sent untouched.
Errors raise :class:`~hr_middleware.errors.HelloRetailError` subclasses; see
``docs/client.md``.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine, Mapping, Sequence
from enum import Enum
from typing import Any, Generic, Literal, NamedTuple, TypedDict, TypeVar, Union
from urllib.parse import quote

from .context import get_tracking_user_id
from .errors import APIError, InvalidResponseError
from .identity import OPT_OUT_ID, is_valid_id
from .settings import DEFAULT_API_URL, Settings
from .transport import Answer, AsyncTransport, SyncTransport

__all__ = [
    "CART",
    "CLICK",
    "CONVERSION",
    "DEFAULT_TIMEOUT",
    "FROM_CONTEXT",
    "NOT_TRACKED",
    "PAGES",
    "PAGEVIEW",
    "RECOMMENDATIONS",
    "SEARCH",
    "AsyncHelloRetailClient",
    "CartBody",
    "ConversionBody",
    "Endpoint",
    "HelloRetailClient",
    "PageBody",
    "PageviewBody",
    "ProductsQuery",
    "RecommendationRequest",
    "RecommendationsBody",
    "SearchBody",
    "build_body",
    "parse_answer",
]

#: Total time budget of one call, in seconds, unless given: the mint's default.
DEFAULT_TIMEOUT = 1.0

#: The answer to cart and conversion tracking for the opt-out id (or no id):
#: a normal result, returned like any other.
NOT_TRACKED = "Not tracked for anonymous user"


class _Default(Enum):
    FROM_CONTEXT = "FROM_CONTEXT"

    def __repr__(self) -> str:
        return self.value


#: The default of ``tracking_user_id=``: the current request's id, from
#: :func:`hr_middleware.get_tracking_user_id`.
FROM_CONTEXT = _Default.FROM_CONTEXT

#: What ``tracking_user_id=`` takes: an id, :data:`~hr_middleware.OPT_OUT_ID`,
#: None (send no id) or :data:`FROM_CONTEXT`.
TrackingUserIdArg = Union[str, None, Literal[_Default.FROM_CONTEXT]]


class Endpoint(NamedTuple):
    """One downstream endpoint, as HELLO_RETAIL_API.md describes its body."""

    #: The path below ``api_url`` (for pages, the key is appended).
    path: str
    #: Whether the body takes ``websiteUuid``. Search and pages are named by
    #: their ``key`` and do not list it, so it is not sent there.
    takes_website_uuid: bool
    #: Body fields that name the visitor *instead of* ``trackingUserId``.
    identified_by: tuple[str, ...] = ()


RECOMMENDATIONS = Endpoint("/serve/recoms", True, ("email", "customerId"))
SEARCH = Endpoint("/serve/search", False)
PAGES = Endpoint("/serve/pages/", False)
PAGEVIEW = Endpoint("/serve/collect/pageview", True)
CLICK = Endpoint("/serve/collect/click", True)
CART = Endpoint("/serve/collect/cart", True)
CONVERSION = Endpoint("/serve/collect/conversion", True)


# -- request shapes, for IDEs: the bodies stay plain dicts --------------------------


class RecommendationRequest(TypedDict, total=False):
    """One entry of *requests* of ``recommendations()``: a managed box (``key``)
    or an unmanaged one (``trackingKey``, ``count``, ``sources``)."""

    key: str
    format: str
    fields: list[str]
    context: dict[str, Any]
    trackingKey: str
    count: int
    sources: list[dict[str, Any]]


class RecommendationsBody(TypedDict, total=False):
    """Extra body fields of ``recommendations()``; either one names the visitor instead of the id."""

    email: str
    customerId: str


class ProductsQuery(TypedDict, total=False):
    """``products`` of search and pages: which slice of the result, and how."""

    start: int
    count: int
    fields: list[str]
    filters: list[Any]
    sorting: list[Any]


class SearchBody(TypedDict, total=False):
    """Extra body fields of ``search()``."""

    format: str
    deviceType: str
    products: ProductsQuery


class PageBody(TypedDict, total=False):
    """Extra body fields of ``page()``."""

    firstLoad: bool
    params: dict[str, Any]
    products: ProductsQuery


class PageviewBody(TypedDict, total=False):
    """Extra body fields of ``track_pageview()``."""

    referrer: str
    productNumber: str


class CartBody(TypedDict, total=False):
    """Body of ``track_cart()``: the whole cart, every time."""

    productNumbers: list[str]
    urls: list[str]
    total: float
    url: str


class ConversionBody(TypedDict, total=False):
    """Body of ``track_conversion()``."""

    total: float
    orderNumber: str
    email: str
    customerId: str
    products: list[dict[str, Any]]


# -- the shared request builder and answer parser -----------------------------------


class PreparedRequest(NamedTuple):
    """A request ready for a transport."""

    url: str
    body: bytes


def build_body(
    endpoint: Endpoint, fields: Mapping[str, Any], *, website_uuid: str, tracking_user_id: TrackingUserIdArg
) -> dict[str, Any]:
    """The JSON body for *endpoint*: *fields* as given, plus ``websiteUuid`` and ``trackingUserId``.

    A ``websiteUuid`` in *fields* wins. ``trackingUserId`` is the explicit
    *tracking_user_id* (checked), else the current request's id; with no id
    the field is left out, never sent as null or "". Where the endpoint names
    the visitor by ``email`` or ``customerId`` and *fields* holds one, no
    ``trackingUserId`` is added (they are mutually exclusive).

    Raises:
        ValueError: an explicit id that is neither a valid id nor OPT_OUT_ID,
            or an explicit id together with ``email``/``customerId``.
        TypeError: the id given both as ``tracking_user_id=`` and ``trackingUserId=``.
    """
    body = dict(fields)
    if "trackingUserId" in body:
        if tracking_user_id is not FROM_CONTEXT:
            raise TypeError("give the id once: tracking_user_id= or trackingUserId=, not both")
        tracking_user_id = body.pop("trackingUserId")
    if endpoint.takes_website_uuid:
        body.setdefault("websiteUuid", website_uuid)
    named_by = [name for name in endpoint.identified_by if name in body]
    if tracking_user_id is FROM_CONTEXT:
        if named_by:
            return body
        tracking_user_id = get_tracking_user_id()
    else:
        tracking_user_id = _checked_id(tracking_user_id)
        if named_by and tracking_user_id is not None:
            raise ValueError(f"{endpoint.path}: trackingUserId and {named_by[0]} are mutually exclusive; give one")
    if tracking_user_id is not None:
        body["trackingUserId"] = tracking_user_id
    return body


def _checked_id(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and (value == OPT_OUT_ID or is_valid_id(value)):
        return value
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise ValueError(f"tracking_user_id: {shown} is not a trackingUserId (24 lower-case hex) nor OPT_OUT_ID")


def parse_answer(answer: Answer) -> Any:
    """The decoded JSON of a downstream *answer*, or the error it stands for.

    Raises:
        APIError: a non-2xx status, or a JSON object with ``success: false``
            (with Hello Retail's ``code`` and ``message`` when it sent them).
        InvalidResponseError: a 2xx answer that is not JSON.
    """
    try:
        document = answer.json()
    except InvalidResponseError:
        if 200 <= answer.status < 300:
            raise
        raise APIError(answer.status) from None
    if not 200 <= answer.status < 300 or (isinstance(document, dict) and document.get("success") is False):
        if not isinstance(document, dict):
            raise APIError(answer.status)
        message = document.get("message")
        raise APIError(answer.status, code=document.get("code"), message=message if isinstance(message, str) else None)
    return document


# -- the clients --------------------------------------------------------------------

_R = TypeVar("_R")
_T = TypeVar("_T", SyncTransport, AsyncTransport)
_C = TypeVar("_C", bound="_Client[Any, Any]")


class _Client(Generic[_R, _T]):
    """The methods of both clients, written once; a subclass sends (``_send``) with its transport ``_T``."""

    def __init__(
        self,
        *,
        website_uuid: str,
        api_url: str = DEFAULT_API_URL,
        timeout: float = DEFAULT_TIMEOUT,
        transport: _T | None = None,
    ) -> None:
        checked = Settings(website_uuid=website_uuid, api_url=api_url, timeout=timeout)  # one validation
        #: The shop's website UUID.
        self.website_uuid = checked.website_uuid
        #: Base URL of Hello Retail's API, without a trailing slash.
        self.api_url = checked.api_url
        #: Total time budget of one call, in seconds.
        self.timeout = checked.timeout
        #: What sends the requests; the client closes it.
        self.transport: _T = transport if transport is not None else self._new_transport()
        self.closed = False

    def _new_transport(self) -> _T:
        raise NotImplementedError

    @classmethod
    def from_settings(cls: type[_C], settings: Settings, *, timeout: float | None = None) -> _C:
        """A client for the shop of *settings* (the middleware's), with its API URL and time budget.

        Flask: ``HelloRetailClient.from_settings(HelloRetail.settings(app))``;
        any middleware object: ``from_settings(middleware.settings)``.
        """
        return cls(
            website_uuid=settings.website_uuid,
            api_url=settings.api_url,
            timeout=settings.timeout if timeout is None else timeout,
        )

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<{type(self).__name__} {self.api_url} website_uuid={self.website_uuid}{state}>"

    def _prepare(
        self, endpoint: Endpoint, fields: Mapping[str, Any], tracking_user_id: TrackingUserIdArg, path: str = ""
    ) -> PreparedRequest:
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        body = build_body(endpoint, fields, website_uuid=self.website_uuid, tracking_user_id=tracking_user_id)
        return PreparedRequest(self.api_url + endpoint.path + path, json.dumps(body).encode())

    def _send(self, request: PreparedRequest) -> _R:
        raise NotImplementedError

    def _call(
        self, endpoint: Endpoint, fields: Mapping[str, Any], tracking_user_id: TrackingUserIdArg, path: str = ""
    ) -> _R:
        # The body (and the id from the context) is built now, at call time,
        # even when the async client's coroutine is awaited later.
        return self._send(self._prepare(endpoint, fields, tracking_user_id, path))

    def recommendations(
        self,
        requests: Sequence[RecommendationRequest | Mapping[str, Any]],
        *,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        **body: Any,
    ) -> _R:
        """``POST /serve/recoms``: product recommendations, one response per request, in order.

        Example: ``client.recommendations([{"key": "frontpage-1", "format": "json"}])``
        answers ``{"success": true, "responses": [{"products": [...], ...}]}``.
        Passing ``email=`` or ``customerId=`` names the visitor instead of the id.
        """
        if isinstance(requests, (str, bytes, Mapping)):
            raise TypeError("requests: expected a list of request dicts")
        return self._call(RECOMMENDATIONS, {"requests": [dict(r) for r in requests], **body}, tracking_user_id)

    def search(self, key: str, query: str, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, **body: Any) -> _R:
        """``POST /serve/search`` with the search configuration *key* and the visitor's *query*.

        Example: ``client.search("search-key", "shoes", products={"start": 0, "count": 12})``.
        """
        return self._call(SEARCH, {"key": key, "query": query, **body}, tracking_user_id)

    def page(self, key: str, url: str, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, **body: Any) -> _R:
        """``POST /serve/pages/{key}``: a category or landing page's products for the page at *url*.

        Example: ``client.page("category-page-key", "https://shop.example/shoes", firstLoad=True)``.
        """
        if not isinstance(key, str) or not key:
            raise ValueError("key: expected the page's key, a non-empty string")
        return self._call(PAGES, {"url": url, **body}, tracking_user_id, quote(key, safe=""))

    def track_pageview(self, url: str, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, **body: Any) -> _R:
        """``POST /serve/collect/pageview``: the visitor viewed *url* (a product page: add ``productNumber=``)."""
        return self._call(PAGEVIEW, {"url": url, **body}, tracking_user_id)

    def track_click(self, source: str, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, **body: Any) -> _R:
        """``POST /serve/collect/click``: the visitor clicked a product; *source* is its tracking code."""
        return self._call(CLICK, {"source": source, **body}, tracking_user_id)

    def track_cart(self, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, **body: Any) -> _R:
        """``POST /serve/collect/cart``: the whole cart (``productNumbers=`` or ``urls=``, ``total=``, ``url=``).

        For the opt-out id Hello Retail answers the string ``"Not tracked for anonymous user"``.
        """
        return self._call(CART, body, tracking_user_id)

    def track_conversion(self, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, **body: Any) -> _R:
        """``POST /serve/collect/conversion``: an order (``total=``, ``orderNumber=``, ``products=``, ...).

        For the opt-out id Hello Retail answers the string ``"Not tracked for anonymous user"``.
        """
        return self._call(CONVERSION, body, tracking_user_id)


class HelloRetailClient(_Client[Any, SyncTransport]):
    """The blocking client, over a pooled requests ``Session``; safe to share between threads.

    Args:
        website_uuid: the shop's Hello Retail website UUID.
        api_url: base URL of Hello Retail's API (the fake server's in tests).
        timeout: total time budget of one call, in seconds.
        transport: the transport to send with (default: a new one); the client closes it.
    """

    def _new_transport(self) -> SyncTransport:
        return SyncTransport()

    def _send(self, request: PreparedRequest) -> Any:
        return parse_answer(self.transport.post(request.url, request.body, timeout=self.timeout))

    def close(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        self.closed = True
        self.transport.close()

    def __enter__(self) -> HelloRetailClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHelloRetailClient(_Client[Coroutine[Any, Any, Any], AsyncTransport]):
    """The non-blocking client, over a pooled httpx ``AsyncClient``: ``await client.search(...)``.

    Takes the arguments of :class:`HelloRetailClient`, with an
    :class:`~hr_middleware.transport.AsyncTransport`. The body (and the id
    from the request context) is built when a method is called, so an invalid
    id raises there, before anything is awaited.
    """

    def _new_transport(self) -> AsyncTransport:
        return AsyncTransport()

    async def _send(self, request: PreparedRequest) -> Any:
        return parse_answer(await self.transport.post(request.url, request.body, timeout=self.timeout))

    async def aclose(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        self.closed = True
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncHelloRetailClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
