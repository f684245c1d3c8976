"""Ids minted ahead of need, so that a first visit does not wait for Hello Retail.

With the ``prefetch`` option at N > 0 the middleware keeps up to N fresh ids.
A first visit takes one at once; the pool is refilled in the background (a
thread for WSGI and sync Django, a task on the event loop for ASGI and async
Django), never on the request path. An empty pool falls back to minting
inline. Nothing is minted before the first request, refilling stops while the
circuit breaker is open, ids older than ``prefetch_max_age`` are discarded,
a forked worker starts with an empty pool of its own, and ``close()`` /
``aclose()`` stop the refill, waiting for it at most one mint's time budget
(plus a second). A process that uWSGI will fork from C starts no refill
thread (see :func:`~hr_middleware._hello_retail.forks.may_start_threads`):
its pool stays empty, and its workers fill their own.

The price: ids minted and never used (at most N per idle period longer than
``prefetch_max_age``, and N when the process stops). Hello Retail ids cost
nothing until used, but they are visitors that never come back in its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable

from hr_middleware._boundary import refill_failed
from hr_middleware._core.settings import Settings

from .forks import PerProcess, may_start_threads
from .mint import AsyncMinter, CircuitBreaker, Minter

__all__ = ["AsyncPrefetchingMinter", "IdPool", "PrefetchingMinter", "make_async_minter", "make_minter"]


class _Ids:
    """A pool's ids in one process."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, float]] = deque()
        self.lock = threading.Lock()


