"""What the core decides for one request, as values: the id, where it came from or why there is none, what to write."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import NamedTuple

from .cookies import CookieWrite

__all__ = ["NO_COOKIES", "Decision", "NoIdReason", "Note", "Origin"]


class Origin(str, Enum):
    """Where the id of a visit came from."""

    #: Our server cookie.
    COOKIE = "cookie"
    #: Hello Retail's own JavaScript cookie (``hello_retail_id``).
    SDK_COOKIE = "sdk_cookie"
    #: Minted from Hello Retail on this request.
    MINTED = "minted"
    #: The visitor declined tracking; the id is :data:`~hr_middleware.OPT_OUT_ID`.
    OPT_OUT = "opt_out"

    def __str__(self) -> str:
        return self.value


class NoIdReason(str, Enum):
    """Why a request has no tracking id (:attr:`hr_middleware.TrackingUser.reason`)."""

    #: Not inside a request that the middleware serves.
    OUTSIDE_REQUEST = "outside_request"
    #: The User-Agent is a bot, crawler, link preview or HTTP library.
    BOT = "bot"
    #: Not a page navigation: an asset, an XHR/fetch call, a form post.
    NOT_A_PAGE = "not_a_page"
    #: The shop's own ``mint_when`` said no (or raised).
    MINT_WHEN = "mint_when"
    #: A WebSocket handshake: its response cannot carry a cookie, so it never mints.
    WEBSOCKET = "websocket"
    #: Hello Retail could not be reached in time, failed, or answered garbage.
    UNREACHABLE = "unreachable"
    #: The middleware could not serve this request (a failure or invalid options; logged).
    INTERNAL_ERROR = "internal_error"
    #: The ``websites`` option names no Hello Retail website for this request's host or path.
    NO_WEBSITE = "no_website"

    @property
    def explanation(self) -> str:
        """The reason in words, for a page or a log line."""
        return _EXPLANATIONS[self]

    def __str__(self) -> str:
        return self.value


_EXPLANATIONS = {
    NoIdReason.OUTSIDE_REQUEST: "this code does not run inside a request that the middleware serves",
    NoIdReason.BOT: "the User-Agent is a bot, crawler, link preview or HTTP library such as curl",
    NoIdReason.NOT_A_PAGE: "the request is not a page navigation (an asset, an XHR/fetch call, a form post)",
    NoIdReason.MINT_WHEN: "the shop's mint_when option said not to mint for this request",
    NoIdReason.WEBSOCKET: "a WebSocket handshake cannot carry a cookie, so it never mints",
    NoIdReason.UNREACHABLE: "Hello Retail could not be reached in time, failed, or answered garbage",
    NoIdReason.INTERNAL_ERROR: "the middleware could not serve this request (see the log)",
    NoIdReason.NO_WEBSITE: "the websites option names no Hello Retail website for this request's host or path",
}


#: The cookies of a visit that writes none (shared and read-only).
NO_COOKIES: Mapping[str, CookieWrite] = MappingProxyType({})


class Note(NamedTuple):
    """Something to log about a decision (the core logs nothing; the serving layer logs its notes):
    a hook of the shop's that raised, a cookie with a bad signature."""

    #: The :mod:`logging` level.
    level: int
    #: One of the messages of :mod:`hr_middleware._core.log`, with ``%s`` for *args*.
    message: str
    args: tuple[object, ...] = ()
    #: The exception a hook raised (logged with its traceback).
    error: Exception | None = None


class Decision(NamedTuple):
    """What the core decided for one request: a value, made by
    :class:`~hr_middleware._core.decide.TrackingPolicy` and read by the serving layer.

    Either an id (``tracking_user_id`` and its ``origin``), or a mint due
    (``mint``: the caller mints and hands the outcome to
    :meth:`~hr_middleware._core.decide.TrackingPolicy.minted`), or neither and
    the ``reason``. ``cookies`` are what the response must write or delete.
    """

    #: The visitor's id, :data:`~hr_middleware.OPT_OUT_ID`, or None.
    tracking_user_id: str | None = None
    #: Where the id came from; None when there is no id.
    origin: Origin | None = None
    #: Why there is no id (None with an id, or while a mint is due).
    reason: NoIdReason | None = None
    #: Cookies to set or delete on the response.
    cookies: tuple[CookieWrite, ...] = ()
    #: True when a mint is due.
    mint: bool = False
    #: What to log about it (the core logs nothing: the serving layer does).
    notes: tuple[Note, ...] = ()
    #: The website UUID to mint for, when a mint is due (the request's website).
    website_uuid: str | None = None
