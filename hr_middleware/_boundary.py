"""The one fail-open boundary: whatever fails on our side is logged once and goes no further.

In the style of sentry's ``capture_internal_exceptions()``: ``with fail_open:``
around our own work on a request (deciding, minting, patching a response,
exposing the id, closing), and ``with refill_failed:`` around one refill of
the prefetch pool. An :class:`Exception` raised inside is logged with its
traceback and swallowed; the code after the block carries on without us (the
request is served without an id, the pool refills on the next visit). The
app's own exceptions never pass through one (the app is called outside them),
and neither does a cancellation or ``KeyboardInterrupt``.
"""

from __future__ import annotations

import sys
from types import TracebackType

from ._core.log import INTERNAL_ERROR, logger

__all__ = ["REFILL_FAILED", "FailOpen", "fail_open", "refill_failed"]

#: Logged (with the traceback) when a refill of the prefetch pool fails unexpectedly.
REFILL_FAILED = "prefetch refill failed; retrying on the next first visit"


class FailOpen:
    """The boundary: ``with`` it around our work; what raises in it is logged as *message*.

    Stateless but for its message, so one instance serves every request,
    thread and task.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if kind is None or not issubclass(kind, Exception):
            return False
        logger.error(self.message, exc_info=(kind, error, traceback))  # type: ignore[arg-type]
        return True

    def caught(self) -> None:
        """Log the exception being handled, as the block does (for an ``except`` on the hot path)."""
        self.__exit__(*sys.exc_info())


#: Around our work on a request: ``INTERNAL_ERROR``, and the request is served without an id.
fail_open = FailOpen(INTERNAL_ERROR)
#: Around one refill of the prefetch pool.
refill_failed = FailOpen(REFILL_FAILED)
