"""The sans-I/O decision: request facts in, a :class:`Visit` out; no sockets here.

Every adapter runs the same three steps around its framework's request:

1. ``visit = policy.begin(facts)``: read the cookies, apply consent, decide.
2. If ``visit.must_mint``: mint (sync or async, the adapter's one I/O), then
   ``policy.adopt_minted(visit, new_id_or_none)``. ``resolve(facts, mint)``
   and ``await aresolve(facts, amint)`` do 1 and 2.
3. When the response starts: ``policy.patch_headers(visit, headers)`` (or
   ``cache_headers`` plus ``cookies_to_set`` where a framework has its own
   cookie API) adds the Set-Cookie and caching headers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Container, Mapping
from enum import Enum
from typing import Generic, TypeVar

from werkzeug.http import parse_list_header

from .cookies import CookieWrite, agreeing_id_reader, find_cookie, id_cookie_reader, render_set_cookie
from .facts import NoIdReason, RequestFacts, is_page_navigation, not_a_page_navigation
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
        "reason",
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
        "on_read",
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
        #: Why there is no id (None while there is one, or before it is decided).
        self.reason: NoIdReason | None = None
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
        #: Called whenever the app reads the id: an adapter's way to tell its
        #: framework that the response now depends on the visitor (Django's cache).
        self.on_read: Callable[[], None] | None = None

    def read_id(self) -> str | None:
        """The id as the app reads it: marks the visit accessed (its response varies on Cookie)."""
        self.accessed = True
        if self.on_read is not None:
            self.on_read()
        return self.tracking_user_id

    def detach(self) -> None:
        """Forget the request, once it is over, where it refers back to this visit
        (Django's ``request.tracking_user_id``): no reference cycle, so the
        request is freed at once rather than by the garbage collector."""
        self.request = _DETACHED
        self.on_read = None

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
    """The behaviour table (the README's "What it does on each request") as code, for one :class:`Settings`."""

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
        if visit.tracking_user_id is None:
            visit.reason = NoIdReason.WEBSOCKET
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
        mint_when = self.settings.mint_when
        try:
            if mint_when is is_page_navigation:
                # The default rule, asked why: a bot and an asset are told apart.
                visit.reason = not_a_page_navigation(visit.request)
                visit.must_mint = visit.reason is None
            else:
                visit.must_mint = bool(mint_when(visit.request))
        except Exception:
            logger.exception(MINT_WHEN_FAILED)
        if not visit.must_mint and visit.reason is None:
            visit.reason = NoIdReason.MINT_WHEN

    def adopt_minted(self, visit: Visit, tracking_user_id: str | None) -> None:
        """Record the outcome of this visit's mint: a new id, or None on failure."""
        visit.must_mint = False
        visit.minted = True
        if tracking_user_id is None or not is_valid_id(tracking_user_id):
            visit.reason = NoIdReason.UNREACHABLE
            return
        visit.reason = None
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
        visit.reason = None
        visit.must_mint = False
        if header:
            for name in (self.settings.cookie_name, self.settings.sdk_cookie_name):
                if find_cookie(header, name + "=", _accept_any) is not None:
                    self._write(visit, name, None)

    def revoke(self, visit: Visit) -> None:
        """Consent withdrawn during the request: delete both cookies, expose the opt-out id."""
        visit.tracking_user_id = OPT_OUT_ID
        visit.origin = Origin.OPT_OUT
        visit.reason = None
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

    def cache_headers(self, visit: Visit, current: Mapping[str, str | None]) -> dict[str, str]:
        """New values of the response's caching headers: only those that change.

        *current* maps the lower-case names of ``Cache-Control``, ``Vary``,
        ``CDN-Cache-Control`` and ``Surrogate-Control`` to the response's value
        (several lines joined) or None; the answer maps the canonical names of
        those to change to their new value.

        A response that sets or deletes an id cookie must not be stored by a
        shared cache (every later visitor would get the id): its
        ``Cache-Control`` becomes ``private``. A response the app built after
        reading the id may differ per visitor: it gets ``Vary: Cookie``. Either
        way a ``CDN-Cache-Control`` or ``Surrogate-Control`` (which CDNs obey
        instead of Cache-Control, and most CDNs ignore ``Vary: Cookie``) that
        lets the CDN store the page becomes ``no-store``.
        """
        changes: dict[str, str] = {}
        if not (visit.cookies or visit.accessed):
            return changes
        if visit.cookies:
            cache_control = private_cache_control(current.get("cache-control"))
            if cache_control is not None:
                changes[CACHE_CONTROL] = cache_control
        vary = vary_on_cookie(current.get("vary"))
        if vary is not None:
            changes[VARY] = vary
        for name in CDN_HEADERS:
            value = current.get(name.lower())
            if value is not None and not _keeps_out_of_shared_caches(value):
                changes[name] = "no-store"
        return changes

    def cookies_to_set(self, visit: Visit, set_by_app: Container[str] = ()) -> list[CookieWrite]:
        """The cookies this response must carry, leaving out any the app set itself.

        An app that sets a cookie of one of our names knows better (a login
        that restores a known visitor's id): one ``Set-Cookie`` per name, the app's.
        """
        return [cookie for name, cookie in visit.cookies.items() if name not in set_by_app]

    def patch_headers(self, visit: Visit, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return *headers* with this visit's Set-Cookie and caching headers applied.

        The app's own headers keep their order and values, except that several
        lines of a caching header are merged into one when changed. Never
        raises: if the headers cannot be patched (an app sending headers of
        the wrong type), that is logged and they are returned kept out of
        shared caches (``Cache-Control: private, no-store``; CDN-Cache-Control
        and Surrogate-Control dropped), since the page may carry an id that
        its cookies do not.
        """
        if not visit.needs_response_patch:
            return headers
        return self._patched_or_fail_safe(visit, headers, _TEXT_HEADERS)

    def patch_raw_headers(self, visit: Visit, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """:meth:`patch_headers` for raw headers, as ASGI has them: bytes, names
        in lower case. Only the values of the headers it may change are decoded
        (latin-1); the other headers pass as they are."""
        if not visit.needs_response_patch:
            return headers
        return self._patched_or_fail_safe(visit, headers, _RAW_HEADERS)

    def _patched_or_fail_safe(
        self, visit: Visit, headers: list[tuple[T, T]], form: _HeaderForm[T]
    ) -> list[tuple[T, T]]:
        try:
            return self._patched(visit, headers, form)
        except Exception:
            logger.exception(INTERNAL_ERROR)
        try:
            kind = type(form.set_cookie)
            kept: list[tuple[T, T]] = [
                line
                for line in headers
                if not (isinstance(line[0], kind) and form.decode(line[0]).lower() in FAIL_SAFE_DROPPED)
            ]
            kept.append((form.name(CACHE_CONTROL), form.encode(FAIL_SAFE_CACHE_CONTROL)))
            return kept
        except Exception:  # headers that cannot even be read: the server will refuse them anyway
            logger.exception(INTERNAL_ERROR)
            return headers

    def _patched(self, visit: Visit, headers: list[tuple[T, T]], form: _HeaderForm[T]) -> list[tuple[T, T]]:
        # Runs on every response of a page that read the id: only names of the
        # right lengths are lower-cased (len() is a fifth of lower()).
        found: dict[str, list[T]] = {}
        set_by_app: list[str] = []
        for name, value in headers:
            if len(name) in _WATCHED_LENGTHS:
                lowered = form.decode(name).lower()
                if lowered == "set-cookie":
                    set_by_app.append(form.decode(value).partition("=")[0].strip())
                elif lowered in CACHING_HEADERS:
                    found.setdefault(lowered, []).append(value)
        current = {name: form.joined(values) for name, values in found.items()}
        changes = self.cache_headers(visit, current)
        replaced = {name.lower() for name in changes if name.lower() in found}
        if replaced:
            out = [
                (k, v) for k, v in headers if len(k) not in _WATCHED_LENGTHS or form.decode(k).lower() not in replaced
            ]
        else:
            out = list(headers)
        out.extend((form.name(name), form.encode(value)) for name, value in changes.items())
        for cookie in self.cookies_to_set(visit, set_by_app):
            out.append((form.set_cookie, form.encode(render_set_cookie(cookie))))
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
        settings = self.settings
        visit.cookies[name] = CookieWrite(
            name,
            value,
            visit.secure,
            settings.max_age,
            settings.path,
            settings.domain,
            settings.httponly,
            settings.samesite,
        )


class _HeaderForm(Generic[T]):
    """How response headers are spelt in one kind of framework: ``str`` (WSGI) or raw ``bytes`` (ASGI)."""

    __slots__ = ("set_cookie", "encode", "decode", "raw")

    def __init__(self, set_cookie: T, encode: Callable[[str], T], decode: Callable[[T], str]) -> None:
        self.set_cookie: T = set_cookie
        self.encode: Callable[[str], T] = encode
        self.decode: Callable[[T], str] = decode
        #: Raw headers (ASGI) have lower-case names.
        self.raw = isinstance(set_cookie, bytes)

    def name(self, canonical: str) -> T:
        """A header name in this form's spelling."""
        return self.encode(canonical.lower() if self.raw else canonical)

    def joined(self, values: list[T]) -> str:
        """Several lines of one header as one value (RFC 9110 5.3)."""
        return ", ".join(self.decode(value) for value in values)


def _latin1(value: str) -> bytes:
    return value.encode("latin-1")


def _unlatin1(value: bytes) -> str:
    return value.decode("latin-1")


def _same(value: str) -> str:
    return value


CACHE_CONTROL = "Cache-Control"
VARY = "Vary"
#: Read by CDNs instead of Cache-Control (RFC 9213; Fastly, Akamai and others).
CDN_HEADERS = ("CDN-Cache-Control", "Surrogate-Control")
#: The lower-case names of the response headers the middleware may change.
CACHING_HEADERS = frozenset(name.lower() for name in (CACHE_CONTROL, VARY, *CDN_HEADERS))
#: The lengths of the names the patch reads: only names of these are lower-cased and compared.
_WATCHED_LENGTHS = frozenset(len(name) for name in (*CACHING_HEADERS, "set-cookie"))
#: What a response gets when patching it failed (:meth:`TrackingPolicy.fail_safe_headers`);
#: its CDN-Cache-Control and Surrogate-Control are dropped.
FAIL_SAFE_CACHE_CONTROL = "private, no-store"
FAIL_SAFE_DROPPED = frozenset(name.lower() for name in (CACHE_CONTROL, *CDN_HEADERS))
_TEXT_HEADERS = _HeaderForm("Set-Cookie", _same, _same)
_RAW_HEADERS = _HeaderForm(b"set-cookie", _latin1, _unlatin1)


def _directives(value: str | None) -> list[str]:
    """The directives of a Cache-Control or Vary value (quoted lists kept whole)."""
    return [part for part in parse_list_header(value) if part] if value else []


def _directive_names(directives: list[str]) -> list[str]:
    # A qualified directive (private="Set-Cookie") gets its name with "=": it is not the plain one.
    return [d.split("=", 1)[0].strip().lower() + ("=" if "=" in d else "") for d in directives]


def _keeps_out_of_shared_caches(value: str) -> bool:
    names = _directive_names(_directives(value))
    # private="Set-Cookie" only keeps that header out of the stored copy (RFC 9111 5.2.2.7).
    return "private" in names or "no-store" in names


def private_cache_control(value: str | None) -> str | None:
    """``Cache-Control`` made safe from shared caches; None if it already is.

    ``private`` or ``no-store`` already present: unchanged (never weakened).
    ``public`` and the qualified ``private="..."`` (which lets a shared cache
    store the page) are replaced by ``private``; other directives are kept.
    """
    directives = _directives(value)
    names = _directive_names(directives)
    if "private" in names or "no-store" in names:
        return None
    kept = [d for d, name in zip(directives, names, strict=True) if name not in ("public", "private=")]
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
