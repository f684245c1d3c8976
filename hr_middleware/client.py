"""The downstream Hello Retail client: recommendations, search, pages and tracking, with the visitor's id filled in.

Usage::

    from hr_middleware.client import HelloRetailClient

    client = HelloRetailClient.from_settings(settings)   # once, at start-up
    ...
    answer = client.recommendations([{"key": "frontpage-1", "format": "json", "context": {}}])

:class:`HelloRetailClient` (blocking, requests) and
:class:`AsyncHelloRetailClient` (``await``, httpx) have the same methods; they
share one request builder (:func:`build_body`) and one answer parser
(:func:`parse_answer`) and differ only in how a request is sent. Each keeps a
pooled connection set: make one at start-up and share it between requests and
threads; close it with ``close()`` / ``aclose()`` or a ``with`` block.

Every method fills in ``trackingUserId`` from
:func:`hr_middleware.get_tracking_user_id` unless ``tracking_user_id=`` is
given, and ``websiteUuid`` where the endpoint takes it. With no id (a bot,
outside a request, a failed mint) it sends :data:`~hr_middleware.OPT_OUT_ID`,
never nothing, unless another identity (``customerId``; ``email`` on
recommendations) names the visitor. Keyword arguments are body fields in Hello
Retail's own (camelCase) names and are sent untouched. With ``api_key=``, the
shop's API key goes along as ``?apiKey=`` on the calls whose identity is
``customerId`` (or ``email`` on recommendations), and nowhere else; it never
appears in a repr, an exception or a log line. ``api_log_tag=`` labels a call
in Hello Retail's API log (``?apiLogTag=``). Answers are Hello Retail's
decoded JSON, untouched; :func:`tracked`, :func:`paging`, :func:`next_page`,
:func:`facets` and :func:`with_filter` read them. Errors raise
:class:`~hr_middleware.HelloRetailError` subclasses; see ``docs/client.md``.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import math
import sys
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Literal, NamedTuple, TypedDict, TypeVar, Union
from urllib.parse import quote, urlencode

from ._core.ids import OPT_OUT_ID, is_valid_id
from ._core.settings import DEFAULT_API_URL, Settings
from ._hello_retail import endpoints
from ._hello_retail.errors import APIError, HelloRetailError, InvalidResponseError, TransportError
from ._hello_retail.transport import Answer, AsyncTransport, SyncTransport
from ._serving import current as current_visit
from ._serving import get_tracking_user_id

__all__ = [
    "AsyncHelloRetailClient",
    "Facet",
    "FacetValue",
    "HelloRetailClient",
    "Paging",
    "ProductsQuery",
    "RecommendationRequest",
    "facets",
    "next_page",
    "paging",
    "tracked",
    "with_filter",
]

#: Total time budget of one call, in seconds, unless given: the mint's default.
DEFAULT_TIMEOUT = 1.0

#: The ``message`` of a tracking answer that Hello Retail accepted but did not
#: track: ``{"success": true, "message": "Not tracked for anonymous user"}``
#: (cart and conversion of the opt-out id, including one with only an ``email``,
#: and any collect call that names the visitor by ``customerId`` without the API key). Test
#: answers with :func:`tracked`.
NOT_TRACKED_MESSAGE = "Not tracked for anonymous user"


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
    """One downstream endpoint of Hello Retail's API and how its body names the visitor."""

    #: The path below ``api_url`` (for pages, the key is appended).
    path: str
    #: Whether the body takes ``websiteUuid``. Search and pages are named by
    #: their ``key`` and do not list it, so it is not sent there.
    takes_website_uuid: bool
    #: Body fields that name the visitor *instead of* ``trackingUserId`` (never both).
    identified_by: tuple[str, ...] = ()
    #: Body fields that name the visitor besides ``trackingUserId``; each needs the
    #: shop's API key as ``?apiKey=``. With one of them and no id, no opt-out id is added.
    needs_api_key: tuple[str, ...] = ()


