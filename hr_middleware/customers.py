"""Customers: tell Hello Retail, once, that the visitor is the shop's customer; call it at login.

::

    from hr_middleware.customers import link_customer

    def login_view(request):
        ...                             # the shop's own login
        link_customer(user.id)          # ``await alink_customer(user.id)`` in async code

:func:`link_customer` sends ``POST /serve/collect/customerId`` with the
visitor's id, the website and the customer id, so that what the visitor did
before logging in (and on other devices) counts for the customer. It reaches
Hello Retail once per visitor and customer: a small cookie remembers the link
(a keyed digest, never the customer id itself), so calling it on every page of
a logged-in customer costs no further call. A visitor who declined tracking is
never linked. Nothing raises to the page: Hello Retail down or refusing is
logged, nothing is remembered, and the next login tries again.

:func:`current_customer_id` is the customer named in this request, for
whatever renders Hello Retail's script (its ``setCustomerId``). See
``docs/customers.md``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from . import _serving
from ._boundary import FailOpen
from ._core.customers import LINK_FAILED, LINK_UNEXPECTED, CustomerLinks, LinkOutcome, LinkPlan, customer_key
from ._core.log import logger
from ._hello_retail import endpoints
from ._hello_retail.errors import HelloRetailError
from ._hello_retail.mint import MINT_HEADERS, MINT_MAX_BYTES, BreakerState, CircuitBreaker
from ._hello_retail.transport import Answer, AsyncTransport, SyncTransport
from .client import CUSTOMER_LINK, NOT_TRACKED_MESSAGE, build_body, parse_answer

__all__ = ["LinkOutcome", "alink_customer", "current_customer_id", "link_customer"]

_link_failed = FailOpen(LINK_UNEXPECTED)


class _Call:
    """One due link of the current visit: the request to send, and what to do with its answer."""

    __slots__ = ("visit", "engine", "plan", "url", "body", "timeout", "breaker")

    def __init__(self, visit: _serving.Visit, plan: LinkPlan, customer: str, website_uuid: str) -> None:
        engine = visit.engine
        assert engine is not None
        settings = engine.settings
        self.visit = visit
        self.engine = engine
        self.plan = plan
        self.url = settings.api_url + endpoints.CUSTOMER_LINK
        fields = {"id": customer}
        body = build_body(
            CUSTOMER_LINK,
            fields,
            website_uuid=website_uuid,
            tracking_user_id=visit.tracking_user_id,
        )
        self.body = json.dumps(body).encode()
        self.timeout = settings.timeout
        minter: Any = engine.minter or engine.aminter
        # The mint's breaker, only read: while it is open Hello Retail is known to be down,
        # and a login should not wait out the time budget to learn it again.
        self.breaker: CircuitBreaker | None = getattr(minter, "breaker", None)

    def allowed(self) -> bool:
        if self.breaker is not None and self.breaker.state is BreakerState.OPEN:
            logger.warning(LINK_FAILED, "Hello Retail is unreachable: the mint's circuit is open")
            return False
        return True

    # The answer is small, like a mint's: the same headers (no compression) and size cap.

    def post(self) -> Answer:
        """Send with the blocking transport of the middleware's minter (a sync app's)."""
        transport: SyncTransport = _transport(self.engine.minter)
        return transport.post(self.url, self.body, timeout=self.timeout, headers=MINT_HEADERS, max_bytes=MINT_MAX_BYTES)

    async def apost(self) -> Answer:
        """Send with the async transport of the middleware's minter (an async app's), on the running loop."""
        transport: AsyncTransport = _transport(self.engine.aminter)
        return await transport.post(
            self.url, self.body, timeout=self.timeout, headers=MINT_HEADERS, max_bytes=MINT_MAX_BYTES
        )

    def outcome(self, answer: Answer) -> LinkOutcome:
        """Hello Retail's *answer*: the link remembered on this response, or why not (logged)."""
        with _link_failed:
            return self._outcome(answer)
        return LinkOutcome.FAILED

    def _outcome(self, answer: Answer) -> LinkOutcome:
        try:
            document = parse_answer(answer)
        except HelloRetailError as exc:
            logger.warning(LINK_FAILED, exc)
            return LinkOutcome.FAILED
        if isinstance(document, dict) and document.get("message") == NOT_TRACKED_MESSAGE:
            logger.warning(LINK_FAILED, f"Hello Retail answered {NOT_TRACKED_MESSAGE!r}")
            return LinkOutcome.FAILED
        cookie = self.plan.cookie
        assert cookie is not None
        self.visit.cookies = {**self.visit.cookies, cookie.name: cookie}
        return LinkOutcome.LINKED

    @staticmethod
    def failed(exc: BaseException) -> LinkOutcome:
        """The exchange raised *exc*: logged; a cancellation goes on."""
        if not isinstance(exc, Exception):
            raise exc
        if isinstance(exc, HelloRetailError):
            logger.warning(LINK_FAILED, exc)
        else:  # a bug of ours or a library's: keep the traceback
            logger.warning(LINK_FAILED, f"unexpected {type(exc).__name__}: {exc}", exc_info=exc)
        return LinkOutcome.FAILED


