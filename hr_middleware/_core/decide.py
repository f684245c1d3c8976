"""Should this request mint? The behaviour table (DESIGN.md, the README's "How it works") as code.

:meth:`TrackingPolicy.decide` is the one function that answers it: the
request's facts in, a :class:`~hr_middleware._core.visit.Decision` out (the id
and its origin, or a mint due, or the reason there is neither, and the cookies
to write). Pure: no I/O, no logging, nothing changed but the value it returns.
The only exceptions it catches are those of the shop's own hooks
(``mint_when``, ``consent``), which it hands back in the decision for the
serving layer to log. Minting is the caller's I/O: a decision with ``mint``
set is followed by :meth:`TrackingPolicy.minted` with the outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .cookies import (
    CookieWrite,
    cookie_write,
    dated_id_or_none,
    dated_value,
    find_cookie,
    fresh_tokens,
    period_token,
    valid_id_or_none,
)
from .customers import CustomerLinks
from .facts import RequestFacts, not_a_page_navigation
from .ids import OPT_OUT_ID, is_valid_id
from .log import BAD_SIGNATURE, CONSENT_HOOK_FAILED, MINT_WHEN_FAILED, NOT_MINTED, TEST_CLIENT_HINT
from .settings import Settings
from .visit import Decision, NoIdReason, Note, Origin

__all__ = ["TrackingPolicy"]

_COOKIE = Origin.COOKIE


def _any_value(value: str) -> str:
    return value


class TrackingPolicy:
    """The decisions for one :class:`Settings`: which id, whether to mint, which cookies to write."""

    __slots__ = (
        "settings",
        "_server_key",
        "_sdk_key",
        "_asks_consent",
        "_trusts_sdk",
        "_one_website",
        "returning_shortcut",
        "_links",
        "clock",
        "renew_after",
        "_signer",
    )

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        # The customer-link cookie (hr_middleware.customers) goes with the id cookies when consent does.
        self._links = CustomerLinks(settings)
        #: The time renewal reads (Unix seconds); tests give their own.
        self.clock = clock
        #: The renewal period in seconds (None: no renewal): ``renew_after``, and at most
        #: half ``max_age`` so that a returning visitor's cookies are renewed before they expire.
        self.renew_after = (
            None if settings.renew_after is None else max(1, min(settings.renew_after, settings.max_age // 2))
        )
        self._signer = None if settings.signer is None else settings.signer.on_clock(clock)
        self._server_key = settings.cookie_name + "="
        self._sdk_key = settings.sdk_cookie_name + "="
        self._asks_consent = settings.consent is not None or settings.respect_gpc
        self._trusts_sdk = settings.trusts_sdk_cookie
        self._one_website = not settings.website_choice.several
        #: Whether the usual returning visitor may be recognised before the request's facts
        #: are read (:mod:`~hr_middleware._core.returning`): no consent to ask, and no
        #: signature (the server cookie holds the bare id).
        self.returning_shortcut = not self._asks_consent and settings.signer is None

    # -- one request ---------------------------------------------------------------

    def decide(self, request: RequestFacts, *, may_mint: bool = True) -> Decision:
        """The decision for *request*: the behaviour table, row by row.

        With *may_mint* False (a WebSocket handshake, whose response cannot
        carry cookies) the id is only read: nothing is minted or written.
        """
        notes: tuple[Note, ...] = ()
        if self._asks_consent:
            consents, notes = self._consents(request)
            if not consents:
                deletions = self._deletions(request) if may_mint else ()
                return Decision(OPT_OUT_ID, Origin.OPT_OUT, None, deletions, False, notes)
        return self._from_cookies(request, notes, may_mint=may_mint)

    def _from_cookies(self, request: RequestFacts, notes: tuple[Note, ...], *, may_mint: bool) -> Decision:
        """The behaviour table's rows once consent allows tracking: the id the cookies hold, or a first visit."""
        header = request.cookie_header
        sdk = find_cookie(header, self._sdk_key, valid_id_or_none) if header else None
        server, resign, issued = self._server_id(header) if header else (None, False, None)
        if sdk is not None and server == sdk and not resign:
            # The usual returning visitor: both cookies hold one id; nothing to write, unless they are due a renewal.
            renewal = self._both(request, sdk) if may_mint and self._renews(request, issued) else ()
            return Decision(sdk, _COOKIE, None, renewal, False, notes)
        if (
            server is None
            and self.settings.signer is not None
            and find_cookie(header, self._server_key, _any_value) is not None
        ):
            notes += (Note(logging.INFO, BAD_SIGNATURE, (self.settings.cookie_name,)),)
        if sdk is not None and self._trusts_sdk:
            # The page's JavaScript reports events under the SDK cookie's id, so it
            # wins; the server cookie follows it.
            origin = _COOKIE if server == sdk else Origin.SDK_COOKIE
            follow: tuple[CookieWrite, ...] = ()
            if may_mint:
                # Our cookie says when the SDK cookie was last set too: when it holds another id, never.
                if self._renews(request, issued if server == sdk else None):
                    follow = self._both(request, sdk)
                else:
                    follow = (self._cookie(request, self.settings.cookie_name, sdk),)
            return Decision(sdk, origin, None, follow, False, notes)
        if server is not None:
            if may_mint and self._renews(request, issued):
                return Decision(server, _COOKIE, None, self._both(request, server), False, notes)
            writes: list[CookieWrite] = []
            if resign:
                writes.append(self._cookie(request, self.settings.cookie_name, server))
            if self.settings.share_with_sdk and sdk != server:
                writes.append(self._cookie(request, self.settings.sdk_cookie_name, server))
            return Decision(server, _COOKIE, None, tuple(writes) if may_mint else (), False, notes)
        if not may_mint:
            return Decision(None, None, NoIdReason.WEBSOCKET, (), False, notes)
        return self._first_visit(request, notes)

    def _server_id(self, header: str) -> tuple[str | None, bool, str | None]:
        """The server cookie's id (None if absent or invalid), whether to sign it again (an
        old key), and the token of the period it was set in (None if it does not say)."""
        signer = self._signer
        if signer is None:
            found = find_cookie(header, self._server_key, dated_id_or_none)
            return (None, False, None) if found is None else (found[0], False, found[1])
        signed = find_cookie(header, self._server_key, signer.unsign_dated)
        if signed is None:
            return None, False, None
        tracking_user_id, stale, signed_at = signed
        return tracking_user_id, stale, None if self.renew_after is None else period_token(signed_at, self.renew_after)

    def _renews(self, request: RequestFacts, token: str | None) -> bool:
        """Are a returning visitor's cookies, set in the period of *token* (None: unknown),
        due a renewal that *request* may carry? On a page navigation by a browser only
        (:func:`~hr_middleware.is_page_navigation`): a renewal makes the response private,
        as a first visit's cookies do, and an asset, an XHR call or a bot's request need none."""
        interval = self.renew_after
        if interval is None or (token is not None and token in fresh_tokens(self.clock(), interval)[0]):
            return False
        return not_a_page_navigation(request) is None

    def _first_visit(self, request: RequestFacts, notes: tuple[Note, ...]) -> Decision:
        """No id in the cookies: mint (for the request's website), or say why not."""
        rule = self.settings.mint_when
        if rule is None:  # the default rule, which says why not: a bot, or not a page
            reason, hint = not_a_page_navigation(request), TEST_CLIENT_HINT
        else:
            try:
                reason, hint = (None if rule(request) else NoIdReason.MINT_WHEN), ""
            except Exception as exc:  # the shop's hook: the serving layer logs it
                notes += (Note(logging.ERROR, MINT_WHEN_FAILED, (), exc),)
                return Decision(None, None, NoIdReason.MINT_WHEN, (), False, notes)
        if reason is not None:  # at DEBUG: what a test that expected a mint needs to hear
            said = (request.method, request.path[:200], reason.explanation, hint)
            return Decision(None, None, reason, (), False, (*notes, Note(logging.DEBUG, NOT_MINTED, said)))
        return self._mint_due(request, notes)

    def _mint_due(self, request: RequestFacts, notes: tuple[Note, ...]) -> Decision:
        """A mint for the request's website, or no id when it has none."""
        website_uuid, note = self.website(request)
        if note is not None:
            notes += (note,)
        if website_uuid is None:
            return Decision(None, None, NoIdReason.NO_WEBSITE, (), False, notes)
        return Decision(None, None, None, (), True, notes, website_uuid)

    def website(self, request: RequestFacts) -> tuple[str | None, Note | None]:
        """The Hello Retail website UUID of *request* (None: it has none), and what to log about it."""
        choice = self.settings.website_choice
        if self._one_website:
            return choice.default, None
        return choice.choose(request)

    def minted(self, request: RequestFacts, tracking_user_id: str | None) -> Decision:
        """The decision once the mint a decision asked for is done: the new id
        (*tracking_user_id*, None when the mint failed) and both cookies."""
        if tracking_user_id is None or not is_valid_id(tracking_user_id):
            return Decision(None, None, NoIdReason.UNREACHABLE)
        return Decision(tracking_user_id, Origin.MINTED, None, self._both(request, tracking_user_id))

    # -- consent ---------------------------------------------------------------------

    def consent(self, request: RequestFacts) -> bool | None:
        """What the request's consent says, as the decision reads it: None when no consent is
        asked (no ``consent`` option, no ``respect_gpc``), else whether it is given (a hook
        that raises counts as unknown; the decision logged it already)."""
        return self._consents(request)[0] if self._asks_consent else None

    def _consents(self, request: RequestFacts) -> tuple[bool, tuple[Note, ...]]:
        """Does the visitor consent to tracking, and what to log about asking."""
        settings = self.settings
        if settings.respect_gpc and request.headers.get("sec-gpc", "").strip() == "1":
            return False, ()
        if settings.consent is None:
            return True, ()
        try:
            answer = settings.consent(request)
        except Exception as exc:  # the shop's hook: the serving layer logs it
            return settings.consent_unknown, (Note(logging.ERROR, CONSENT_HOOK_FAILED, (), exc),)
        return (settings.consent_unknown if answer is None else bool(answer)), ()

    def _deletions(self, request: RequestFacts) -> tuple[CookieWrite, ...]:
        """Deletions of the cookies of ours the visitor holds (consent declined): the id
        cookies and the customer-link cookie."""
        header = request.cookie_header
        if not header:
            return ()
        deletions = tuple(
            self._cookie(request, name, None)
            for name in (self.settings.cookie_name, self.settings.sdk_cookie_name)
            if find_cookie(header, name + "=", _any_value) is not None
        )
        if find_cookie(header, self._links.cookie_name + "=", _any_value) is not None:
            deletions += (self._links.cookie(request, None),)
        return deletions

    def grant(
        self,
        request: RequestFacts,
        tracking_user_id: str | None,
        origin: Origin | None,
        reason: NoIdReason | None,
        tried_mint: bool,
    ) -> Decision:
        """Consent given during the request, whose visit has *tracking_user_id* from
        *origin* (or none, for *reason*): keep the id the visitor has and write both
        cookies, else a mint is due (unless the request tried one already)."""
        if origin is Origin.OPT_OUT:
            # Consent was missing when the request began, so the cookies were not read
            # then. An id they hold is the visitor's; a mint would split them.
            decision = self._from_cookies(request, (), may_mint=False)
            tracking_user_id, origin, reason = decision.tracking_user_id, decision.origin, None
        if tracking_user_id is not None:
            return Decision(tracking_user_id, origin, None, self._both(request, tracking_user_id))
        if tried_mint or reason is NoIdReason.NO_WEBSITE:
            return Decision(None, None, reason or NoIdReason.UNREACHABLE)
        return self._mint_due(request, ())

    def revoke(self, request: RequestFacts) -> Decision:
        """Consent withdrawn during the request: both id cookies and the customer-link cookie
        deleted (each whether or not the request sent it: the response may be writing it), the
        opt-out id."""
        deletions = (
            self._cookie(request, self.settings.cookie_name, None),
            self._cookie(request, self.settings.sdk_cookie_name, None),
            self._links.cookie(request, None),
        )
        return Decision(OPT_OUT_ID, Origin.OPT_OUT, None, deletions)

    # -- cookies -----------------------------------------------------------------------

    def _both(self, request: RequestFacts, tracking_user_id: str) -> tuple[CookieWrite, ...]:
        server = self._cookie(request, self.settings.cookie_name, tracking_user_id)
        if not self.settings.share_with_sdk:
            return (server,)
        return server, self._cookie(request, self.settings.sdk_cookie_name, tracking_user_id)

    def _cookie(self, request: RequestFacts, name: str, tracking_user_id: str | None) -> CookieWrite:
        """The write of cookie *name* (a deletion when *tracking_user_id* is None)."""
        settings = self.settings
        value = tracking_user_id
        if value is not None and name == settings.cookie_name:
            # Our cookie says when it was set (the signature's time, or a date after the id): renewal reads it.
            if self._signer is not None:
                value = self._signer.sign(value)
            elif self.renew_after is not None:
                value = dated_value(value, period_token(self.clock(), self.renew_after))
        return cookie_write(settings, request, name, value)