_BY_CUSTOMER = ("email", "customerId")
# On cart and conversion ``email`` is data for abandoned-cart mails, not an identity:
# Hello Retail's own examples send it with ``trackingUserId`` and no key.
_BY_CUSTOMER_ID = ("customerId",)
RECOMMENDATIONS = Endpoint(endpoints.RECOMMENDATIONS, True, _BY_CUSTOMER, _BY_CUSTOMER)
SEARCH = Endpoint(endpoints.SEARCH, False)
PAGES = Endpoint(endpoints.PAGES_PREFIX, False)
PAGEVIEW = Endpoint(endpoints.PAGEVIEW, True, (), _BY_CUSTOMER_ID)
CLICK = Endpoint(endpoints.CLICK, True, (), _BY_CUSTOMER_ID)
CART = Endpoint(endpoints.CART, True, (), _BY_CUSTOMER_ID)
CONVERSION = Endpoint(endpoints.CONVERSION, True, (), _BY_CUSTOMER_ID)
CUSTOMER_BIAS = Endpoint(endpoints.CUSTOMER_BIAS, True)
#: Names the visitor by ``trackingUserId`` only (``id`` is the customer, not an identity): no API key.
CUSTOMER_LINK = Endpoint(endpoints.CUSTOMER_LINK, True)


# -- request shapes, for IDEs: the bodies stay plain dicts --------------------------


class RecommendationRequest(TypedDict, total=False):
    """One entry of *requests* of ``recommendations()``: a managed box (``key``)
    or an unmanaged one (``trackingKey``, ``count``, ``sources``)."""

    key: str
    format: str
    fields: list[str]
    deviceType: str
    context: dict[str, Any]
    trackingKey: str
    count: int
    sources: list[dict[str, Any]]
    #: Unmanaged requests: one product per group of variants (Hello Retail's default: true).
    hideAdditionalVariants: bool


class RecommendationsBody(TypedDict, total=False):
    """Extra body fields of ``recommendations()``; ``email`` or ``customerId`` names the visitor instead of the id."""

    email: str
    customerId: str
    #: Include retail-media campaigns still in review.
    includeRetailMediaInReview: bool


class ProductsQuery(TypedDict, total=False):
    """``products`` of search and pages: which slice of the result, and how."""

    start: int
    count: int
    fields: list[str]
    filters: list[str]
    sorting: list[str]
    returnFilters: bool
    #: Search: facets whose other values are counted as if they were not selected.
    excludeSiblingFilters: list[str]
    #: Search: the configured initial content (for an empty query).
    returnInitialContent: bool


class SearchBody(TypedDict, total=False):
    """Extra body fields of ``search()``."""

    format: str
    deviceType: str
    products: ProductsQuery
    #: A draft configuration's version id, instead of the live one.
    id: int
    #: Include retail-media campaigns still in review.
    includeRetailMediaInReview: bool


class PageBody(TypedDict, total=False):
    """Extra body fields of ``page()``."""

    format: str
    firstLoad: bool
    params: dict[str, Any]
    products: ProductsQuery
    deviceType: str
    #: A draft configuration's version id, instead of the live one.
    id: int
    #: Include retail-media campaigns still in review.
    includeRetailMediaInReview: bool
    #: The page layout to render (``format: "html"``); Hello Retail publishes no values.
    layout: str


class PageviewBody(TypedDict, total=False):
    """Extra body fields of ``track_pageview()`` (besides its keyword arguments)."""

    customerId: str


class CartBody(TypedDict, total=False):
    """Body of ``track_cart()``: the whole cart, every time."""

    productNumbers: list[str]
    urls: list[str]
    total: float
    url: str
    #: The shopper's address, for abandoned-cart mails: data, not an identity (no key needed).
    email: str
    #: Names the visitor (with the API key).
    customerId: str


class ConversionBody(TypedDict, total=False):
    """Body of ``track_conversion()``."""

    total: float
    orderNumber: str
    #: The shopper's address: data, not an identity (no key needed).
    email: str
    #: Names the visitor (with the API key).
    customerId: str
    products: list[dict[str, Any]]


class CustomerLinkBody(TypedDict, total=False):
    """Body of ``link_customer()`` (besides ``trackingUserId`` and ``websiteUuid``)."""

    #: The shop's own id of the customer (a string; ``link_customer()`` sends an int as one).
    id: str


# -- the shared request builder and answer parser -----------------------------------


class PreparedRequest:
    """A request ready for a transport; *secret* is the API key in *url*, if any.

    A plain object, not a tuple: error reporters (Sentry's local variables)
    show a tuple element by element, and an object by its repr, which hides
    the key.
    """

    __slots__ = ("url", "body", "secret")

    def __init__(self, url: str, body: bytes, secret: str | None = None) -> None:
        self.url = url
        self.body = body
        self.secret = secret

    def __repr__(self) -> str:
        url = self.url if self.secret is None else _redact(self.url, _forms(self.secret))
        return f"PreparedRequest(url={url!r}, body=<{len(self.body)} bytes>)"


