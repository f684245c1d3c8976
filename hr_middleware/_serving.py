"""The request lifecycle, once: decide, expose, run the app, patch the response, leave.

Between the pure core and the adapters. An adapter turns its framework's
request into the core's facts and hands it to its :class:`Engine`, whose
:meth:`~Engine.serve` decides the visit (the core's
:meth:`~hr_middleware._core.decide.TrackingPolicy.decide`) and mints when one
is due (the one I/O: :meth:`~Engine.serve` when the minter is sync,
:meth:`~Engine.amint` when it is async). The adapter exposes the id its own
way, runs the app with the visit current (:func:`in_visit`, :func:`ain_visit`;
a streamed body chunk by chunk with :class:`ChunksInVisit` or
:class:`AsyncChunksInVisit`), and patches its response type with the core's
header functions (:mod:`hr_middleware._core.headers`).

Failing open happens here, at one boundary: :data:`fail_open` logs whatever
failed on our side (``INTERNAL_ERROR``, with the traceback) and the request
is served without an id (``NoIdReason.INTERNAL_ERROR``). The core raises
nothing it does not mean and logs nothing: the notes of a decision (a shop's
hook that raised, a bad signature) are logged here.

The app reaches the current visit through :func:`get_tracking_user_id` and
:func:`get_tracking_user`; ``hr_middleware.consent``'s ``grant()`` and
``revoke()`` act on it through :func:`grant`, :func:`agrant` and
:func:`revoke` here, which mint with the engine that decided the visit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Generic, NamedTuple, TypeVar

from ._boundary import fail_open
from ._core.cookies import CookieWrite
from ._core.decide import TrackingPolicy
from ._core.facts import RequestFacts
from ._core.headers import fail_safe_headers
from ._core.ids import OPT_OUT_ID
from ._core.log import logger
from ._core.settings import Settings
from ._core.visit import NO_COOKIES, Decision, NoIdReason, Note, Origin
from ._forgotten import unserved_request
from ._hello_retail.errors import RequestTimeoutError
from ._hello_retail.mint import MINT_FAILED, AsyncMinter, Minter
from ._hello_retail.prefetch import AsyncPrefetchingMinter, PrefetchingMinter

__all__ = [
    "VISIT_KEY",
    "AsyncChunksInVisit",
    "ChunksInVisit",
    "Engine",
    "TrackingUser",
    "Visit",
    "agrant",
    "ain_visit",
    "app_in_visit",
    "current",
    "enter",
    "fail_open",
    "get_tracking_user",
    "get_tracking_user_id",
    "get_website_uuid",
    "grant",
    "in_visit",
    "leave",
    "patched",
    "revoke",
    "unserved",
]

#: A visit's website before anyone asked for it.
_UNKNOWN: Any = object()

N = TypeVar("N")
V = TypeVar("V", bound="Visit")
T = TypeVar("T")
R = TypeVar("R")
H = TypeVar("H", str, bytes)

#: The mark an adapter leaves in the WSGI environ or ASGI scope of a request
#: it serves, so that a second instance (nested, or Django's inside ours)
#: takes the current visit instead of deciding again: one visit, one mint.
VISIT_KEY = "hello_retail.decided"

_COOKIE = Origin.COOKIE


def patched(
    visit: Visit, headers: list[tuple[H, H]], patch: Callable[[Visit, list[tuple[H, H]]], list[tuple[H, H]]]
) -> list[tuple[H, H]]:
    """*headers* with *visit*'s cookies and caching headers (*patch*: :func:`patch_headers`
    or :func:`patch_raw_headers`); headers that cannot be patched are logged and kept out of
    shared caches instead (the page may carry an id its cookies do not); headers that cannot
    even be read, as they are (the server will refuse them anyway)."""
    with fail_open:
        return patch(visit, headers)
    with fail_open:
        return fail_safe_headers(headers)
    return headers


def _log(notes: tuple[Note, ...]) -> None:
    """Log what the core noted about a decision (the core itself logs nothing)."""
    for note in notes:
        logger.log(note.level, note.message, *note.args, exc_info=note.error)


# -- a visit being served ------------------------------------------------------------------


class Visit:
    """One request's identity while it is served: the current :class:`Decision`'s
    fields, whether the app read the id, whether a mint was tried, and what
    acting on it later takes.

    Made by its one constructor, from a decision's fields, and changed only by
    :meth:`apply` (a mint's outcome, a consent change in the request). It keeps
    the engine that decided it and the framework's request, for ``grant()``
    and ``revoke()`` in the app; the event loop of an async adapter, for a
    ``grant()`` from a worker thread; and ``on_read``, an adapter's way to hear
    that the app read the id (Django's cache framework must then not store the
    page). Nothing refers back to it but the context. Adapters subclass it
    with the one method their response needs (``send``, ``start_response``).
    """

    #: True once a mint was attempted for this request (never two).
    minted = False
    #: The request's website UUID once known (:attr:`website_uuid`); unknown until asked,
    #: so the usual returning visitor never pays for it.
    _website: Any = _UNKNOWN
    #: The event loop of an async adapter, for a ``grant()`` or ``link_customer()`` from a worker
    #: thread (:func:`from_a_worker_thread`).
    loop: asyncio.AbstractEventLoop | None = None
    #: The customer the shop named in this request (``hr_middleware.customers.link_customer``).
    customer_id: str | None = None
    #: What the app did about consent on this response: True after ``grant()``, False
    #: after ``revoke()``, None before either (what Hello Retail's script is told).
    consent_now: bool | None = None

    def __init__(  # noqa: PLR0917 - positional: keywords cost every request's visit
        self,
        engine: Engine[Any, Any] | None,
        native: Any,
        tracking_user_id: str | None,
        origin: Origin | None,
        reason: NoIdReason | None = None,
        cookies: tuple[CookieWrite, ...] = (),
        must_mint: bool = False,
    ) -> None:
        # The fields of a Decision, given one by one: the usual returning visitor's
        # decision is never made as one (it would cost every request 3,000 instructions).
        # (No field set here has a class default too: an instance attribute that shadows
        # a class attribute is read the slow way on CPython 3.12+; docs/performance.md.)
        #: The visitor's id, :data:`~hr_middleware.OPT_OUT_ID`, or None.
        self.tracking_user_id = tracking_user_id
        #: Where the id came from; None when there is no id.
        self.origin = origin
        #: Why there is no id; None while there is one, or while a mint is due.
        self.reason = reason
        #: Cookies to set or delete on the response, by name.
        self.cookies: Mapping[str, CookieWrite] = (
            NO_COOKIES if not cookies else {cookie.name: cookie for cookie in cookies}
        )
        #: True while a mint is due and has not been done.
        self.must_mint = must_mint
        #: True once the app read the id: the response varies on Cookie and is kept private.
        self.accessed = False
        #: The engine that decided the visit (None when the middleware could not).
        self.engine = engine
        #: The framework's request: a WSGI environ, an ASGI scope, a Django ``HttpRequest``.
        self.native = native
        #: Called whenever the app reads the id.
        self.on_read: Callable[[], None] | None = None
        self._request: RequestFacts | None = None

    @property
    def request(self) -> RequestFacts:
        """The request's facts (made when first needed: the usual returning visitor never needs them)."""
        if self._request is None:
            assert self.engine is not None
            self._request = self.engine.make_facts(self.native)
        return self._request

    @property
    def website_uuid(self) -> str | None:
        """The request's Hello Retail website UUID (None: the ``websites`` option names none),
        chosen by the core when first asked (a mint asks at once)."""
        if self._website is _UNKNOWN:
            if self.engine is None:
                return None
            website_uuid = None
            with fail_open:  # asked from the app's code (the client, the script): never raises there
                website_uuid, note = self.engine.policy.website(self.request)
                if note is not None:
                    _log((note,))
            self._website = website_uuid
        return self._website  # type: ignore[no-any-return]

    def apply(self, decision: Decision) -> None:
        """Take *decision* (a later one: a mint's outcome, a consent change): its id,
        origin and reason; its cookies replace any of the same name."""
        self.tracking_user_id = decision.tracking_user_id
        self.origin = decision.origin
        self.reason = decision.reason
        self.must_mint = decision.mint
        if decision.website_uuid is not None:
            self._website = decision.website_uuid
        if decision.cookies:
            self.cookies = {**self.cookies, **{cookie.name: cookie for cookie in decision.cookies}}

    def read_id(self) -> str | None:
        """The id as the app reads it: the response now varies on Cookie and is kept private."""
        self.accessed = True
        if self.on_read is not None:
            self.on_read()
        return self.tracking_user_id

    @classmethod
    def failed(cls: type[V], native: Any = None) -> V:
        """A request the middleware could not serve: no id, nothing to write."""
        return cls(None, native, None, None, NoIdReason.INTERNAL_ERROR)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.tracking_user_id!r} origin={self.origin!s} cookies={list(self.cookies)}>"


