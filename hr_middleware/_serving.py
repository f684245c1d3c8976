"""Between the pure core and the adapters: one request served, failing open.

An adapter hands its framework's request (a WSGI environ, an ASGI scope, a
Django ``HttpRequest``) to its :class:`Engine`. The engine decides the visit
(the core), runs the mint when one is due (the one I/O, sync or async), and
never raises: whatever fails on our side is logged once and the request is
served without an id (``NoIdReason.INTERNAL_ERROR``). The adapter makes the
visit current with :func:`enter` / :func:`leave` and patches the response
with the core's header functions.

A streamed body produced after the adapter returned (a WSGI iterable, a Django
``StreamingHttpResponse``) is wrapped in :class:`ChunksInVisit` or
:class:`AsyncChunksInVisit`: the visit is current while each chunk is made,
on whichever thread or task makes it, and never in between.

The app reaches the current visit through :func:`get_tracking_user_id` and
:func:`get_tracking_user`; ``hr_middleware.consent``'s ``grant()`` and
``revoke()`` act on it through :func:`grant`, :func:`agrant` and
:func:`revoke` here, which mint with the engine that decided the visit.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Generic, NamedTuple, TypeVar

from ._core.decide import TrackingPolicy
from ._core.facts import RequestFacts
from ._core.ids import OPT_OUT_ID
from ._core.log import INTERNAL_ERROR, logger
from ._core.settings import Settings
from ._core.visit import NO_COOKIES, NoIdReason, Origin, Visit
from ._hello_retail.mint import AsyncMinter, Minter
from ._hello_retail.prefetch import AsyncPrefetchingMinter, PrefetchingMinter

__all__ = [
    "VISIT_KEY",
    "AsyncChunksInVisit",
    "ChunksInVisit",
    "Engine",
    "Served",
    "TrackingUser",
    "agrant",
    "call_in_visit",
    "current",
    "enter",
    "get_tracking_user",
    "get_tracking_user_id",
    "grant",
    "leave",
    "revoke",
]

N = TypeVar("N")
S = TypeVar("S", bound="Served")
T = TypeVar("T")
R = TypeVar("R")

_new = object.__new__
_COOKIE = Origin.COOKIE

#: The mark an adapter leaves in the WSGI environ or ASGI scope of a request
#: it serves, so that a second instance (nested, or Django's inside ours)
#: takes the current visit instead of deciding again: one visit, one mint.
VISIT_KEY = "hello_retail.decided"


class Served(Visit):
    """A visit being served: the core's record, and what acting on it later takes.

    The engine that decided it and the request's facts, for ``grant()`` and
    ``revoke()`` in the app; the event loop of an async adapter, for a
    ``grant()`` from a worker thread; and ``on_read``, an adapter's way to
    hear that the app read the id (Django's cache framework must then not
    store the page). Nothing refers back to it but the context.
    """

    #: The event loop of an async adapter, for a ``grant()`` from a worker thread.
    loop: asyncio.AbstractEventLoop | None = None
    _facts: RequestFacts | None = None

    def __init__(self, engine: Engine[Any, Any] | None, native: Any) -> None:
        super().__init__()
        #: The engine that decided the visit (None when the middleware could not).
        self.engine = engine
        #: The framework's request: a WSGI environ, an ASGI scope, a Django ``HttpRequest``.
        self.native = native
        #: Called whenever the app reads the id.
        self.on_read: Callable[[], None] | None = None

    def read_id(self) -> str | None:
        """The id as the app reads it: the response now varies on Cookie."""
        self.accessed = True
        if self.on_read is not None:
            self.on_read()
        return self.tracking_user_id

    @property
    def facts(self) -> RequestFacts:
        """The request's facts (made when first needed)."""
        if self._facts is None:
            assert self.engine is not None
            self._facts = self.engine.make_facts(self.native)
        return self._facts

    @classmethod
    def failed(cls: type[S], native: Any) -> S:
        """A request the middleware could not serve: no id, nothing to write."""
        served = cls(None, native)
        served.reason = NoIdReason.INTERNAL_ERROR
        return served