def _plan(customer_id: object) -> tuple[LinkOutcome, _Call | None]:
    """Decide a link for the current visit: a final outcome, or ``(FAILED, call)`` when one is due
    (FAILED until the call says otherwise). Names the customer on the visit unless the visitor opted out."""
    customer = customer_key(customer_id)  # the shop's bug (a None, an object) raises to the shop
    visit = _serving.current()
    if visit is None:
        _serving.unserved("link_customer() was called", "nothing was linked")
        return LinkOutcome.OUTSIDE_REQUEST, None
    if visit.engine is None:  # the middleware could not serve this request (logged): no id
        return LinkOutcome.NO_ID, None
    with _link_failed:
        settings = visit.engine.settings
        links = CustomerLinks(settings)
        # The request's website; a request of no website links on the default one, as the
        # client sends there (docs/websites.md). The digest names the website the link is for.
        website_uuid = visit.website_uuid or settings.website_uuid
        plan = links.decide(
            visit.request, visit.cookies, visit.tracking_user_id, visit.origin, customer, website_uuid=website_uuid
        )
        if plan.outcome is LinkOutcome.OPTED_OUT:
            visit.customer_id = None
        else:
            visit.customer_id = customer
        if plan.outcome is not None:
            if plan.cookie is not None:
                visit.cookies = {**visit.cookies, plan.cookie.name: plan.cookie}
            return plan.outcome, None
        call = _Call(visit, plan, customer, website_uuid)
        return LinkOutcome.FAILED, call if call.allowed() else None
    return LinkOutcome.FAILED, None


def link_customer(customer_id: str | int) -> LinkOutcome:
    """The visitor of this request is the shop's customer *customer_id*: tell Hello Retail, once.

    Call it where the customer logs in (or on any page of a logged-in
    customer: it reaches Hello Retail only once per visitor and customer).
    Blocking, within the middleware's ``timeout``; in async code use
    :func:`alink_customer`. Never raises for anything Hello Retail does;
    returns what happened (:class:`LinkOutcome`).

    Raises:
        TypeError: *customer_id* is neither a string nor an int.
        ValueError: *customer_id* is empty or longer than 256 characters.
        RuntimeError: called on the event loop of an async app (use ``await alink_customer()``).
    """
    outcome, call = _plan(customer_id)
    if call is None:
        return outcome
    if call.engine.minter is not None:
        try:
            answer = call.post()
        except BaseException as exc:  # failed() passes a cancellation on
            return call.failed(exc)
    else:
        # A sync view of an async app (Starlette's threadpool, a Django signal receiver run by
        # sync_to_async). The visit of a returning visitor does not keep its loop (the hot path
        # stays as it is): then a loop of this thread's own.
        _serving.refuse_on_an_event_loop("link_customer")
        try:
            answer = _serving.from_a_worker_thread(call.visit, call.apost, call.timeout, "link_customer")
        except BaseException as exc:  # failed() passes a cancellation on
            return call.failed(exc)
    return call.outcome(answer)


async def alink_customer(customer_id: str | int) -> LinkOutcome:
    """:func:`link_customer` for async code; never blocks the event loop."""
    outcome, call = _plan(customer_id)
    if call is None:
        return outcome
    try:
        if call.engine.aminter is not None:
            answer = await call.apost()
        else:  # a sync app's async view (Flask's, Django's under WSGI): the blocking transport, off the loop
            answer = await asyncio.to_thread(call.post)
    except BaseException as exc:  # failed() passes a cancellation on
        return call.failed(exc)
    return call.outcome(answer)


def _transport(minter: Any) -> Any:
    """The pooled transport of the middleware's minter (a prefetching one wraps it)."""
    return getattr(minter, "minter", minter).transport


def current_customer_id() -> str | None:
    """The customer the shop named in this request with :func:`link_customer`, as a string.

    None outside a request, when the shop named none, and for a visitor who
    declined tracking. For what renders Hello Retail's script on the page
    (its ``setCustomerId``); reading it marks the response ``Vary: Cookie``
    and keeps it out of shared caches, like reading the id.
    """
    visit = _serving.current()
    if visit is None or visit.customer_id is None:
        return None
    visit.read_id()  # the page now depends on the visitor
    return visit.customer_id
