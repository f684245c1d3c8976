"""The contextvar behind :func:`get_tracking_user_id`: the visit of the request being served."""

from __future__ import annotations

from contextvars import ContextVar
from typing import NamedTuple

from .facts import NoIdReason
from .policy import Origin, Visit

__all__ = ["VISIT_KEY", "TrackingUser", "current_visit", "get_tracking_user", "get_tracking_user_id"]

_visit: ContextVar[Visit | None] = ContextVar("hr_middleware.visit", default=None)

#: The mark an adapter leaves in the WSGI environ or ASGI scope of a request
#: it decided, so that a second instance (nested, or Django's inside ours)
#: takes that visit from the context instead of deciding again: one visit, one
#: mint. A mark, not the visit: the visit refers to the environ, and a cycle
#: would leave every request to the garbage collector.
VISIT_KEY = "hello_retail.decided"


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


def get_tracking_user_id() -> str | None:
    """The current request's Hello Retail trackingUserId.

    Returns the visitor's id, :data:`~hr_middleware.OPT_OUT_ID` when the
    visitor declined tracking, or None outside a request, for requests that do
    not mint (assets, bots, XHR) and when Hello Retail could not be reached.
    Works in sync and async code, in any framework, inside the middleware.
    Reading it marks the response ``Vary: Cookie``.
    """
    visit = _visit.get()
    return None if visit is None else visit.read_id()


def get_tracking_user() -> TrackingUser:
    """The current visitor's id, its origin, and the reason when there is no id.

    Outside a request: ``TrackingUser(None, None, NoIdReason.OUTSIDE_REQUEST)``.
    """
    visit = _visit.get()
    if visit is None:
        return _OUTSIDE
    tracking_user_id = visit.read_id()
    if tracking_user_id is None:
        return TrackingUser(None, None, visit.reason or NoIdReason.INTERNAL_ERROR)
    return TrackingUser(tracking_user_id, visit.origin)


_OUTSIDE = TrackingUser(None, None, NoIdReason.OUTSIDE_REQUEST)


def current_visit() -> Visit | None:
    """The :class:`Visit` of the request being served (for adapters and helpers)."""
    return _visit.get()


set_visit = _visit.set
reset_visit = _visit.reset