class Engine(Generic[N, S]):
    """One middleware's settings, decision and minter, serving requests of native type *N*.

    *make_facts* builds the core's :class:`RequestFacts` from the native
    request. *returning* makes, from the two cookie names, the hot path's
    reader of the native request (see :mod:`hr_middleware._core.returning`):
    the id of the usual returning visitor, or None to go the long way. A
    sync adapter gives *minter*, an async one *aminter*; *served* is the
    adapter's subclass of :class:`Served`, if it has one.
    """

    __slots__ = ("settings", "policy", "make_facts", "minter", "aminter", "_returning", "_served")

    def __init__(
        self,
        settings: Settings,
        make_facts: Callable[[N], RequestFacts],
        *,
        returning: Callable[[str, str], Callable[[N], str | None]] | None = None,
        minter: Minter | PrefetchingMinter | None = None,
        aminter: AsyncMinter | AsyncPrefetchingMinter | None = None,
        served: type[S],
    ) -> None:
        self.settings = settings
        #: The class of the visits it serves (:class:`Served`, or an adapter's subclass).
        self._served = served
        self.policy = TrackingPolicy(settings)
        self.make_facts = make_facts
        self.minter = minter
        self.aminter = aminter
        self._returning: Callable[[N], str | None] | None = None
        if returning is not None and self.policy.fast:
            self._returning = returning(settings.cookie_name, settings.sdk_cookie_name)
        _guard_djangos_cache()

    def serve(self, native: N, *, may_mint: bool = True) -> S:
        """Decide the visit of *native*, and mint when one is due and the minter is
        sync (blocking): the visit to serve. Never raises.

        An engine with an async minter leaves a due mint to :meth:`amint`
        (``served.must_mint`` stays True); *may_mint* False decides without one.
        """
        try:
            returning = self._returning
            if returning is not None:
                tracking_user_id = returning(native)
                if tracking_user_id is not None:
                    # The usual returning visitor: nothing else to decide, nothing to write.
                    # Made without calling __init__ (one Python call fewer): the fields it
                    # sets are set here, in its order.
                    served = _new(self._served)
                    served.tracking_user_id = tracking_user_id
                    served.origin = _COOKIE
                    served.cookies = NO_COOKIES
                    served.accessed = False
                    served.must_mint = False
                    served.engine = self
                    served.native = native
                    served.on_read = None
                    return served
            served = self._served(self, native)
            if self.aminter is not None:
                # For a grant() from a worker thread: it would mint on this loop. (A
                # returning visitor needs no mint: it keeps its id.)
                served.loop = asyncio.get_running_loop()
            self.policy.decide(served, served.facts, may_mint=may_mint)
        except Exception:
            logger.exception(INTERNAL_ERROR)
            return self._served.failed(native)
        if served.must_mint and self.minter is not None:
            try:
                self.policy.adopt_minted(served, served.facts, self.minter.mint())
            except Exception:
                return self._failed(served)
        return served

    async def amint(self, served: S) -> S:
        """The mint :meth:`serve` left due (``served.must_mint``: an async minter),
        awaited: the visit to serve. Never raises.

        An async adapter calls it only when a mint is due, rather than awaiting one
        coroutine that serves and mints: that coroutine would cost every request
        (docs/performance.md).
        """
        try:
            self.policy.adopt_minted(served, served.facts, await self._mint_awaiting(served))
        except Exception:
            return self._failed(served)
        return served

    @staticmethod
    def _failed(served: S) -> S:
        logger.exception(INTERNAL_ERROR)
        return type(served).failed(served.native)

    def _mint_blocking(self, served: Served) -> str | None:
        if self.minter is not None:
            return self.minter.mint()
        assert self.aminter is not None
        # A sync endpoint of an async app (Starlette's threadpool, Django's
        # sync_to_async): mint on the request's event loop and wait for it here.
        loop = served.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            raise RuntimeError("grant() would block the event loop here: use `await agrant()` in async code")
        return asyncio.run_coroutine_threadsafe(self.aminter.amint(), loop).result()

    async def _mint_awaiting(self, served: Served) -> str | None:
        if self.aminter is not None:
            return await self.aminter.amint()
        assert self.minter is not None
        return await asyncio.to_thread(self.minter.mint)

    def close(self) -> None:
        """Stop the prefetch thread (if any) and close the connections to Hello Retail.

        Never raises: a failure is logged. A later mint opens new connections.
        """
        try:
            if self.minter is not None:
                self.minter.close()
        except Exception:
            logger.exception(INTERNAL_ERROR)

    async def aclose(self) -> None:
        """Close the connections to Hello Retail (either kind of minter). Never raises."""
        self.close()
        try:
            if self.aminter is not None:
                await self.aminter.aclose()
        except Exception:
            logger.exception(INTERNAL_ERROR)


