"""Linking a visitor to the shop's customer, decided: is a link due, and the cookie that remembers one.

Pure: no I/O, no logging. :meth:`CustomerLinks.decide` answers one call of
``hr_middleware.customers.link_customer()``: the visitor opted out, has no id,
was linked to this customer already (the link cookie says so), or a link is
due, with the cookie to write once Hello Retail has it. The serving side
(:mod:`hr_middleware.customers`) makes the call and writes the cookie.

The link cookie never holds the customer id: it holds a digest of the
request's website, the visitor's id and the customer id, keyed with the first
``secret_key`` when there is one (HMAC-SHA256), else a plain SHA-256 of them.
Without a key, a customer id that can be guessed (a small number) can be
found from the cookie and the id by trying every candidate; with a key it
cannot. Only the digest's first 128 bits are kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import NamedTuple

from .cookies import CookieWrite, cookie_write, find_cookie
from .facts import RequestFacts
from .ids import OPT_OUT_ID
from .settings import Settings
from .visit import Origin

__all__ = [
    "LINK_COOKIE_SUFFIX",
    "LINK_FAILED",
    "LINK_UNEXPECTED",
    "CustomerLinks",
    "LinkOutcome",
    "LinkPlan",
    "customer_key",
]

#: The link cookie is named after the server cookie: ``helloRetailTrackingUserId_link`` by
#: default (a ``__Host-``/``__Secure-`` name keeps its prefix, and the attributes it needs).
LINK_COOKIE_SUFFIX = "_link"
#: The longest customer id accepted, in characters (a shop's id is far shorter).
MAX_CUSTOMER_ID = 256
#: What the digest's version says; a later format gets another.
_VERSION = "1."
_LABEL = b"hr_middleware.customer-link\x00"

#: Hello Retail refused or could not be reached (WARNING): nothing is remembered, so the next login tries again.
LINK_FAILED = "Hello Retail customer link failed (%s); trying again at the customer's next login"
#: Our own failure while linking (ERROR, with the traceback); the page is served.
LINK_UNEXPECTED = "customer link failed unexpectedly; trying again at the customer's next login"


class LinkOutcome(str, Enum):
    """What :func:`hr_middleware.customers.link_customer` did."""

    #: Hello Retail linked the visitor's id to the customer on this request; the link cookie remembers it.
    LINKED = "linked"
    #: The link cookie says this visitor and customer were linked already: no call.
    ALREADY_LINKED = "already_linked"
    #: The visitor declined tracking (:data:`~hr_middleware.OPT_OUT_ID`): never linked.
    OPTED_OUT = "opted_out"
    #: The request has no id to link (not a page and no cookie yet, a bot, Hello Retail
    #: unreachable when it minted): linked at a later login.
    NO_ID = "no_id"
    #: Hello Retail refused or could not be reached (logged): linked at a later login.
    FAILED = "failed"
    #: Called outside a request the middleware serves (a script, a test's ``force_login``): nothing done.
    OUTSIDE_REQUEST = "outside_request"

    def __str__(self) -> str:
        return self.value


class LinkPlan(NamedTuple):
    """One link decision: *outcome* None means a link is due, and *cookie* is written once
    Hello Retail has it; otherwise *outcome* is final and *cookie* (if any) is written now."""

    outcome: LinkOutcome | None
    cookie: CookieWrite | None = None


def customer_key(customer_id: object) -> str:
    """The customer id as sent and digested: a string as it is, an int in decimal.

    Raises:
        TypeError: neither a string nor an int (a bool, None: a bug in the caller).
        ValueError: an empty string, or one longer than :data:`MAX_CUSTOMER_ID`.
    """
    if isinstance(customer_id, bool) or not isinstance(customer_id, (str, int)):
        raise TypeError(
            f"customer_id: expected the shop's customer id, a string or an int, got {type(customer_id).__name__}"
        )
    key = str(customer_id)
    if not key or len(key) > MAX_CUSTOMER_ID:
        raise ValueError(f"customer_id: expected 1 to {MAX_CUSTOMER_ID} characters, got {len(key)}")
    return key


def _secret_keys(secret_key: object) -> tuple[bytes, ...]:
    """The secret keys of the settings as bytes, newest first (none without ``secret_key``)."""
    if secret_key is None:
        return ()
    keys: Sequence[object] = [secret_key] if isinstance(secret_key, (str, bytes)) else secret_key  # type: ignore[assignment]
    return tuple(key.encode() if isinstance(key, str) else key for key in keys if isinstance(key, (str, bytes)))


class CustomerLinks:
    """The link decisions for one :class:`Settings`."""

    __slots__ = ("settings", "cookie_name", "_cookie_key", "_keys")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: The cookie that remembers the last link of this browser.
        self.cookie_name = settings.cookie_name + LINK_COOKIE_SUFFIX
        self._cookie_key = self.cookie_name + "="
        self._keys = _secret_keys(settings.secret_key)

    def digest(
        self, tracking_user_id: str, customer: str, key: bytes | None = None, *, website_uuid: str | None = None
    ) -> str:
        """The link cookie's value for *tracking_user_id* and *customer* on *website_uuid* (default:
        ``website_uuid``'s), keyed with *key*, or the first secret key."""
        if key is None and self._keys:
            key = self._keys[0]
        website = self.settings.website_uuid if website_uuid is None else website_uuid
        message = b"\x00".join((_LABEL, website.encode(), tracking_user_id.encode(), customer.encode()))
        mac = hmac.new(key, message, hashlib.sha256).digest() if key is not None else hashlib.sha256(message).digest()
        return _VERSION + base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode("ascii")

    def _remembers(self, value: str | None, tracking_user_id: str, customer: str, website_uuid: str | None) -> bool:
        if not value:
            return False
        if not self._keys:
            return hmac.compare_digest(value, self.digest(tracking_user_id, customer, website_uuid=website_uuid))
        # Every key verifies (rotation): a link remembered under an older key still counts.
        return any(
            hmac.compare_digest(value, self.digest(tracking_user_id, customer, key, website_uuid=website_uuid))
            for key in self._keys
        )

    def decide(
        self,
        request: RequestFacts,
        written: Mapping[str, CookieWrite],
        tracking_user_id: str | None,
        origin: Origin | None,
        customer: str,
        *,
        website_uuid: str | None = None,
    ) -> LinkPlan:
        """Whether the visitor of *request* (its id *tracking_user_id* from *origin*) is to be
        linked to *customer* on *website_uuid* (the request's website; default: ``website_uuid``'s).
        *written* are the cookies the response already carries (a link made earlier in this
        request counts). A link on one website is not one on another: a ``websites`` callable
        may give one id to two of them."""
        held = find_cookie(request.cookie_header, self._cookie_key, _any_value) if request.cookie_header else None
        if tracking_user_id == OPT_OUT_ID or origin is Origin.OPT_OUT:
            # Never linked; a link cookie from before the visitor declined goes.
            return LinkPlan(LinkOutcome.OPTED_OUT, self.cookie(request, None) if held is not None else None)
        if tracking_user_id is None:
            return LinkPlan(LinkOutcome.NO_ID)
        pending = written.get(self.cookie_name)
        current = pending.value if pending is not None else held
        if self._remembers(current, tracking_user_id, customer, website_uuid):
            return LinkPlan(LinkOutcome.ALREADY_LINKED)
        return LinkPlan(None, self.cookie(request, self.digest(tracking_user_id, customer, website_uuid=website_uuid)))

    def cookie(self, request: RequestFacts, value: str | None) -> CookieWrite:
        """The write of the link cookie (a deletion when *value* is None): the id cookies'
        attributes, their ``Path`` and ``Domain`` on the request's website included, but
        ``HttpOnly`` (no script needs it)."""
        return cookie_write(self.settings, request, self.cookie_name, value, httponly=True)


def _any_value(value: str) -> str:
    return value
