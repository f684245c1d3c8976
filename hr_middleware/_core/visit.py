"""The outcome of one request, as plain data: the id, where it came from or why there is none, what to write."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from .cookies import CookieWrite

__all__ = ["NO_COOKIES", "NoIdReason", "Origin", "Visit"]


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
}


#: The cookies of a visit that writes none (shared, read-only: a write makes the visit its own dict).
NO_COOKIES: Mapping[str, CookieWrite] = MappingProxyType({})


class Visit:
    """One request's identity: the id, its origin or the reason for none, and what the response must carry.

    Plain data, filled in by :class:`~hr_middleware._core.decide.TrackingPolicy`;
    it refers to nothing else (no request, no mint, no loop). The fields that
    every request reads are the object's own, set by ``__init__``; those that
    only a first visit or a consent change sets keep their defaults on the
    class. (No field that ``__init__`` sets has a class default too: an
    instance attribute that shadows a class attribute is read the slow way on
    CPython 3.12 and later; see ``docs/performance.md``.)
    """

    #: Why there is no id; None while there is one, or before it is decided.
    reason: NoIdReason | None = None
    #: True once a mint was attempted for this request (never two).
    minted = False
    #: Whether written cookies get ``Secure``; resolved when first needed.
    secure: bool | None = None

    def __init__(self) -> None:
        #: The visitor's id, :data:`~hr_middleware.OPT_OUT_ID`, or None.
        self.tracking_user_id: str | None = None
        #: Where the id came from; None when there is no id.
        self.origin: Origin | None = None
        #: Cookies to set or delete on the response, by name.
        self.cookies: Mapping[str, CookieWrite] = NO_COOKIES
        #: True once the app read the id: the response varies on Cookie.
        self.accessed = False
        #: True while a mint is due and has not been done.
        self.must_mint = False

    def write(self, cookie: CookieWrite) -> None:
        """Add *cookie* to what the response must carry (one per name)."""
        if self.cookies is NO_COOKIES:
            self.cookies = {}
        self.cookies[cookie.name] = cookie  # type: ignore[index]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.tracking_user_id!r} origin={self.origin!s} cookies={list(self.cookies)}>"