# -- the current visit ---------------------------------------------------------------------

_current: ContextVar[Served | None] = ContextVar("hr_middleware.visit", default=None)

#: Make a visit current (returns the token for :func:`leave`).
enter = _current.set
#: Undo :func:`enter`.
leave = _current.reset
#: The visit being served in this context, or None.
current = _current.get


def call_in_visit(served: Served, call: Callable[[], R]) -> R:
    """*call*'s result, called with *served* current (and left after): a WSGI body's ``close()``, say."""
    token = _current.set(served)
    try:
        return call()
    finally:
        _current.reset(token)


class ChunksInVisit(Generic[T]):
    """A streamed body's chunks, each produced with the visit current, and left after.

    The app's code that makes the body runs only when the server asks for the
    next chunk: after the adapter returned, maybe on another thread, maybe (a
    server that never calls ``close()``) never to be followed by any cleanup.
    So the visit is made current around each ``next()`` (and the first
    ``iter()``), in the context of whoever asks, and never left behind there.
    """

    __slots__ = ("_content", "_iterator", "_served")

    def __init__(self, content: Iterable[T], served: Served) -> None:
        self._content = content
        self._served = served
        self._iterator: Iterator[T] | None = None

    def __iter__(self) -> ChunksInVisit[T]:
        return self

    def __next__(self) -> T:
        token = _current.set(self._served)
        try:
            if self._iterator is None:
                self._iterator = iter(self._content)  # an __iter__ may run the app's code too
            return next(self._iterator)
        finally:
            _current.reset(token)


class AsyncChunksInVisit(Generic[T]):
    """:class:`ChunksInVisit` for an async iterable: the visit is current while each chunk is awaited."""

    __slots__ = ("_content", "_iterator", "_served")

    def __init__(self, content: AsyncIterable[T], served: Served) -> None:
        self._content = content
        self._served = served
        self._iterator: AsyncIterator[T] | None = None

    def __aiter__(self) -> AsyncChunksInVisit[T]:
        return self

    async def __anext__(self) -> T:
        token = _current.set(self._served)
        try:
            if self._iterator is None:
                self._iterator = aiter(self._content)
            return await anext(self._iterator)
        finally:
            _current.reset(token)


def _guard_djangos_cache() -> None:
    """Where Django runs, keep every page that read the id out of Django's cache framework.

    Every engine asks, so that it holds under our Django middleware and for a
    Django project wrapped only by our WSGI or ASGI middleware (built around
    Django's application, so Django is imported by then). Never imports Django.
    """
    if "django.http" in sys.modules:
        from .django.cache import keep_read_pages_out_of_the_cache

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
    served = _current.get()
    return None if served is None else served.read_id()


def get_tracking_user() -> TrackingUser:
    """The current visitor's id, its origin, and the reason when there is no id.

    Outside a request: ``TrackingUser(None, None, NoIdReason.OUTSIDE_REQUEST)``.
    """
    served = _current.get()
    if served is None:
        return _OUTSIDE
    tracking_user_id = served.read_id()
    if tracking_user_id is None:
        return TrackingUser(None, None, served.reason or NoIdReason.INTERNAL_ERROR)
    return TrackingUser(tracking_user_id, served.origin)


# -- acting on a consent change within a request ----------------------------------------------


def _served() -> tuple[Served, Engine[Any, Any]]:
    served = _current.get()
    if served is None or served.engine is None:
        raise LookupError("no Hello Retail visit here: call this while a request passes through the middleware")
    return served, served.engine


def grant() -> str | None:
    """Consent given: keep or mint the id (blocking) and write the cookies. See :func:`hr_middleware.consent.grant`."""
    served, engine = _served()
    if engine.policy.grant_needs_mint(served, served.facts):
        engine.policy.adopt_minted(served, served.facts, engine._mint_blocking(served))
    return served.tracking_user_id


async def agrant() -> str | None:
    """:func:`grant` for async code; never blocks the event loop."""
    served, engine = _served()
    if engine.policy.grant_needs_mint(served, served.facts):
        engine.policy.adopt_minted(served, served.facts, await engine._mint_awaiting(served))
    return served.tracking_user_id


def revoke() -> str:
    """Consent withdrawn: delete both id cookies; the id becomes :data:`~hr_middleware.OPT_OUT_ID`."""
    served, engine = _served()
    engine.policy.revoke(served, served.facts)
    return OPT_OUT_ID
