"""Hello Retail in memory: the fakes the transports answer from without a socket.

:class:`hr_middleware.testing.FakeHelloRetail` started with ``in_memory=True``
registers here under its ``api_url`` (a host under ``.invalid``, which never
resolves); both transports ask :func:`answerer` before they open a connection.
Nothing is registered unless a test does so: in production the check is one
look at an empty dict per call to Hello Retail (never per request).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .transport import Answer

__all__ = ["Answerer", "answerer", "register", "unregister"]


class Answerer(Protocol):
    """What answers a POST in memory, as a transport would: an :class:`Answer`, or the
    transport's error (a timeout, a refused connection, an answer too large)."""

    def __call__(
        self, url: str, body: bytes, *, timeout: float, headers: Mapping[str, str] | None, max_bytes: int | None
    ) -> Answer: ...


_answerers: dict[str, Answerer] = {}
_lock = threading.Lock()


def register(base_url: str, answer: Answerer) -> None:
    """Answer every call below *base_url* with *answer*."""
    with _lock:
        _answerers[base_url.rstrip("/") + "/"] = answer


def unregister(base_url: str) -> None:
    """Stop answering below *base_url*."""
    with _lock:
        _answerers.pop(base_url.rstrip("/") + "/", None)


def answerer(url: str) -> Answerer | None:
    """What answers *url* in memory, or None (the usual case: a real call)."""
    if not _answerers:
        return None
    for base, answer in list(_answerers.items()):
        if url.startswith(base):
            return answer
    return None