def build_body(
    endpoint: Endpoint, fields: Mapping[str, Any], *, website_uuid: str, tracking_user_id: TrackingUserIdArg
) -> dict[str, Any]:
    """The JSON body for *endpoint*: *fields* as given, plus ``websiteUuid`` and ``trackingUserId``.

    A ``websiteUuid`` in *fields* wins. ``trackingUserId`` is the explicit
    *tracking_user_id* (checked), else the current request's id. With no id
    (None: a bot, outside a request, a failed mint, or ``tracking_user_id=None``)
    it is :data:`~hr_middleware.OPT_OUT_ID`, never left out, null or "" (Hello
    Retail's rule), unless *fields* names the visitor by another identity of the
    endpoint (``customerId``; ``email`` on recommendations): then it is left out.
    Where the endpoint names the visitor by ``email`` or ``customerId`` instead
    of the id (recommendations) and *fields* holds one, no ``trackingUserId`` is
    added (they are mutually exclusive).

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
    if tracking_user_id is None:
        if _identities(endpoint, body):
            return body  # the customer names the visitor; an opt-out id would make them anonymous
        tracking_user_id = OPT_OUT_ID
    body["trackingUserId"] = tracking_user_id
    return body


def _identities(endpoint: Endpoint, body: Mapping[str, Any]) -> list[str]:
    """The fields of *body* that name the visitor besides ``trackingUserId`` (and need the API key)."""
    return [name for name in endpoint.needs_api_key if body.get(name)]


def _checked_tag(value: object) -> str | None:
    """*value* as an ``apiLogTag``: None (no tag) or a non-empty string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"api_log_tag: expected a string, got {type(value).__name__}")
    if not value:
        raise ValueError("api_log_tag: expected a non-empty string")
    return value


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
        code, message = document.get("code"), document.get("message")
        raise APIError(
            answer.status,
            code=code if isinstance(code, str) else None,
            message=message if isinstance(message, str) else None,
        )
    return document


# -- reading answers ----------------------------------------------------------------


def tracked(answer: object) -> bool:
    """Whether a tracking *answer* says the event was stored.

    Hello Retail accepts some events without tracking them: cart and
    conversion of an anonymous or opted-out visitor (an ``email`` does not
    name them), and calls naming the visitor by ``customerId`` without the API key. It answers those
    HTTP 200 ``{"success": true, "message": "Not tracked for anonymous user"}``
    (:data:`NOT_TRACKED_MESSAGE`). This is False for such an answer (and for
    anything that is not a successful answer), True for ``{"success": true,
    "message": "Cart tracked"}`` and the like.
    """
    return (
        isinstance(answer, Mapping) and answer.get("success") is True and answer.get("message") != NOT_TRACKED_MESSAGE
    )


@dataclass(frozen=True)
class Paging:
    """Where a page of results sits in the whole: from :func:`paging`."""

    #: Offset of the first result of this page.
    start: int
    #: The page size that was asked for.
    count: int
    #: How many results match in all.
    total: int

    @property
    def page(self) -> int:
        """This page's number, from 1."""
        return self.start // self.count + 1 if self.count else 1

    @property
    def pages(self) -> int:
        """How many pages of ``count`` results there are (at least 1)."""
        return max(1, math.ceil(self.total / self.count)) if self.count else 1

    @property
    def has_next(self) -> bool:
        """Whether results follow this page."""
        return self.count > 0 and self.start + self.count < self.total


def _section(answer: object, content: str) -> Mapping[str, Any]:
    section = answer.get(content) if isinstance(answer, Mapping) else None
    if not isinstance(section, Mapping):
        raise InvalidResponseError(f"answer has no {content!r} results")
    return section


def _int(section: Mapping[str, Any], *names: str) -> int:
    for name in names:
        value = section.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    raise InvalidResponseError(f"answer has no {' or '.join(names)}")


def paging(answer: object, content: str = "products") -> Paging:
    """The :class:`Paging` of *content* in a search or page *answer*.

    Search answers give ``start``, ``requestedCount`` and ``totalCount``;
    page answers give ``start``, ``count`` and ``total``. Both work.

    Raises:
        InvalidResponseError: the answer has no such content or no counts.
    """
    section = _section(answer, content)
    return Paging(
        _int(section, "start"), _int(section, "requestedCount", "count"), _int(section, "totalCount", "total")
    )


def next_page(
    query: ProductsQuery | Mapping[str, Any], answer: object, content: str = "products"
) -> ProductsQuery | None:
    """The *query* (a ``products={...}`` of the request) for the page after *answer*, or None on the last page.

    Example: ``while query: answer = client.search(key, q, products=query); ...; query = next_page(query, answer)``.
    Given to :meth:`~HelloRetailClient.page`, it is not the page's first load (``firstLoad: false``).
    """
    where = paging(answer, content)
    if not where.has_next:
        return None
    following = _Refinement({**query, "start": where.start + where.count, "count": where.count})
    return following  # type: ignore[return-value]


