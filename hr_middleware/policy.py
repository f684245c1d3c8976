"""The sans-I/O decision: request facts in, a :class:`Visit` out; no sockets here.

Every adapter runs the same three steps around its framework's request:

1. ``visit = policy.begin(facts)``: read the cookies, apply consent, decide.
2. If ``visit.must_mint``: mint (sync or async, the adapter's one I/O), then
   ``policy.adopt_minted(visit, new_id_or_none)``. ``resolve(facts, mint)``
   and ``await aresolve(facts, amint)`` do 1 and 2.
3. When the response starts: ``policy.patch_headers(visit, headers)`` (or
   ``cache_headers`` plus ``visit.cookies`` where a framework has its own
   cookie API) adds the Set-Cookie, Cache-Control and Vary headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Generic, TypeVar

from .cookies import CookieWrite, agreeing_id_reader, find_cookie, id_cookie_reader, render_set_cookie
from .facts import RequestFacts
from .identity import OPT_OUT_ID, is_valid_id
from .settings import Settings

__all__ = ["INTERNAL_ERROR", "Origin", "TrackingPolicy", "Visit", "private_cache_control", "vary_on_cookie"]

logger = logging.getLogger("hr_middleware")

T = TypeVar("T", str, bytes)

#: Log messages, exported so that tests (ours and yours) can assert them exactly.
BAD_SIGNATURE = "server cookie %s has no valid signature; treated as absent"
CONSENT_HOOK_FAILED = "consent hook raised; treating consent as unknown"
MINT_WHEN_FAILED = "mint_when raised; not minting for this request"
#: Logged by an adapter when the middleware itself fails; the request then goes on without it.
INTERNAL_ERROR = "hr_middleware failed on this request; serving it without a tracking id"


class Origin(str, Enum):
    """Where the id of a visit came from."""

    #: Our server cookie.
    COOKIE = "cookie"
    #: Hello Retail's own JavaScript cookie (``hello_retail_id``).
    SDK_COOKIE = "sdk_cookie"
    #: Minted from Hello Retail on this request.
    MINTED = "minted"
    #: The visitor declined tracking; the id is :data:`OPT_OUT_ID`.
    OPT_OUT = "opt_out"

    def __str__(self) -> str:
        return self.value


class Visit:
    """One request's identity: the id, its origin, and what the response must carry.

    Adapters create it through :meth:`TrackingPolicy.begin`; the app reaches it
    through :func:`hr_middleware.get_tracking_user` and the consent helpers.
    """

    __slots__ = (
        "tracking_user_id",
        "origin",
        "must_mint",
        "minted",
        "cookies",
        "accessed",
        "secure",
        "request",
        "mint",
        "amint",
        "loop",
        "policy",
    )

    def __init__(
        self,
        request: RequestFacts,
        policy: TrackingPolicy,
        mint: Callable[[], str | None] | None = None,
        amint: Callable[[], Awaitable[str | None]] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        #: The visitor's id, :data:`OPT_OUT_ID`, or None.
        self.tracking_user_id: str | None = None
        #: Where the id came from; None when there is no id.
        self.origin: Origin | None = None
        #: True while a mint is due and has not been done.
        self.must_mint = False
        #: True once a mint was attempted for this request (never two).
        self.minted = False
        #: Cookies to set or delete on the response, by name.
        self.cookies: dict[str, CookieWrite] = {}
        #: True once the app read the id through the library's accessors.
        self.accessed = False
        #: Whether written cookies get ``Secure``; resolved when first needed.
        self.secure: bool | None = None
        #: The request facts, for hooks that run later (``grant()``).
        self.request = request
        #: How this request's adapter mints, for ``grant()`` / ``agrant()``.
        self.mint = mint
        self.amint = amint
        #: The event loop an async adapter serves this request on (for a sync ``grant()``).
        self.loop = loop
        #: The policy that decided this visit, for the consent helpers.
        self.policy = policy

    def read_id(self) -> str | None:
        """The id as the app reads it: marks the visit accessed (its response varies on Cookie)."""
        self.accessed = True
        return self.tracking_user_id

    def detach(self) -> None:
        """Forget the request, once it is over, where it refers back to this visit
        (Django's ``request.tracking_user_id``): no reference cycle, so the
        request is freed at once rather than by the garbage collector."""
        self.request = _DETACHED

    @property
    def needs_response_patch(self) -> bool:
        """True when the response start must be rewritten (cookies or Vary)."""
        return bool(self.cookies) or self.accessed

    def __repr__(self) -> str:
        return f"<Visit {self.tracking_user_id!r} origin={self.origin!s} cookies={list(self.cookies)}>"


class _DetachedFacts(RequestFacts):
    """The facts of a visit whose request is over: nothing left to read."""

    __slots__ = ()
    cookie_header = ""
    method = "GET"
    path = ""
    scheme = "http"
    headers: Mapping[str, str] = {}
    native = None


_DETACHED = _DetachedFacts()


def _accept_any(value: str) -> str:
    return value


class TrackingPolicy:
    """The behaviour table of DESIGN.md as code, for one :class:`Settings`."""

    __slots__ = ("settings", "_server_key", "_read_server", "_read_sdk", "_read_agreeing", "_check_consent")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Precomputed once: the cookie lookups run on every request.
        self._server_key = settings.cookie_name + "="
        self._read_server = id_cookie_reader(settings.cookie_name)
        self._read_sdk = id_cookie_reader(settings.sdk_cookie_name)
        # The usual returning visitor, decided in one step; not with signing
        # (the server cookie holds a signature then, not the bare id).
        self._read_agreeing = (
            agreeing_id_reader(settings.cookie_name, settings.sdk_cookie_name) if settings.signer is None else None
        )
        self._check_consent = settings.consent is not None or settings.respect_gpc

    # -- request phase ---------------------------------------------------

    def begin(
        self,
        request: RequestFacts,
        mint: Callable[[], str | None] | None = None,
        amint: Callable[[], Awaitable[str | None]] | None = None,
    ) -> Visit:
        """Decide the visit for *request*; the only I/O it may ask for is a mint.

        *mint* / *amint* are how the adapter mints; the visit keeps them for
        ``grant()``. Then, if ``visit.must_mint``: ``adopt_minted(visit, mint())``
        or ``await amint_into(visit)``; :meth:`resolve` / :meth:`aresolve` do both.
        """
        # An async adapter's loop, for a sync grant() from a worker thread: it mints on this loop.
        visit = Visit(request, self, mint, amint, None if amint is None else asyncio.get_running_loop())
        self._decide(visit, may_mint=True)
        return visit

    def observe(self, request: RequestFacts) -> Visit:
        """Decide the visit for a request whose response cannot carry cookies.

        For a WebSocket handshake: the id is read from the cookies and consent
        applies as in :meth:`begin`, but nothing is minted (``mint_when`` is
        not asked) and no cookie is to be written.
        """
        visit = Visit(request, self)
        self._decide(visit, may_mint=False)
        visit.cookies.clear()
        return visit

    def _decide(self, visit: Visit, *, may_mint: bool) -> None:
        request = visit.request
        if self._check_consent and not self._consents(request):
            self._opt_out(visit, request.cookie_header)
            return
        if self._read_agreeing is not None:
            # The usual returning visitor: both cookies hold one id, nothing to write.
            tracking_user_id = self._read_agreeing(request.cookie_bytes)
            if tracking_user_id is not None:
                visit.tracking_user_id = tracking_user_id
                visit.origin = Origin.COOKIE
                return
        self._from_cookies(visit, request.cookie_header, may_mint=may_mint)

    def _from_cookies(self, visit: Visit, header: str, *, may_mint: bool) -> None:
        """The behaviour table's rows, once consent allows tracking."""
        if not header:
            if may_mint:
                self._first_visit(visit)
            return
        settings = self.settings
        sdk = self._read_sdk(header)
        if settings.signer is None:
            server, resign = self._read_server(header), False
        else:
            server, resign = self._read_signed_cookie(header)
        if sdk is not None and (settings.signer is None or settings.trust_sdk_cookie):
            # The page's JavaScript reports events under the SDK cookie's id, so
            # it wins; the server cookie follows it.
            visit.tracking_user_id = sdk
            visit.origin = Origin.COOKIE if server == sdk else Origin.SDK_COOKIE
            if server != sdk or resign:
                self._write(visit, settings.cookie_name, sdk)
        elif server is not None:
            visit.tracking_user_id = server
            visit.origin = Origin.COOKIE
            if resign:
                self._write(visit, settings.cookie_name, server)
            if settings.share_with_sdk and sdk != server:
                self._write(visit, settings.sdk_cookie_name, server)
        elif may_mint:
            self._first_visit(visit)

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

    def resolve(self, request: RequestFacts, mint: Callable[[], str | None]) -> Visit:
        """:meth:`begin`, then the mint it asks for, with a blocking *mint*."""
        visit = self.begin(request, mint=mint)
        if visit.must_mint:
            self.adopt_minted(visit, mint())
        return visit

    async def aresolve(self, request: RequestFacts, amint: Callable[[], Awaitable[str | None]]) -> Visit:
        """:meth:`begin`, then the mint it asks for, with an awaitable *amint*."""
        visit = self.begin(request, amint=amint)
        if visit.must_mint:
            await self.amint_into(visit)
        return visit

    async def amint_into(self, visit: Visit) -> None:
        """Mint for *visit* with the awaitable it was begun with, and adopt the outcome."""
        assert visit.amint is not None
        self.adopt_minted(visit, await visit.amint())

    def _first_visit(self, visit: Visit) -> None:
        try:
            visit.must_mint = bool(self.settings.mint_when(visit.request))
        except Exception:
            logger.exception(MINT_WHEN_FAILED)

    def adopt_minted(self, visit: Visit, tracking_user_id: str | None) -> None:
        """Record the outcome of this visit's mint: a new id, or None on failure."""
        visit.must_mint = False
        visit.minted = True
        if tracking_user_id is None or not is_valid_id(tracking_user_id):
            return
        visit.tracking_user_id = tracking_user_id
        visit.origin = Origin.MINTED
        self._write_both(visit, tracking_user_id)

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

    def _opt_out(self, visit: Visit, header: str) -> None:
        visit.tracking_user_id = OPT_OUT_ID
        visit.origin = Origin.OPT_OUT
        visit.must_mint = False
        if header:
            for name in (self.settings.cookie_name, self.settings.sdk_cookie_name):
                if find_cookie(header, name + "=", _accept_any) is not None:
                    self._write(visit, name, None)

    def revoke(self, visit: Visit) -> None:
        """Consent withdrawn during the request: delete both cookies, expose the opt-out id."""
        visit.tracking_user_id = OPT_OUT_ID
        visit.origin = Origin.OPT_OUT
        visit.must_mint = False
        visit.cookies.clear()
        self._write(visit, self.settings.cookie_name, None)
        self._write(visit, self.settings.sdk_cookie_name, None)

    def grant_needs_mint(self, visit: Visit) -> bool:
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
            visit.cookies.clear()
            self._from_cookies(visit, visit.request.cookie_header, may_mint=False)
        if visit.tracking_user_id is not None:
            self._write_both(visit, visit.tracking_user_id)
            return False
        return not visit.minted

    # -- response phase ---------------------------------------------------

    def cache_headers(self, visit: Visit, cache_control: str | None, vary: str | None) -> tuple[str | None, str | None]:
        """New ``Cache-Control`` and ``Vary`` values for the response (None = leave as is).

        A response that sets or deletes an id cookie must not be stored by a
        shared cache (every later visitor would get the id): it becomes
        ``private``. A response the app built after reading the id may
        differ per visitor: it gets ``Vary: Cookie``.
        """
        new_cc = private_cache_control(cache_control) if visit.cookies else None
        new_vary = vary_on_cookie(vary) if visit.cookies or visit.accessed else None
        return new_cc, new_vary

    def set_cookie_values(self, visit: Visit) -> list[str]:
        """The ``Set-Cookie`` header values for *visit*."""
        return [render_set_cookie(self.settings, cookie) for cookie in visit.cookies.values()]

    def patch_headers(self, visit: Visit, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return *headers* with this visit's Set-Cookie, Cache-Control and Vary applied.

        The app's own headers keep their order and values, except that several
        ``Cache-Control`` or ``Vary`` lines are merged into one when changed.
        """
        if not visit.needs_response_patch:
            return headers
        return self._patched(visit, headers, _TEXT_HEADERS)

    def patch_raw_headers(self, visit: Visit, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """:meth:`patch_headers` for raw headers, as ASGI has them: bytes, names
        in lower case. Only the values of ``Cache-Control`` and ``Vary`` are
        decoded (latin-1); the other headers pass as they are."""
        if not visit.needs_response_patch:
            return headers
        return self._patched(visit, headers, _RAW_HEADERS)

    def _patched(self, visit: Visit, headers: list[tuple[T, T]], form: _HeaderForm[T]) -> list[tuple[T, T]]:
        # Runs on every response of a page that read the id: a page with
        # recommendations adds Vary and nothing else, so the loop lower-cases
        # only names of the right length (len() is a fifth of lower()).
        cache_control: list[T] = []
        vary: list[T] = []
        for name, value in headers:
            if len(name) in _PATCHED_LENGTHS:
                lowered = name.lower()
                if lowered == form.cache_control_lower:
                    cache_control.append(value)
                elif lowered == form.vary_lower:
                    vary.append(value)
        new_cc, new_vary = self.cache_headers(visit, form.joined(cache_control), form.joined(vary))
        replaced = []
        if new_cc is not None and cache_control:
            replaced.append(form.cache_control_lower)
        if new_vary is not None and vary:
            replaced.append(form.vary_lower)
        if replaced:
            out = [(k, v) for k, v in headers if len(k) not in _PATCHED_LENGTHS or k.lower() not in replaced]
        else:
            out = list(headers)
        if new_cc is not None:
            out.append((form.cache_control, form.encode(new_cc)))
        if new_vary is not None:
            out.append((form.vary, form.encode(new_vary)))
        if visit.cookies:
            out.extend((form.set_cookie, form.encode(value)) for value in self.set_cookie_values(visit))
        return out

    # -- cookies ---------------------------------------------------------------

    def _write_both(self, visit: Visit, tracking_user_id: str) -> None:
        self._write(visit, self.settings.cookie_name, tracking_user_id)
        if self.settings.share_with_sdk:
            self._write(visit, self.settings.sdk_cookie_name, tracking_user_id)

    def _write(self, visit: Visit, name: str, tracking_user_id: str | None) -> None:
        if visit.secure is None:
            secure = self.settings.secure
            visit.secure = visit.request.is_secure if secure == "auto" else secure
        value = tracking_user_id
        if value is not None and name == self.settings.cookie_name and self.settings.signer is not None:
            value = self.settings.signer.sign(value)
        visit.cookies[name] = CookieWrite(name, value, visit.secure)


class _HeaderForm(Generic[T]):
    """How response headers are spelt in one kind of framework: ``str`` (WSGI) or raw ``bytes`` (ASGI)."""

    __slots__ = ("cache_control", "vary", "set_cookie", "cache_control_lower", "vary_lower", "encode", "decode")

    def __init__(self, names: tuple[T, T, T], encode: Callable[[str], T], decode: Callable[[T], str]) -> None:
        self.cache_control: T = names[0]
        self.vary: T = names[1]
        self.set_cookie: T = names[2]
        self.cache_control_lower: T = names[0].lower()
        self.vary_lower: T = names[1].lower()
        self.encode: Callable[[str], T] = encode
        self.decode: Callable[[T], str] = decode

    def joined(self, values: list[T]) -> str | None:
        """Several lines of one header as one value (RFC 9110 5.3), None for none."""
        return ", ".join(self.decode(value) for value in values) if values else None


def _latin1(value: str) -> bytes:
    return value.encode("latin-1")


def _unlatin1(value: bytes) -> str:
    return value.decode("latin-1")


def _same(value: str) -> str:
    return value


#: The lengths of "cache-control" and "vary": only names of these are lower-cased and compared.
_PATCHED_LENGTHS = frozenset((13, 4))
_TEXT_HEADERS = _HeaderForm(("Cache-Control", "Vary", "Set-Cookie"), _same, _same)
_RAW_HEADERS = _HeaderForm((b"cache-control", b"vary", b"set-cookie"), _latin1, _unlatin1)


def _directives(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def private_cache_control(value: str | None) -> str | None:
    """``Cache-Control`` made safe from shared caches; None if it already is.

    ``private`` or ``no-store`` already present: unchanged (never weakened).
    ``public`` is replaced by ``private``; other directives are kept.
    """
    directives = _directives(value)
    names = [d.split("=", 1)[0].strip().lower() for d in directives]
    if "private" in names or "no-store" in names:
        return None
    kept = [d for d, name in zip(directives, names, strict=True) if name != "public"]
    return ", ".join(["private", *kept])


def vary_on_cookie(value: str | None) -> str | None:
    """``Vary`` with ``Cookie`` added; None if it already varies on it (or on ``*``)."""
    if not value:
        return "Cookie"
    fields = _directives(value)
    lowered = {f.lower() for f in fields}
    if "cookie" in lowered or "*" in lowered:
        return None
    return ", ".join([*fields, "Cookie"])
