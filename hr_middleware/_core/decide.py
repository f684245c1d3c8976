"""The behaviour table (the README's "What it does on each request") as code: facts in, a :class:`Visit` filled in.

Pure: it reads the request's facts and the settings, and writes only into the
visit it is given. Minting is the caller's I/O: when ``visit.must_mint`` is
True after :meth:`TrackingPolicy.decide`, the caller mints and hands the
outcome to :meth:`TrackingPolicy.adopt_minted`.
"""

from __future__ import annotations

from .cookies import CookieWrite, find_cookie, valid_id_or_none
from .facts import RequestFacts, is_page_navigation, not_a_page_navigation
from .ids import OPT_OUT_ID, is_valid_id
from .log import BAD_SIGNATURE, CONSENT_HOOK_FAILED, MINT_WHEN_FAILED, logger
from .settings import Settings
from .visit import NO_COOKIES, NoIdReason, Origin, Visit

__all__ = ["TrackingPolicy"]


def _accept_any(value: str) -> str:
    return value


class TrackingPolicy:
    """The decisions for one :class:`Settings`: which id, whether to mint, which cookies to write."""

    __slots__ = ("settings", "_server_key", "_sdk_key", "_check_consent", "_trust_sdk", "fast")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._server_key = settings.cookie_name + "="
        self._sdk_key = settings.sdk_cookie_name + "="
        self._check_consent = settings.consent is not None or settings.respect_gpc
        self._trust_sdk = settings.trusts_sdk_cookie
        #: Whether the usual returning visitor may be decided by the hot path
        #: (:mod:`~hr_middleware._core.returning`): no consent to ask, and no
        #: signature (the server cookie holds the bare id).
        self.fast = not self._check_consent and settings.signer is None

    # -- request phase ---------------------------------------------------

    def decide(self, visit: Visit, request: RequestFacts, *, may_mint: bool = True) -> None:
        """Fill in *visit* for *request*: the id and its origin, or a mint due, and the cookies to write.

        With *may_mint* False (a WebSocket handshake, whose response cannot
        carry cookies) the id is only read: nothing is minted and no cookie is
        to be written.
        """
        if self._check_consent and not self._consents(request):
            self._opt_out(visit, request)
        else:
            self._from_cookies(visit, request, may_mint=may_mint)
        if not may_mint:
            visit.cookies = NO_COOKIES
            if visit.tracking_user_id is None:
                visit.reason = NoIdReason.WEBSOCKET

    def _from_cookies(self, visit: Visit, request: RequestFacts, *, may_mint: bool) -> None:
        """The behaviour table's rows, once consent allows tracking."""
        header = request.cookie_header
        if not header:
            if may_mint:
                self._first_visit(visit, request)
            return
        settings = self.settings
        sdk = find_cookie(header, self._sdk_key, valid_id_or_none)
        if settings.signer is None:
            server, resign = find_cookie(header, self._server_key, valid_id_or_none), False
        else:
            server, resign = self._read_signed_cookie(header)
        if sdk is not None and self._trust_sdk:
            # The page's JavaScript reports events under the SDK cookie's id, so
            # it wins; the server cookie follows it. With a secret key, only if
            # the shop chose to trust the unsigned cookie: otherwise the signed
            # id wins below and the SDK cookie is rewritten to it (or, with no
            # signed id, a new one is minted).
            visit.tracking_user_id = sdk
            visit.origin = Origin.COOKIE if server == sdk else Origin.SDK_COOKIE
            if server != sdk or resign:
                self._write(visit, request, settings.cookie_name, sdk)
        elif server is not None:
            visit.tracking_user_id = server
            visit.origin = Origin.COOKIE
            if resign:
                self._write(visit, request, settings.cookie_name, server)
            if settings.share_with_sdk and sdk != server:
                self._write(visit, request, settings.sdk_cookie_name, server)
        elif may_mint:
            self._first_visit(visit, request)

    def _read_signed_cookie(self, header: str) -> tuple[str | None, bool]:
        """The signed server cookie's id (None if absent or invalid) and whether to re-sign it."""
        signer = self.settings.signer
        assert signer is not None
        found = find_cookie(header, self._server_key, signer.unsign)
        if found is None:
            if find_cookie(header, self._server_key, _accept_any) is not None:
                logger.info(BAD_SIGNATURE, self.settings.cookie_name)
            return None, False
        return found

    def _first_visit(self, visit: Visit, request: RequestFacts) -> None:
        mint_when = self.settings.mint_when
        try:
            if mint_when is is_page_navigation:
                # The default rule, asked why: a bot and an asset are told apart.
                visit.reason = not_a_page_navigation(request)
                visit.must_mint = visit.reason is None
            else:
                visit.must_mint = bool(mint_when(request))
        except Exception:
            logger.exception(MINT_WHEN_FAILED)
            visit.must_mint = False
        if not visit.must_mint and visit.reason is None:
            visit.reason = NoIdReason.MINT_WHEN

    def adopt_minted(self, visit: Visit, request: RequestFacts, tracking_user_id: str | None) -> None:
        """Record the outcome of this visit's mint: a new id, or None on failure."""
        visit.must_mint = False
        visit.minted = True
        if tracking_user_id is None or not is_valid_id(tracking_user_id):
            visit.reason = NoIdReason.UNREACHABLE
            return
        visit.reason = None
        visit.tracking_user_id = tracking_user_id
        visit.origin = Origin.MINTED
        self._write_both(visit, request, tracking_user_id)

    # -- consent -------------------------------------------------------------

    def _consents(self, request: RequestFacts) -> bool:
        settings = self.settings
        if settings.respect_gpc and request.headers.get("sec-gpc", "").strip() == "1":
            return False
        if settings.consent is None:
            return True
        try:
            answer = settings.consent(request)
        except Exception:
            logger.exception(CONSENT_HOOK_FAILED)
            answer = None
        return settings.consent_unknown if answer is None else bool(answer)

    def _opt_out(self, visit: Visit, request: RequestFacts) -> None:
        visit.tracking_user_id = OPT_OUT_ID
        visit.origin = Origin.OPT_OUT
        visit.reason = None
        visit.must_mint = False
        header = request.cookie_header
        if header:
            for name in (self.settings.cookie_name, self.settings.sdk_cookie_name):
                if find_cookie(header, name + "=", _accept_any) is not None:
                    self._write(visit, request, name, None)

    def revoke(self, visit: Visit, request: RequestFacts) -> None:
        """Consent withdrawn during the request: delete both cookies, expose the opt-out id."""
        visit.tracking_user_id = OPT_OUT_ID
        visit.origin = Origin.OPT_OUT
        visit.reason = None
        visit.must_mint = False
        visit.cookies = NO_COOKIES
        self._write(visit, request, self.settings.cookie_name, None)
        self._write(visit, request, self.settings.sdk_cookie_name, None)

    def grant_needs_mint(self, visit: Visit, request: RequestFacts) -> bool:
        """Consent given during the request. Returns True when a mint is needed.

        A visit that already has a real id keeps it and gets its cookies
        written; one without an id needs a mint unless this request already
        tried one.
        """
        if visit.origin is Origin.OPT_OUT:
            # Consent was missing when the request began: the cookies were not
            # read then. An id they hold is the visitor's; a mint would split them.
            visit.tracking_user_id = None
            visit.origin = None
            visit.cookies = NO_COOKIES
            self._from_cookies(visit, request, may_mint=False)
        if visit.tracking_user_id is not None:
            self._write_both(visit, request, visit.tracking_user_id)
            return False
        return not visit.minted

    # -- cookies ---------------------------------------------------------------

    def _write_both(self, visit: Visit, request: RequestFacts, tracking_user_id: str) -> None:
        self._write(visit, request, self.settings.cookie_name, tracking_user_id)
        if self.settings.share_with_sdk:
            self._write(visit, request, self.settings.sdk_cookie_name, tracking_user_id)

    def _write(self, visit: Visit, request: RequestFacts, name: str, tracking_user_id: str | None) -> None:
        settings = self.settings
        if visit.secure is None:
            visit.secure = request.is_secure if settings.secure == "auto" else settings.secure
        value = tracking_user_id
        if value is not None and name == settings.cookie_name and settings.signer is not None:
            value = settings.signer.sign(value)
        visit.write(
            CookieWrite(
                name,
                value,
                visit.secure,
                settings.max_age,
                settings.path,
                settings.domain,
                settings.httponly,
                settings.samesite,
            )
        )