class _Refinement(dict[str, Any]):
    """A ``products`` query made by :func:`next_page` or :func:`with_filter`: a plain dict
    on the wire, which tells :meth:`~HelloRetailClient.page` that this is not the page's
    first load even when it is back on page 1 without filters (a filter toggled off)."""

    __slots__ = ()


def _is_first_load(products: object) -> bool:
    """Whether a page request with *products* is the page's first load: not paged, filtered
    or sorted by the visitor, and not made by :func:`next_page` / :func:`with_filter`."""
    if isinstance(products, _Refinement):
        return False
    if not isinstance(products, Mapping):
        return True
    start = products.get("start")
    paged = isinstance(start, int) and not isinstance(start, bool) and start > 0
    return not (paged or products.get("filters") or products.get("sorting"))


@dataclass(frozen=True)
class FacetValue:
    """One choice of a facet: show ``title`` (``count`` results); filter with ``query``."""

    title: str
    count: int
    #: The filter string to put in the next request's ``products["filters"]``, verbatim.
    query: str
    #: Whether the request filtered by it.
    selected: bool


@dataclass(frozen=True)
class Facet:
    """A facet of a search or page answer (``returnFilters``), from :func:`facets`."""

    #: The field, e.g. ``"brand"``.
    name: str
    #: ``"LIST"``, ``"RANGE"`` or ``"BOOLEAN"``.
    type: str
    #: The shop's label for it.
    title: str
    #: The choices of a LIST or BOOLEAN facet.
    values: tuple[FacetValue, ...]
    #: The bounds of a RANGE facet: numeric strings, as Hello Retail sends them.
    min: str | None = None
    max: str | None = None
    #: The bounds the visitor chose on a RANGE facet (``selectedMin``/``selectedMax``), as strings.
    selected_min: str | None = None
    selected_max: str | None = None
    #: Page facets' settings ``filteringText`` and ``negatedFilteringText`` (often ""), when sent.
    filtering_text: str | None = None
    negated_filtering_text: str | None = None


def facets(answer: object, content: str = "products") -> list[Facet]:
    """The facets of a search answer (asked for with ``returnFilters: True``) or of a first-load page answer.

    Entries that are not in Hello Retail's ``{name, settings{type, title},
    values[{title, count, query, selected}]}`` shape are skipped.
    """
    section = _section(answer, content)
    found = []
    for entry in section.get("filters") or ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        settings = entry.get("settings")
        if not isinstance(settings, Mapping):
            settings = {}
        values = tuple(
            FacetValue(str(v.get("title", "")), _count(v.get("count")), v["query"], v.get("selected") is True)
            for v in entry.get("values") or ()
            if isinstance(v, Mapping) and isinstance(v.get("query"), str)
        )
        bounds = [_number(entry.get(name)) for name in ("min", "max", "selectedMin", "selectedMax")]
        texts = [settings.get(name) for name in ("filteringText", "negatedFilteringText")]
        found.append(
            Facet(
                entry["name"],
                str(settings.get("type", "LIST")),
                str(settings.get("title") or entry["name"]),
                values,
                *bounds,
                *(text if isinstance(text, str) else None for text in texts),
            )
        )
    return found


def _number(value: object) -> str | None:
    """A RANGE bound as the numeric string Hello Retail sends, or None."""
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def with_filter(query: ProductsQuery | Mapping[str, Any], facet_query: str) -> ProductsQuery:
    """A copy of *query* (a ``products={...}``) filtered by *facet_query* too, back on the first page.

    *facet_query* is a :class:`FacetValue`'s ``query`` (``"brand:Acme"``) or a
    range you built from a RANGE facet's bounds (``"price:10,50"``). Given a
    filter it already has, it removes it instead: a facet value toggles.
    Given to :meth:`~HelloRetailClient.page`, it is not the page's first load
    (``firstLoad: false``), even with the last filter toggled off.
    """
    filters = [f for f in query.get("filters") or () if isinstance(f, str)]
    filters = [f for f in filters if f != facet_query] if facet_query in filters else [*filters, facet_query]
    changed = _Refinement({**query, "filters": filters, "start": 0})
    return changed  # type: ignore[return-value]


# -- keeping the API key out of logs and errors -------------------------------------