class Engine(Generic[N, V]):
    """One middleware's settings, decision and minter, serving requests of native type *N*.

    *make_facts* builds the core's :class:`RequestFacts` from the native
    request. *returning* makes, from the two cookie names, the renewal
    interval and the clock, the hot path's reader of the native request (:mod:`hr_middleware._core.returning`): the
    first branch of the decision, the usual returning visitor's id, read
    without building the request's facts (None: decide the long way). A
    sync adapter gives *minter*, an async one *aminter*; *visit* is the
    adapter's subclass of :class:`Visit`.
    """

    __slots__ = ("settings", "policy", "make_facts", "minter", "aminter", "_returning", "_visit", "_reader")

    def __init__(
        self,
        settings: Settings,
        make_facts: Callable[[N], RequestFacts],
        *,
        returning: Callable[[str, str, int | None, Callable[[], float]], Callable[[N], str | None]] | None = None,
        minter: Minter | PrefetchingMinter | None = None,
        aminter: AsyncMinter | AsyncPrefetchingMinter | None = None,
        visit: type[V],
    ) -> None:
        self.settings = settings
        #: The class of the visits it serves (an adapter's subclass of :class:`Visit`).
        self._visit = visit
        self.policy = TrackingPolicy(settings)
        self.make_facts = make_facts
        self.minter = minter
        self.aminter = aminter
        self._reader = returning
        self._returning = self._read_returning()
        _guard_djangos_cache()

    def _read_returning(self) -> Callable[[N], str | None] | None:
        """The hot path's reader for the policy (None: every request goes the long way)."""
        policy = self.policy
        if self._reader is None or not policy.returning_shortcut:
            return None
        return self._reader(self.settings.cookie_name, self.settings.sdk_cookie_name, policy.renew_after, policy.clock)

    @property
    def clock(self) -> Callable[[], float]:
        """What renewal reads the time from (Unix seconds): :func:`time.time`, or a test's own."""
        return self.policy.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.policy = TrackingPolicy(self.settings, clock)
        self._returning = self._read_returning()

    def serve(self, native: N, *, may_mint: bool = True) -> V:
        """Decide the visit of *native*, and mint when one is due and the minter is
        sync (blocking): the visit to serve. Never raises.

        An engine with an async minter leaves a due mint to :meth:`amint`
        (``visit.must_mint`` stays True); *may_mint* False decides without one.
        """
        # try, not the fail_open block: this runs on every request, and a block costs two
        # calls (docs/performance.md). What it catches goes to the same log line.
        try:
            returning = self._returning
            if returning is not None:
                tracking_user_id = returning(native)
                if tracking_user_id is not None:
                    # The decision's first branch, the usual returning visitor: nothing to write.
                    return self._visit(self, native, tracking_user_id, _COOKIE)
            request = self.make_facts(native)
            decision = self.policy.decide(request, may_mint=may_mint)
            if decision.notes:
                _log(decision.notes)
            visit = self._visit(
                self,
                native,
                decision.tracking_user_id,
                decision.origin,
                decision.reason,
                decision.cookies,
                decision.mint,
            )
            visit._request = request
            if decision.website_uuid is not None:
                visit._website = decision.website_uuid
        except Exception:
            fail_open.caught()
            return self._visit.failed(native)
        with fail_open:
            if self.aminter is not None:
                # For a grant() from a worker thread: it would mint on this loop. (A
                # returning visitor needs none: it keeps its id.)
                visit.loop = asyncio.get_running_loop()
            elif visit.must_mint and self.minter is not None:
                self._adopt(visit, self.minter.mint(visit.website_uuid))
            return visit
        return self._visit.failed(native)

    async def amint(self, visit: V) -> V:
        """The mint :meth:`serve` left due (``visit.must_mint``: an async minter),
        awaited: the visit to serve. Never raises.

        An async adapter calls it only when a mint is due, rather than awaiting one
        coroutine that serves and mints: that coroutine would cost every request
        (docs/performance.md).
        """
        with fail_open:
            self._adopt(visit, await self._mint_awaiting(visit))
            return visit
        return self._visit.failed(visit.native)

    def _adopt(self, visit: Visit, tracking_user_id: str | None) -> None:
        """Take a mint's outcome (None: it failed) into *visit*."""
        visit.minted = True
        visit.apply(self.policy.minted(visit.request, tracking_user_id))

    def _mint_blocking(self, visit: Visit) -> str | None:
        if self.minter is not None:
            return self.minter.mint(visit.website_uuid)
        aminter = self.aminter
        assert aminter is not None
        refuse_on_an_event_loop("grant")
        try:
            return from_a_worker_thread(
                visit, lambda: aminter.amint(visit.website_uuid), self.settings.timeout, "grant"
            )
        except RequestTimeoutError as exc:  # the request's loop never ran the mint: a failed one
            logger.warning(MINT_FAILED, exc)
            return None

    async def _mint_awaiting(self, visit: Visit) -> str | None:
        if self.aminter is not None:
            return await self.aminter.amint(visit.website_uuid)
        assert self.minter is not None
        return await asyncio.to_thread(self.minter.mint, visit.website_uuid)

    def close(self) -> None:
        """Stop the prefetch thread (if any) and close the connections to Hello Retail.

        Never raises: a failure is logged. A later mint opens new connections.
        """
        with fail_open:
            if self.minter is not None:
                self.minter.close()

    async def aclose(self) -> None:
        """Close the connections to Hello Retail (either kind of minter). Never raises."""
        self.close()
        with fail_open:
            if self.aminter is not None:
                await self.aminter.aclose()


