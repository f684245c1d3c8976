"""Ids minted ahead of need, so that a first visit does not wait for Hello Retail.

With the ``prefetch`` option at N > 0 the middleware keeps up to N fresh ids.
A first visit takes one at once; the pool is refilled in the background (a
thread for WSGI and sync Django, a task on the event loop for ASGI and async
Django), never on the request path. An empty pool falls back to minting
inline. Nothing is minted before the first request, refilling stops while the
circuit breaker is open, ids older than ``prefetch_max_age`` are discarded,
and ``close()`` / ``aclose()`` stop the refill.

The price: ids minted and never used (at most N per idle period longer than
``prefetch_max_age``, and N when the process stops). Hello Retail ids cost
nothing until used, but they are visitors that never come back in its data.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from .mint import AsyncMinter, CircuitBreaker, Minter
from .settings import Settings

__all__ = ["AsyncPrefetchingMinter", "IdPool", "PrefetchingMinter", "make_async_minter", "make_minter"]

logger = logging.getLogger("hr_middleware")

#: Logged (with the traceback) when a refill fails unexpectedly; the pool tries again on the next visit.
REFILL_FAILED = "prefetch refill failed; retrying on the next first visit"


class IdPool:
    """A bounded, thread-safe pool of (id, minted_at), oldest first."""

    def __init__(self, size: int, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.max_age = max_age
        self._clock = clock
        self._ids: deque[tuple[str, float]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def take(self) -> str | None:
        """A fresh id, or None when the pool has none; stale ids are dropped."""
        with self._lock:
            limit = self._clock() - self.max_age
            while self._ids:
                tracking_user_id, minted_at = self._ids.popleft()
                if minted_at >= limit:
                    return tracking_user_id
        return None

    def put(self, tracking_user_id: str) -> bool:
        """Add a new id; False (and the id is not kept) when the pool is full."""
        with self._lock:
            if len(self._ids) >= self.size:
                return False
            self._ids.append((tracking_user_id, self._clock()))
            return True

    @property
    def wants_more(self) -> bool:
        return len(self._ids) < self.size


class PrefetchingMinter:
    """A :class:`~hr_middleware.mint.Minter` with a pool refilled by one background thread."""

    def __init__(self, minter: Minter, size: int, max_age: float) -> None:
        self.minter = minter
        self.breaker: CircuitBreaker = minter.breaker
        self.pool = IdPool(size, max_age)
        self._wanted = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def mint(self) -> str | None:
        """An id from the pool, or minted inline when it is empty."""
        self._ensure_refilling()
        tracking_user_id = self.pool.take()
        self._wanted.set()
        return tracking_user_id if tracking_user_id is not None else self.minter.mint()

    def _ensure_refilling(self) -> None:
        thread = self._thread
        if (thread is not None and thread.is_alive()) or self._stopped.is_set():
            return
        with self._start_lock:
            thread = self._thread
            if (thread is None or not thread.is_alive()) and not self._stopped.is_set():
                # Also after a fork (gunicorn --preload): the child has no thread.
                self._thread = threading.Thread(target=self._refill, name="hr-middleware-prefetch", daemon=True)
                self._thread.start()

    def _refill(self) -> None:
        while not self._stopped.is_set():
            self._wanted.wait()
            self._wanted.clear()
            try:
                while self.pool.wants_more and not self._stopped.is_set():
                    tracking_user_id = self.minter.mint()  # None at once while the breaker is open
                    if tracking_user_id is None or not self.pool.put(tracking_user_id):
                        break
            except Exception:  # a bug must not end prefetching for good; the next visit retries
                logger.exception(REFILL_FAILED)

    @property
    def refilling(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the refill thread and close the connections."""
        self._stopped.set()
        self._wanted.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.minter.settings.timeout + 1)
        self.minter.close()


class AsyncPrefetchingMinter:
    """An :class:`~hr_middleware.mint.AsyncMinter` with a pool refilled by one task on the loop."""

    def __init__(self, minter: AsyncMinter, size: int, max_age: float) -> None:
        self.minter = minter
        self.breaker: CircuitBreaker = minter.breaker
        self.pool = IdPool(size, max_age)
        self._task: asyncio.Task[None] | None = None
        self._wanted: asyncio.Event | None = None
        self._closed = False

    async def amint(self) -> str | None:
        """An id from the pool, or minted inline when it is empty."""
        wanted = self._ensure_refilling()
        tracking_user_id = self.pool.take()
        if wanted is not None:
            wanted.set()
        return tracking_user_id if tracking_user_id is not None else await self.minter.amint()

    def _ensure_refilling(self) -> asyncio.Event | None:
        if self._closed:
            return None
        task = self._task
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            self._wanted = asyncio.Event()
            self._task = loop.create_task(self._refill(self._wanted), name="hr-middleware-prefetch")
        return self._wanted

    async def _refill(self, wanted: asyncio.Event) -> None:
        while True:
            await wanted.wait()
            wanted.clear()
            try:
                while self.pool.wants_more:
                    tracking_user_id = await self.minter.amint()
                    if tracking_user_id is None or not self.pool.put(tracking_user_id):
                        break
            except Exception:
                logger.exception(REFILL_FAILED)

    @property
    def refilling(self) -> bool:
        """True while the refill task runs."""
        return self._task is not None and not self._task.done()

    async def aclose(self) -> None:
        """Cancel the refill task and close the connections."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                try:
                    await task
                except asyncio.CancelledError:
                    pass
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