class IdPool:
    """A bounded, thread-safe pool of (id, minted_at), oldest first.

    A forked child starts with an empty pool: its parent's ids are the
    parent's to hand out, and handing them out again would give two visitors
    one id.
    """

    def __init__(self, size: int, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.max_age = max_age
        self._clock = clock
        self._per_process = PerProcess(_Ids)

    @property
    def _ids(self) -> deque[tuple[str, float]]:
        return self._per_process.get().queue

    def __len__(self) -> int:
        return len(self._ids)

    def take(self) -> str | None:
        """A fresh id, or None when the pool has none; stale ids are dropped."""
        ids = self._per_process.get()
        with ids.lock:
            limit = self._clock() - self.max_age
            while ids.queue:
                tracking_user_id, minted_at = ids.queue.popleft()
                if minted_at >= limit:
                    return tracking_user_id
        return None

    def put(self, tracking_user_id: str) -> bool:
        """Add a new id; False (and the id is not kept) when the pool is full."""
        ids = self._per_process.get()
        with ids.lock:
            if len(ids.queue) >= self.size:
                return False
            ids.queue.append((tracking_user_id, self._clock()))
            return True

    @property
    def wants_more(self) -> bool:
        """True while the pool holds fewer than *size* ids."""
        return len(self._ids) < self.size


def _pooled(minter: Minter | AsyncMinter, website_uuid: str | None) -> bool:
    """Does the pool hold ids of *website_uuid* (None: the default website)? Only the default website's."""
    return website_uuid is None or website_uuid == minter.settings.website_uuid


class _Refiller:
    """A :class:`PrefetchingMinter`'s refill thread and its signals, in one process."""

    def __init__(self) -> None:
        self.wanted = threading.Event()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.start_lock = threading.Lock()


class PrefetchingMinter:
    """A :class:`~hr_middleware._hello_retail.mint.Minter` with a pool refilled by one background thread.

    After a fork the child has no refill thread and an empty pool; its first
    mint starts its own thread. A process that uWSGI will fork from C mints
    inline and starts none.
    """

    def __init__(self, minter: Minter, size: int, max_age: float) -> None:
        self.minter = minter
        self.breaker: CircuitBreaker = minter.breaker
        self.pool = IdPool(size, max_age)
        self._refiller = PerProcess(_Refiller)
        self._closed = False

    def mint(self, website_uuid: str | None = None) -> str | None:
        """An id from the pool, or minted inline when it is empty. The pool holds ids of the
        default website (``website_uuid``); another website's are minted inline."""
        if not _pooled(self.minter, website_uuid):
            return self.minter.mint(website_uuid)
        refiller = self._ensure_refilling()
        tracking_user_id = self.pool.take()
        refiller.wanted.set()
        return tracking_user_id if tracking_user_id is not None else self.minter.mint()

    def _ensure_refilling(self) -> _Refiller:
        refiller = self._refiller.get()
        thread = refiller.thread
        if (thread is not None and thread.is_alive()) or self._closed or not may_start_threads():
            return refiller
        with refiller.start_lock:
            thread = refiller.thread
            if (thread is None or not thread.is_alive()) and not self._closed:
                refiller.thread = threading.Thread(
                    target=self._refill, args=(refiller,), name="hr-middleware-prefetch", daemon=True
                )
                refiller.thread.start()
        return refiller

    def _refill(self, refiller: _Refiller) -> None:
        while not (refiller.stopped.is_set() or self._closed):
            refiller.wanted.wait()
            refiller.wanted.clear()
            with refill_failed:  # a bug must not end prefetching for good; the next visit retries
                while self.pool.wants_more and not (refiller.stopped.is_set() or self._closed):
                    tracking_user_id = self.minter.mint()  # None at once while the breaker is open
                    if tracking_user_id is None or not self.pool.put(tracking_user_id):
                        break

    @property
    def refilling(self) -> bool:
        """True while this process's background thread runs."""
        refiller = self._refiller.peek()
        return refiller is not None and refiller.thread is not None and refiller.thread.is_alive()

    def close(self) -> None:
        """Stop the refill thread and close the connections."""
        self._closed = True
        refiller = self._refiller.peek()
        if refiller is not None:
            refiller.stopped.set()
            refiller.wanted.set()
            thread, refiller.thread = refiller.thread, None
            if thread is not None:
                thread.join(self.minter.settings.timeout + 1)
        self.minter.close()


class _RefillTask:
    """An :class:`AsyncPrefetchingMinter`'s refill task and its signal, in one process."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.wanted: asyncio.Event | None = None


class AsyncPrefetchingMinter:
    """An :class:`~hr_middleware._hello_retail.mint.AsyncMinter` with a pool refilled by one task on the loop.

    After a fork the child has no refill task and an empty pool.
    """

    def __init__(self, minter: AsyncMinter, size: int, max_age: float) -> None:
        self.minter = minter
        self.breaker: CircuitBreaker = minter.breaker
        self.pool = IdPool(size, max_age)
        self._refill_task = PerProcess(_RefillTask)
        self._closed = False

    async def amint(self, website_uuid: str | None = None) -> str | None:
        """An id from the pool, or minted inline when it is empty. The pool holds ids of the
        default website (``website_uuid``); another website's are minted inline."""
        if not _pooled(self.minter, website_uuid):
            return await self.minter.amint(website_uuid)
        wanted = self._ensure_refilling()
        tracking_user_id = self.pool.take()
        if wanted is not None:
            wanted.set()
        return tracking_user_id if tracking_user_id is not None else await self.minter.amint()

    def _ensure_refilling(self) -> asyncio.Event | None:
        if self._closed:
            return None
        refill = self._refill_task.get()
        task = refill.task
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            refill.wanted = asyncio.Event()
            refill.task = loop.create_task(self._refill(refill.wanted), name="hr-middleware-prefetch")
        return refill.wanted

    async def _refill(self, wanted: asyncio.Event) -> None:
        # The closed flag ends it even where a cancel went astray.
        while not self._closed:
            await wanted.wait()
            wanted.clear()
            with refill_failed:
                while self.pool.wants_more and not self._closed:
                    tracking_user_id = await self._mint_apart()
                    if tracking_user_id is None or not self.pool.put(tracking_user_id):
                        break

    async def _mint_apart(self) -> str | None:
        """One mint, in a task of its own: a cancel of the refill always ends the refill.

        Awaited directly, the mint's handling of a cancel would decide: on
        CPython 3.10 and 3.11, ``asyncio.wait_for`` swallows a cancel that
        arrives as the awaited exchange finishes, and the refill would go on,
        then wait for the next visit forever (``aclose()`` and
        ``asyncio.run()``'s teardown with it). ``asyncio.wait`` only waits: the
        cancel reaches the refill, and is passed on to the mint.
        """
        mint = asyncio.get_running_loop().create_task(self.minter.amint(), name="hr-middleware-prefetch-mint")
        try:
            await asyncio.wait((mint,))
        except asyncio.CancelledError:
            mint.cancel()
            raise
        return mint.result()

    @property
    def refilling(self) -> bool:
        """True while this process's refill task runs."""
        refill = self._refill_task.peek()
        return refill is not None and refill.task is not None and not refill.task.done()

    async def aclose(self) -> None:
        """Stop the refill task and close the connections.

        Waits for the refill at most one mint's time budget (plus a second),
        whatever it is doing: a shutdown finishes.
        """
        self._closed = True
        refill = self._refill_task.peek()
        task = None
        if refill is not None:
            task, refill.task = refill.task, None
        if task is not None and not task.done():
            loop = task.get_loop()
            if loop is asyncio.get_running_loop():
                task.cancel()
                await asyncio.wait((task,), timeout=self.minter.settings.timeout + 1)
            else:  # a task is cancelled on its own loop's thread (the closed flag ends it too)
                with contextlib.suppress(RuntimeError):  # that loop is closed: the task will never run again
                    loop.call_soon_threadsafe(task.cancel)
        await self.minter.aclose()


def make_minter(settings: Settings) -> Minter | PrefetchingMinter:
    """The blocking minter the settings ask for (prefetching when ``prefetch`` > 0)."""
    minter = Minter(settings)
    if settings.prefetch:
        return PrefetchingMinter(minter, settings.prefetch, settings.prefetch_max_age)
    return minter


def make_async_minter(settings: Settings) -> AsyncMinter | AsyncPrefetchingMinter:
    """The async minter the settings ask for (prefetching when ``prefetch`` > 0)."""
    minter = AsyncMinter(settings)
    if settings.prefetch:
        return AsyncPrefetchingMinter(minter, settings.prefetch, settings.prefetch_max_age)
    return minter