# -- the current visit ---------------------------------------------------------------------

_current: ContextVar[Visit | None] = ContextVar("hr_middleware.visit", default=None)

#: Make a visit current (returns the token for :func:`leave`).
enter = _current.set
#: Undo :func:`enter`.
leave = _current.reset
#: The visit being served in this context, or None.
current = _current.get


def in_visit(visit: Visit | None, call: Callable[..., R], *args: Any) -> R:
    """``call(*args)`` with *visit* current, and left after: the app, a streamed
    body's next chunk, its ``close()``."""
    token = _current.set(visit)
    try:
        return call(*args)
    finally:
        _current.reset(token)


def app_in_visit(visit: Visit | None, app: Callable[[Any, Any], R], environ: Any, start_response: Any) -> R:
    """``app(environ, start_response)`` with *visit* current, and left after: a WSGI app's call.

    :func:`in_visit` with the two arguments passed as they are: CPython 3.11 makes
    ``call(*args)`` a C-level call, about 400 instructions more on every WSGI request
    (docs/performance.md).
    """
    token = _current.set(visit)
    try:
        return app(environ, start_response)
    finally:
        _current.reset(token)


async def ain_visit(visit: Visit | None, call: Callable[..., Awaitable[R]], *args: Any) -> R:
    """``await call(*args)`` with *visit* current, and left after."""
    token = _current.set(visit)
    try:
        return await call(*args)
    finally:
        _current.reset(token)