_REDACTED = "***"
# The API keys of every client made in this process, in the forms they take in a URL.
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
#: The loggers that write request URLs: urllib3 (DEBUG) and httpx (INFO).
_URL_LOGGERS = ("urllib3.connectionpool", "httpx")


def _forms(secret: str) -> tuple[str, ...]:
    return tuple({secret, quote(secret, safe=""), urlencode({"k": secret})[2:]})


def _redact(text: str, secrets: Sequence[str] | set[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return text


class _RedactSecrets(logging.Filter):
    """Replaces the API keys in a record's message: HTTP libraries log the URLs they fetch."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secrets
        if secrets:
            message = record.getMessage()
            redacted = _redact(message, secrets)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


_redactor = _RedactSecrets()


def _keep_secret(secret: str) -> None:
    with _secrets_lock:
        _secrets.update(_forms(secret))
        for name in _URL_LOGGERS:
            logger = logging.getLogger(name)
            if _redactor not in logger.filters:
                logger.addFilter(_redactor)
    _redact_sentry_events()


#: The error reporters told to redact the keys: "sentry" once :func:`_redact_sentry_event` is
#: one of Sentry's global event processors.
_hooked: set[str] = set()


def _redact_sentry_events() -> None:
    """Have Sentry, if it is loaded, take the API keys out of every event's breadcrumbs and spans.

    Sentry's stdlib and httpx integrations (on by default) record each HTTP
    request's query in a breadcrumb (``http.query``) and a span, unsanitised,
    and the key must travel there (``?apiKey=``). Called when a client gets a
    key and before each call that sends one: Sentry may be imported later.
    """
    if "sentry" in _hooked or "sentry_sdk" not in sys.modules:
        return
    with _secrets_lock:
        if "sentry" in _hooked:
            return
        try:
            add_processor = importlib.import_module("sentry_sdk.scope").add_global_event_processor
        except (ImportError, AttributeError):  # pragma: no cover - a Sentry without global event processors
            return
        add_processor(_redact_sentry_event)
        _hooked.add("sentry")


def _redact_sentry_event(event: dict[str, Any], hint: object) -> dict[str, Any]:
    """A Sentry event processor: the event, its breadcrumbs and spans holding no API key.

    The breadcrumbs are rebuilt, not changed in place: their data may be the
    application's own objects. Frame variables are not walked: they are the
    live objects of the frames, and none of ours holds the key in a form that
    Sentry shows (see :class:`PreparedRequest`).
    """
    with _secrets_lock:  # a client made on another thread may be adding its key
        secrets = tuple(_secrets)
    if secrets:
        crumbs = event.get("breadcrumbs")
        if isinstance(crumbs, dict) and isinstance(crumbs.get("values"), list):
            crumbs["values"] = [_redacted(crumb, secrets, 8) for crumb in crumbs["values"]]
        if isinstance(event.get("spans"), list):
            event["spans"] = [_redacted(span, secrets, 8) for span in event["spans"]]
    return event


def _redacted(value: Any, secrets: Sequence[str], depth: int) -> Any:
    """*value* with the *secrets* taken out of its strings, in plain dicts and lists *depth* levels deep."""
    if isinstance(value, str):
        return _redact(value, secrets)
    if depth and isinstance(value, dict):
        return {key: _redacted(item, secrets, depth - 1) for key, item in value.items()}
    if depth and isinstance(value, list):
        return [_redacted(item, secrets, depth - 1) for item in value]
    return value


def _scrubbed(exc: Exception, secret: str) -> HelloRetailError:
    """*exc* with the API key taken out of its text and attributes, and without its cause chain
    (the HTTP library's exception there holds the URL)."""
    secrets = _forms(secret)
    if not isinstance(exc, HelloRetailError):
        return TransportError(_redact(f"{type(exc).__name__}: {exc}", secrets))
    clean = copy.copy(exc)  # a copy has no __cause__, __context__ or __traceback__
    clean.args = tuple(_redact(a, secrets) if isinstance(a, str) else a for a in exc.args)
    for name, value in vars(clean).items():
        if isinstance(value, str):
            setattr(clean, name, _redact(value, secrets))
    return clean


def _without_the_key(exc: BaseException, secret: str) -> BaseException:
    """What a keyed call raises in place of *exc*: an error scrubbed of the key, or
    (a cancellation, KeyboardInterrupt: it must go on as it is) *exc* cut from its frames."""
    return _scrubbed(exc, secret) if isinstance(exc, Exception) else _cut(exc)


def _cut(exc: BaseException) -> BaseException:
    """*exc* (not an :class:`Exception`: it must go on as it is) without the frames it
    passed through below the client, whose variables hold the URL with the key."""
    exc.__cause__ = exc.__context__ = None
    return exc.with_traceback(None)


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
        api_key: str | None = None,
        transport: _T | None = None,
        api_log_tag: str | None = None,
    ) -> None:
        # One validation, the middleware's.
        checked = Settings(website_uuid=website_uuid, api_url=api_url, timeout=timeout, api_key=api_key)
        #: The ``apiLogTag`` of every call that names none (None: no tag).
        self.api_log_tag = _checked_tag(api_log_tag)
        #: The shop's website UUID.
        self.website_uuid = checked.website_uuid
        #: Base URL of Hello Retail's API, without a trailing slash.
        self.api_url = checked.api_url
        #: Total time budget of one call, in seconds.
        self.timeout = checked.timeout
        self._api_key = checked.api_key
        if self._api_key is not None:
            _keep_secret(self._api_key)
        #: What sends the requests; the client closes it.
        self.transport: _T = transport if transport is not None else self._new_transport()
        self.closed = False

    def _new_transport(self) -> _T:
        raise NotImplementedError

    @classmethod
    def from_settings(
        cls: type[_C], settings: Settings, *, timeout: float | None = None, api_log_tag: str | None = None
    ) -> _C:
        """A client for the shop of *settings* (the middleware's), with its API URL and time budget.

        Flask: ``HelloRetailClient.from_settings(HelloRetail.settings(app))``;
        any middleware object: ``from_settings(middleware.settings)``. The
        settings' ``api_key`` (Flask ``HELLO_RETAIL_API_KEY``, Django
        ``"API_KEY"``) comes along; *api_log_tag* labels every call in Hello
        Retail's API log.
        """
        return cls(
            website_uuid=settings.website_uuid,
            api_url=settings.api_url,
            timeout=settings.timeout if timeout is None else timeout,
            api_key=settings.api_key,
            api_log_tag=api_log_tag,
        )

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<{type(self).__name__} {self.api_url} website_uuid={self.website_uuid}{state}>"

    def _prepare(
        self,
        endpoint: Endpoint,
        fields: Mapping[str, Any],
        tracking_user_id: TrackingUserIdArg,
        path: str = "",
        api_log_tag: str | None = None,
    ) -> PreparedRequest:
        if self.closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        tag = self.api_log_tag if api_log_tag is None else _checked_tag(api_log_tag)
        # Inside a request, the request's website (docs/websites.md); else the client's own.
        # (The visit read directly: in a request our middleware never saw, the warning that says
        # so comes once, from the id's reading, not twice.)
        visit = current_visit()
        website_uuid = (None if visit is None else visit.website_uuid) or self.website_uuid
        body = build_body(endpoint, fields, website_uuid=website_uuid, tracking_user_id=tracking_user_id)
        url = self.api_url + endpoint.path + path
        query = {} if tag is None else {"apiLogTag": tag}
        secret = None
        if self._api_key is not None and _identities(endpoint, body):
            _redact_sentry_events()
            query["apiKey"] = secret = self._api_key
        if query:
            url += "?" + urlencode(query)
        return PreparedRequest(url, json.dumps(body).encode(), secret)

    def _send(self, request: PreparedRequest) -> _R:
        raise NotImplementedError

    def _call(
        self,
        endpoint: Endpoint,
        fields: Mapping[str, Any],
        tracking_user_id: TrackingUserIdArg,
        path: str = "",
        api_log_tag: str | None = None,
    ) -> _R:
        # The body (and the id from the context) is built now, at call time,
        # even when the async client's coroutine is awaited later.
        return self._send(self._prepare(endpoint, fields, tracking_user_id, path, api_log_tag))

    def recommendations(
        self,
        requests: Sequence[RecommendationRequest | Mapping[str, Any]],
        *,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        api_log_tag: str | None = None,
        **body: Any,
    ) -> _R:
        """``POST /serve/recoms``: product recommendations, one response per request, in order.

        Example: ``client.recommendations([{"key": "frontpage-1", "format": "json", "context": {}}])``
        answers ``{"success": true, "responses": [{"key": ..., "success": true, "products": [...]}]}``.
        One bad request (an unknown key) fails the whole batch with an
        :class:`~hr_middleware.APIError`. Passing ``email=`` or
        ``customerId=`` names the visitor instead of the id; Hello Retail then
        wants the client's ``api_key``.
        """
        if isinstance(requests, (str, bytes, Mapping)):
            raise TypeError("requests: expected a list of request dicts")
        fields = {"requests": [dict(r) for r in requests], **body}
        return self._call(RECOMMENDATIONS, fields, tracking_user_id, api_log_tag=api_log_tag)

    def search(
        self,
        key: str,
        query: str,
        *,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        api_log_tag: str | None = None,
        **body: Any,
    ) -> _R:
        """``POST /serve/search`` with the search configuration *key* and the visitor's *query*.

        Example: ``client.search("search-key", "shoes", products={"start": 0, "count": 12})``
        answers ``{"success": true, "query": "shoes", "products": {"start", "requestedCount",
        "returnedCount", "totalCount", "results": [...]}}``: see :func:`paging`,
        :func:`next_page`, :func:`facets` and :func:`with_filter`.
        """
        return self._call(SEARCH, {"key": key, "query": query, **body}, tracking_user_id, api_log_tag=api_log_tag)

    def page(
        self,
        key: str,
        url: str,
        *,
        first_load: bool | None = None,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        api_log_tag: str | None = None,
        **body: Any,
    ) -> _R:
        """``POST /serve/pages/{key}``: a category or landing page's products for the page at *url*.

        Asks for JSON (``format: "json"``) unless ``format=`` says otherwise:
        Hello Retail's own default is rendered HTML.

        ``firstLoad`` (Hello Retail tracks a view of the page, and returns
        facets, only when it is true) is *first_load* when given (or a
        ``firstLoad=`` body field); else true, unless the visitor pages,
        filters or sorts: ``products`` with a ``start`` over 0, ``filters`` or
        ``sorting``, or made by :func:`next_page` / :func:`with_filter`.

        Example: ``client.page("category-page-key", "https://shop.example/shoes")``
        answers ``{"success": true, "firstLoad": true, "errors": [], "products": {"start", "count",
        "total", "result": [...], "filters": [...], "sorting": [...], "html": null, ...}}``.
        """
        if not isinstance(key, str) or not key:
            raise ValueError("key: expected the page's key, a non-empty string")
        fields: dict[str, Any] = {"url": url, "format": "json", **body}
        if first_load is not None:
            if "firstLoad" in fields:
                raise TypeError("give firstLoad once: first_load= or firstLoad=, not both")
            fields["firstLoad"] = first_load
        elif "firstLoad" not in fields:
            fields["firstLoad"] = _is_first_load(fields.get("products"))
        return self._call(PAGES, fields, tracking_user_id, quote(key, safe=""), api_log_tag)

    def track_pageview(
        self,
        location: str,
        *,
        url: str | None = None,
        referrer: str | None = None,
        product_number: str | None = None,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        api_log_tag: str | None = None,
        **body: Any,
    ) -> _R:
        """``POST /serve/collect/pageview``: the visitor viewed the page at *location* (its full URL).

        *url* is the product's canonical URL, sent only when it differs from
        *location*; *product_number* names the product (preferred over URLs);
        *referrer* is where the visitor came from.
        """
        fields: dict[str, Any] = {"location": location}
        if url is not None and url != location:
            fields["url"] = url
        if referrer is not None:
            fields["referrer"] = referrer
        if product_number is not None:
            fields["productNumber"] = product_number
        return self._call(PAGEVIEW, {**fields, **body}, tracking_user_id, api_log_tag=api_log_tag)

    def track_click(
        self,
        source: str,
        *,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        api_log_tag: str | None = None,
        **body: Any,
    ) -> _R:
        """``POST /serve/collect/click``: the visitor clicked a product; *source* is its tracking code."""
        return self._call(CLICK, {"source": source, **body}, tracking_user_id, api_log_tag=api_log_tag)

    def track_cart(
        self, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, api_log_tag: str | None = None, **body: Any
    ) -> _R:
        """``POST /serve/collect/cart``: the whole cart (``productNumbers=`` or ``urls=``, ``total=``, ``url=``).

        ``email=`` is data for abandoned-cart mails, not an identity: it goes
        with the id, without the API key. For the opt-out id (or no id) Hello
        Retail answers ``{"success": true, "message": "Not tracked for
        anonymous user"}``: :func:`tracked` tells.
        """
        return self._call(CART, body, tracking_user_id, api_log_tag=api_log_tag)

    def track_conversion(
        self, *, tracking_user_id: TrackingUserIdArg = FROM_CONTEXT, api_log_tag: str | None = None, **body: Any
    ) -> _R:
        """``POST /serve/collect/conversion``: an order (``total=``, ``orderNumber=``, ``products=``, ...).

        ``email=`` is data, not an identity, as on :meth:`track_cart`. For the
        opt-out id (or no id) Hello Retail answers ``{"success": true,
        "message": "Not tracked for anonymous user"}``: :func:`tracked` tells.
        """
        return self._call(CONVERSION, body, tracking_user_id, api_log_tag=api_log_tag)

    def customer_bias(
        self,
        fields: Sequence[str],
        *,
        number_of_values: int | None = None,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        api_log_tag: str | None = None,
        **body: Any,
    ) -> _R:
        """``POST /serve/customer/bias``: which values of the product *fields* (``["brand"]``) the visitor favours.

        *number_of_values* (``numberOfValues``) caps the values per field; not
        sent when None. Hello Retail publishes no answer shape; the fake
        answers ``{"success": true, "bias": {"brand": [{"value": "Acme",
        "score": 0.61}, ...]}}`` (a choice, see ``docs/client.md``).
        """
        if isinstance(fields, (str, bytes)) or not isinstance(fields, Sequence):
            raise TypeError("fields: expected a list of product field names")
        payload: dict[str, Any] = {"fields": list(fields), **body}
        if number_of_values is not None:
            payload["numberOfValues"] = number_of_values
        return self._call(CUSTOMER_BIAS, payload, tracking_user_id, api_log_tag=api_log_tag)

    def link_customer(
        self,
        customer_id: str | int,
        *,
        tracking_user_id: TrackingUserIdArg = FROM_CONTEXT,
        api_log_tag: str | None = None,
        **body: Any,
    ) -> _R:
        """``POST /serve/collect/customerId``: the visitor's id belongs to the shop's customer *customer_id*.

        Hello Retail then counts what the id did before (and on other devices
        linked to the same customer) for that customer. Sends ``{"trackingUserId",
        "websiteUuid", "id": str(customer_id)}``, without the API key: the
        visitor is named by the id (chosen: Hello Retail's material documents no
        key for this call, and its script links from the page, where no key can
        be). Call it once per visitor and customer, at login: the middleware's
        :func:`hr_middleware.customers.link_customer` does, and remembers it.
        """
        if isinstance(customer_id, bool) or not isinstance(customer_id, (str, int)):
            raise TypeError(f"customer_id: expected a string or an int, got {type(customer_id).__name__}")
        if customer_id == "":
            raise ValueError("customer_id: expected the shop's id of the customer, got an empty string")
        return self._call(CUSTOMER_LINK, {"id": str(customer_id), **body}, tracking_user_id, api_log_tag=api_log_tag)


class HelloRetailClient(_Client[Any, SyncTransport]):
    """The blocking client, over a pooled requests ``Session``; safe to share between threads.

    Args:
        website_uuid: the shop's Hello Retail website UUID.
        api_url: base URL of Hello Retail's API (the fake server's in tests).
        timeout: total time budget of one call, in seconds.
        api_key: the shop's API key, sent as ``?apiKey=`` only where
            ``customerId`` (or ``email``, on recommendations) names the visitor; never shown.
        transport: the transport to send with (default: a new one); the client closes it.
        api_log_tag: the ``?apiLogTag=`` of every call that gives none (labels it in
            Hello Retail's API log); None: no tag.
    """

    def _new_transport(self) -> SyncTransport:
        return SyncTransport()

    def _send(self, request: PreparedRequest) -> Any:
        if request.secret is None:
            return parse_answer(self.transport.post(request.url, request.body, timeout=self.timeout))
        failure: BaseException
        try:
            return parse_answer(self.transport.post(request.url, request.body, timeout=self.timeout))
        except BaseException as exc:  # every exception carries the URL in its frames or cause
            failure = _without_the_key(exc, request.secret)
        raise failure  # outside the except block: no chain back to the URL

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
    :class:`~hr_middleware._hello_retail.transport.AsyncTransport`. The body (and the id
    from the request context) is built when a method is called, so an invalid
    id raises there, before anything is awaited.
    """

    def _new_transport(self) -> AsyncTransport:
        return AsyncTransport(api_url=self.api_url)

    async def _send(self, request: PreparedRequest) -> Any:
        if request.secret is None:
            return parse_answer(await self.transport.post(request.url, request.body, timeout=self.timeout))
        failure: BaseException
        try:
            return parse_answer(await self.transport.post(request.url, request.body, timeout=self.timeout))
        except BaseException as exc:  # a cancellation too: its frames hold the URL
            failure = _without_the_key(exc, request.secret)
        raise failure  # outside the except block: no chain back to the URL

    async def aclose(self) -> None:
        """Close the pooled connections; the client cannot be used afterwards."""
        self.closed = True
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncHelloRetailClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
