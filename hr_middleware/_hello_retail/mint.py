"""The mint call: ask Hello Retail for a new trackingUserId, sync (``mint``) or async (``amint``).

One request builder and one answer parser are shared by both; a circuit
breaker makes an outage cost one time budget, not one per visitor. Each failed
mint attempt is logged at WARNING, one line with its reason, and returns None:
it never raises to the app. While the breaker is open no mint is tried, so
nothing is logged but its opening (WARNING) and closing (INFO).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import cast

from hr_middleware._core.ids import is_valid_id
from hr_middleware._core.settings import Settings

from . import endpoints
from .errors import APIError, HelloRetailError, InvalidResponseError
from .forks import PerProcess
from .transport import Answer, AsyncTransport, SyncTransport

__all__ = ["AsyncMinter", "BreakerState", "CircuitBreaker", "Minter", "parse_mint_answer"]

logger = logging.getLogger("hr_middleware")

#: Log messages, exported so tests can assert them exactly.
MINT_FAILED = "Hello Retail mint failed (%s); serving the visit without an id"
BREAKER_OPENED = "Hello Retail mint circuit opened after %d failed mints; no mints for %gs"
BREAKER_CLOSED = "Hello Retail mint circuit closed; minting again"


#: A mint answer is ~50 bytes: no compression (a compressed answer is refused
#: on its headers, unread), so the size cap counts what is read.
MINT_HEADERS = {"Accept-Encoding": "identity"}

#: The mint answer's size cap: ~50 bytes are expected, and one of these per
#: first visit may be read at once (the downstream client's 4 MiB cap cost
#: 216 MiB with 200 concurrent first visits).
MINT_MAX_BYTES = 4 * 1024


def mint_body(settings: Settings, website_uuid: str | None = None) -> bytes:
    """The JSON body of ``POST /serve/trackingUser``, for *website_uuid* (default: the settings')."""
    return json.dumps({"websiteUuid": website_uuid or settings.website_uuid}).encode()


def parse_mint_answer(answer: Answer) -> str:
    """The new id from a mint *answer*; raises a :class:`HelloRetailError` otherwise.

    Success is only: 2xx, a JSON object whose ``success`` is true or absent
    (the live service sends ``{"id", "success": true}``, the public
    documentation shows ``{"id"}`` alone), and an ``id`` that is a valid id.
    Nothing of a bad answer is echoed beyond its status.
    """
    if not 200 <= answer.status < 300:
        raise APIError(answer.status)
    document = answer.json()
    if not isinstance(document, dict):
        raise InvalidResponseError("answer is not a JSON object", status=answer.status)
    if document.get("success", True) is not True:
        said = "success: false" if document["success"] is False else "success is not true"
        raise InvalidResponseError(f"answer says {said}", status=answer.status)
    tracking_user_id = document.get("id")
    if tracking_user_id is None:
        raise InvalidResponseError("answer has no id", status=answer.status)
    if not is_valid_id(tracking_user_id):
        raise InvalidResponseError("answer's id is not 24 lower-case hex", status=answer.status)
    return str(tracking_user_id)


class BreakerState(str, Enum):
    """States of the :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class _Tally:
    """A breaker's count and state in one process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures = 0
        self.state = BreakerState.CLOSED
        self.opened_at = 0.0
        self.probe_started = 0.0


class CircuitBreaker:
    """Skips mints after *threshold* consecutive failures, for *cooldown* seconds.

    After the cool-down one caller is let through as a probe; its outcome
    closes the breaker or opens it again. Thread-safe; never awaits, so it is
    task-safe too. State changes are logged once each. A forked child starts
    closed: its parent's verdict (or a probe the parent had running) is not its own.
    """

    def __init__(self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._tally = PerProcess(_Tally)

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its cool-down reads as half-open)."""
        tally = self._tally.get()
        with tally.lock:
            if tally.state is BreakerState.OPEN and self._clock() - tally.opened_at >= self.cooldown:
                return BreakerState.HALF_OPEN
            return tally.state

    def allow(self) -> bool:
        """May a mint be tried now? A True in the half-open state is the one probe."""
        tally = self._tally.get()
        if tally.state is BreakerState.CLOSED:  # the common case, without the lock
            return True
        with tally.lock:
            state = cast(BreakerState, tally.state)  # re-read under the lock
            now = self._clock()
            if (state is BreakerState.OPEN and now - tally.opened_at >= self.cooldown) or (
                # A probe that never reported (a bug, a killed thread) must not
                # stop minting for good: after another cool-down, probe again.
                state is BreakerState.HALF_OPEN and now - tally.probe_started >= self.cooldown + 60
            ):
                tally.state = BreakerState.HALF_OPEN
                tally.probe_started = now
                return True
            # Another thread may have closed it since the unlocked read.
            return state is BreakerState.CLOSED

    def record_success(self) -> None:
        """A mint succeeded."""
        tally = self._tally.get()
        with tally.lock:
            tally.failures = 0
            if tally.state is not BreakerState.CLOSED:
                tally.state = BreakerState.CLOSED
                logger.info(BREAKER_CLOSED)

    def record_abandoned(self) -> None:
        """A mint was cancelled before it ended: no verdict on Hello Retail.

        A probe abandoned this way lets the next caller probe at once.
        """
        tally = self._tally.get()
        with tally.lock:
            if tally.state is BreakerState.HALF_OPEN:
                tally.state = BreakerState.OPEN
                tally.opened_at = self._clock() - self.cooldown

    def record_failure(self) -> None:
        """A mint failed."""
        tally = self._tally.get()
        with tally.lock:
            tally.failures += 1
            if tally.state is BreakerState.HALF_OPEN or (
                tally.state is BreakerState.CLOSED and tally.failures >= self.threshold
            ):
                tally.state = BreakerState.OPEN
                tally.opened_at = self._clock()
                logger.warning(BREAKER_OPENED, tally.failures, self.cooldown)


class _MintCall:
    """What ``mint`` and ``amint`` share: the breaker, the request and the verdict."""

    def __init__(self, settings: Settings, breaker: CircuitBreaker | None) -> None:
        self.settings = settings
        self.url = settings.api_url + endpoints.MINT
        self.body = mint_body(settings)
        # Each website's body, made once: those the options name, now; a callable's, when first asked
        # (a callable's answers are checked UUIDs, so this grows no further than the shop's websites).
        self._bodies = {uuid: mint_body(settings, uuid) for uuid in settings.website_choice.uuids()}
        self.breaker = breaker or CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown)

    def body_for(self, website_uuid: str | None) -> bytes:
        """The mint body for *website_uuid* (None: the default website)."""
        if website_uuid is None:
            return self.body
        body = self._bodies.get(website_uuid)
        if body is None:
            body = self._bodies[website_uuid] = mint_body(self.settings, website_uuid)
        return body

    def verdict(self, answer: Answer) -> str | None:
        """The new id from *answer*, or None after logging why not."""
        try:
            tracking_user_id = parse_mint_answer(answer)
        except HelloRetailError as exc:
            self.failed(exc)
            return None
        self.breaker.record_success()
        return tracking_user_id

    def failed(self, exc: BaseException) -> None:
        """The exchange raised *exc*: log the failed mint (one line, with its reason), and tell the
        breaker. A cancellation (the visitor left, the server shuts down) says nothing of
        Hello Retail: it is passed on, and a probe it ended lets the next caller probe."""
        if not isinstance(exc, Exception):
            self.breaker.record_abandoned()
            raise exc
        if isinstance(exc, HelloRetailError):
            logger.warning(MINT_FAILED, exc)
        else:  # a bug of ours or a library's: keep the traceback
            logger.warning(MINT_FAILED, f"unexpected {type(exc).__name__}: {exc}", exc_info=exc)
        self.breaker.record_failure()


class Minter(_MintCall):
    """Mints ids with the blocking transport; one per WSGI middleware instance."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: SyncTransport | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(settings, breaker)
        self.transport = transport or SyncTransport()

    def mint(self, website_uuid: str | None = None) -> str | None:
        """A new id of *website_uuid* (None: the default website), or None (failure logged; breaker open)."""
        if not self.breaker.allow():
            return None
        try:
            answer = self.transport.post(
                self.url,
                self.body_for(website_uuid),
                timeout=self.settings.timeout,
                headers=MINT_HEADERS,
                max_bytes=MINT_MAX_BYTES,
            )
        except BaseException as exc:  # failed() passes a cancellation on
            self.failed(exc)
            return None
        return self.verdict(answer)

    def close(self) -> None:
        """Close the pooled connections."""
        self.transport.close()


class AsyncMinter(_MintCall):
    """Mints ids with the non-blocking transport; one per ASGI middleware instance."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: AsyncTransport | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(settings, breaker)
        self.transport = transport or AsyncTransport(api_url=settings.api_url)

    async def amint(self, website_uuid: str | None = None) -> str | None:
        """A new id of *website_uuid* (None: the default website), or None (failure logged; breaker open)."""
        if not self.breaker.allow():
            return None
        try:
            answer = await self.transport.post(
                self.url,
                self.body_for(website_uuid),
                timeout=self.settings.timeout,
                headers=MINT_HEADERS,
                max_bytes=MINT_MAX_BYTES,
            )
        except BaseException as exc:  # failed() passes a cancellation on
            self.failed(exc)
            return None
        return self.verdict(answer)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self.transport.aclose()