def refuse_on_an_event_loop(name: str) -> None:
    r"""Raise :class:`RuntimeError` on an event loop's own thread, where the blocking *name*\()
    would stall every request; say what to await instead (``a<name>()``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() would block the event loop here: use `await a{name}()` in async code")


def from_a_worker_thread(visit: Visit, make: Callable[[], Coroutine[Any, Any, R]], timeout: float, name: str) -> R:
    """What the coroutine *make()* returns, for sync code of an async app (an endpoint in
    Starlette's threadpool, a receiver Django runs through ``sync_to_async``), after
    :func:`refuse_on_an_event_loop`: run on the request's event loop when the visit kept it
    (its pooled connection), else on a loop of this thread's own, whose connection closes with it.

    The wait on the request's loop is bounded (*timeout*, the call's own budget, and a second
    more): a loop that is stopped or blocked must not hold the page forever; then the call is
    cancelled and :class:`RequestTimeoutError` raised.
    """
    loop = visit.loop
    if loop is None or loop.is_closed():
        return asyncio.run(make())
    future = asyncio.run_coroutine_threadsafe(make(), loop)
    try:
        return future.result(timeout + 1.0)
    except concurrent.futures.TimeoutError:  # not the builtin TimeoutError on Python 3.10
        future.cancel()
        raise RequestTimeoutError(f"the request's event loop did not run {name}() within {timeout + 1.0:g} s") from None


class ChunksInVisit(Generic[T]):
    """A streamed body's chunks, each produced with the visit current, and left after.

    The app's code that makes the body runs only when the server asks for the
    next chunk: after the adapter returned, maybe on another thread, maybe (a
    server that never calls ``close()``) never to be followed by any cleanup.
    So the visit is made current around each ``next()`` (and the first
    ``iter()``), in the context of whoever asks, and never left behind there.
    """

    __slots__ = ("_content", "_iterator", "_visit")

    def __init__(self, content: Iterable[T], visit: Visit) -> None:
        self._content = content
        self._visit = visit
        self._iterator: Iterator[T] | None = None

    def __iter__(self) -> ChunksInVisit[T]:
        return self

    def __next__(self) -> T:
        return in_visit(self._visit, self._next)

    def _next(self) -> T:
        if self._iterator is None:
            self._iterator = iter(self._content)  # an __iter__ may run the app's code too
        return next(self._iterator)


class AsyncChunksInVisit(Generic[T]):
    """:class:`ChunksInVisit` for an async iterable: the visit is current while each chunk is awaited."""

    __slots__ = ("_content", "_iterator", "_visit")

    def __init__(self, content: AsyncIterable[T], visit: Visit) -> None:
        self._content = content
        self._visit = visit
        self._iterator: AsyncIterator[T] | None = None

    def __aiter__(self) -> AsyncChunksInVisit[T]:
        return self

    async def __anext__(self) -> T:
        return await ain_visit(self._visit, self._anext)

    async def _anext(self) -> T:
        if self._iterator is None:
            self._iterator = aiter(self._content)
        return await anext(self._iterator)


def _guard_djangos_cache() -> None:
    """Where Django runs, keep every page that read the id out of Django's cache framework.

    Every engine asks, so that it holds under our Django middleware and for a
    Django project wrapped only by our WSGI or ASGI middleware (built around
    Django's application, so Django is imported by then). Never imports Django.
    """
    if "django.http" in sys.modules:
        from .django._cache import keep_read_pages_out_of_the_cache

        keep_read_pages_out_of_the_cache()


class TrackingUser(NamedTuple):
    """The current visitor as the app sees it."""

    #: The visitor's trackingUserId, :data:`~hr_middleware.OPT_OUT_ID`, or None.
    id: str | None
    #: Where it came from (cookie, SDK cookie, minted now, opt-out); None with no id.
    origin: Origin | None
    #: Why there is no id (a bot, not a page, Hello Retail unreachable...); None with an id.
    reason: NoIdReason | None = None

    @property
    def minted(self) -> bool:
        """True when the id was minted on this request (a first visit)."""
        return self.origin is Origin.MINTED


_OUTSIDE = TrackingUser(None, None, NoIdReason.OUTSIDE_REQUEST)


def get_tracking_user_id() -> str | None:
    """The current request's Hello Retail trackingUserId.

    Returns the visitor's id, :data:`~hr_middleware.OPT_OUT_ID` when the
    visitor declined tracking, or None outside a request, for requests that do
    not mint (assets, bots, XHR) and when Hello Retail could not be reached
    (:func:`get_tracking_user` says which). Works in sync and async code, in
    any framework, inside the middleware. Reading it marks the response
    ``Vary: Cookie``.
    """
    visit = _current.get()
    if visit is None:
        unserved()
        return None
    return visit.read_id()


def get_website_uuid() -> str | None:
    """The current request's Hello Retail website UUID: what its mint used and what
    :mod:`hr_middleware.client`, :func:`hr_middleware.customers.link_customer` and
    :func:`hr_middleware.script.hello_retail_script` send as ``websiteUuid``.

    ``website_uuid``, or with the ``websites`` option the website of the request's
    host or path (docs/websites.md); None outside a request, in a request the
    middleware could not serve, and for a request of no website. Reading it does
    not mark the response ``Vary: Cookie``: the website follows the URL, not the
    visitor (a ``websites`` callable that reads headers or cookies makes the page
    depend on them: vary on them yourself).
    """
    visit = _current.get()
    if visit is None:
        unserved("get_website_uuid() was called")
        return None
    return visit.website_uuid


def get_tracking_user() -> TrackingUser:
    """The current visitor's id, its origin, and the reason when there is no id.

    Outside a request: ``TrackingUser(None, None, NoIdReason.OUTSIDE_REQUEST)``.
    """
    visit = _current.get()
    if visit is None:
        unserved()
        return _OUTSIDE
    tracking_user_id = visit.read_id()
    if tracking_user_id is None:
        return TrackingUser(None, None, visit.reason or NoIdReason.INTERNAL_ERROR)
    return TrackingUser(tracking_user_id, visit.origin)


def unserved(what: str = "get_tracking_user_id() was called", outcome: str = "it is None") -> None:
    """No visit: say so if a request is being served all the same (a forgotten middleware):
    *what* the app did, and *outcome*, what came of it. Never raises."""
    # try, not the fail_open block: an app without the middleware reads the id here on
    # every request, and a block costs two calls (docs/performance.md).
    try:
        unserved_request(what, outcome)
    except Exception:
        fail_open.caught()


# -- acting on a consent change within a request ----------------------------------------------


def _served() -> tuple[Visit, Engine[Any, Any], RequestFacts]:
    visit = _current.get()
    if visit is None or visit.engine is None:
        raise LookupError("no Hello Retail visit here: call this while a request passes through the middleware")
    return visit, visit.engine, visit.request


def _granted() -> tuple[Visit, Engine[Any, Any], bool]:
    """Consent given in the current visit: the core's decision applied; whether a mint is due
    (:func:`grant` and :func:`agrant` differ only in how they mint)."""
    visit, engine, request = _served()
    decision = engine.policy.grant(request, visit.tracking_user_id, visit.origin, visit.reason, visit.minted)
    if decision.notes:
        _log(decision.notes)
    visit.apply(decision)
    visit.consent_now = True
    return visit, engine, decision.mint


def grant() -> str | None:
    """Consent given: keep or mint the id (blocking) and write the cookies. See :func:`hr_middleware.consent.grant`."""
    visit, engine, must_mint = _granted()
    if must_mint:
        engine._adopt(visit, engine._mint_blocking(visit))
    return visit.tracking_user_id


async def agrant() -> str | None:
    """:func:`grant` for async code; never blocks the event loop."""
    visit, engine, must_mint = _granted()
    if must_mint:
        engine._adopt(visit, await engine._mint_awaiting(visit))
    return visit.tracking_user_id


def revoke() -> str:
    """Consent withdrawn: delete both id cookies and the customer-link cookie; the id becomes
    :data:`~hr_middleware.OPT_OUT_ID`."""
    visit, engine, request = _served()
    visit.apply(engine.policy.revoke(request))
    visit.consent_now = False
    return OPT_OUT_ID
