"""ASGI middleware: one stable Hello Retail trackingUserId per visitor, for any ASGI 3 app.

A pure ASGI class (no ``BaseHTTPMiddleware``). Starlette and FastAPI::

    from hr_middleware.asgi import TrackingUserMiddleware

    app.add_middleware(TrackingUserMiddleware, website_uuid="...")

Any other ASGI 3 app (Django's ASGI handler, Quart, a bare callable)::

    app = TrackingUserMiddleware(app, website_uuid="...")

The options are those of :class:`~hr_middleware.Settings`, as keyword
arguments or as ``settings=``. While a request is served
:func:`hr_middleware.get_tracking_user_id` returns the id (or None), in the
endpoint and in every task it starts, and keeps the response out of shared
caches. The id is also at ``scope["state"]["tracking_user_id"]``
(``request.state.tracking_user_id``), for code outside the request's context;
reading it there is not seen, so a page must not be built from it.

Per scope type:

``http``
    As the WSGI middleware: the cookies are read; a first page view mints an
    id from Hello Retail with a non-blocking, pooled httpx client (one per
    middleware instance), so concurrent first visits mint concurrently and
    returning visitors never wait for Hello Retail. ``http.response.start``
    gets the Set-Cookie headers appended and, where a cookie is written or the
    id was read, its caching headers made private; every other message passes
    unchanged.
``websocket``
    The id is read from the cookies and exposed the same way; nothing is
    minted and no cookie is set.
``lifespan``
    Passed through unchanged; at ``lifespan.shutdown.complete`` (or
    ``.failed``) the pooled connections to Hello Retail are closed.

When Hello Retail is slow, down or answers garbage, the mint gives up after
``timeout`` seconds and the page is served without an id. A failure of the
middleware itself is logged and the request goes on without it; exceptions
raised by the app are never caught.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, cast

from ._core.cookies import COOKIE_HEADER_LIMIT
from ._core.facts import RequestFacts
from ._core.headers import patch_raw_headers
from ._core.interfaces import wrong_adapter
from ._core.log import MISCONFIGURED, logger
from ._core.returning import scope_reader
from ._core.settings import Settings
from ._hello_retail.mint import AsyncMinter
from ._hello_retail.prefetch import AsyncPrefetchingMinter, make_async_minter
from ._hello_retail.transport import import_httpx
from ._serving import VISIT_KEY, Engine, Visit, ain_visit, enter, fail_open, leave, patched

__all__ = ["STATE_KEY", "TrackingUserMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where the id (or None) is put in ``scope["state"]``: ``request.state.tracking_user_id``.
STATE_KEY = "tracking_user_id"


class ASGIRequestFacts(RequestFacts):
    """:class:`RequestFacts` read lazily from an ASGI ``http`` or ``websocket`` scope.

    ``native`` is the scope itself; ``scheme`` is the scope's (``http``,
    ``https``, ``ws`` or ``wss``), and ``https`` and ``wss`` count as secure.
    """

    __slots__ = ("scope", "_headers")

    def __init__(self, scope: Scope) -> None:
        super().__init__(_cookie_header(scope.get("headers", ())))
        self.scope = scope
        self._headers: ScopeHeaders | None = None

    @property
    def native(self) -> Scope:
        return self.scope

    @property
    def method(self) -> str:
        # A websocket scope has no method; its handshake is a GET.
        return self.scope.get("method", "GET")  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        # The ASGI spec now has ``path`` include ``root_path`` (uvicorn >= 0.26,
        # Starlette mounts); older servers leave it out. Either way: the full path.
        path: str = self.scope.get("path", "")
        root: str = self.scope.get("root_path", "")
        if not root or (path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/")):
            return path
        return root + path

    @property
    def scheme(self) -> str:
        return self.scope.get("scheme", "http")  # type: ignore[no-any-return]

    @property
    def is_secure(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def host(self) -> str:
        host = self.headers.get("host")
        if host:
            return host
        server = self.scope.get("server")  # (host, port), or None
        return str(server[0]) if server else ""

    @property
    def headers(self) -> ScopeHeaders:
        if self._headers is None:
            self._headers = ScopeHeaders(self.scope.get("headers", ()))
        return self._headers


def _cookie_header(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's Cookie lines as one header, decoded as latin-1.

    HTTP/2 may split the Cookie header; RFC 9113 joins the parts with ``"; "``.
    ASGI servers lower-case header names, or keep the client's spelling. Lines
    past :data:`~hr_middleware._core.cookies.COOKIE_HEADER_LIMIT` are not
    joined (the facts read no further), so work stays linear in the header count.
    """
    found: bytes | None = None
    lines: list[bytes] | None = None
    size = 0
    for name, value in headers:
        if name == b"cookie" or (name[:1] in b"cC" and name.lower() == b"cookie"):
            if found is None:
                found, size = value, len(value)
            elif size <= COOKIE_HEADER_LIMIT:
                if lines is None:
                    lines = [found]
                lines.append(value)
                size += len(value) + 2
    if found is None:
        return ""
    return (found if lines is None else b"; ".join(lines)).decode("latin-1")


class ScopeHeaders(Mapping[str, str]):
    """The request headers of an ASGI scope as a case-insensitive, read-only mapping.

    Values are decoded as latin-1; a header sent several times reads as its
    values joined with ``", "`` (``"; "`` for Cookie).
    """

    __slots__ = ("_values",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        # Each name's lines are collected, then joined once: joining line by line copies
        # the growing value each time (33,000 Cookie lines took seconds). Names are
        # decoded and lower-cased once each, not once a line (half the time of 33,000 lines).
        if not isinstance(raw, (list, tuple)):
            raw = list(raw)  # ASGI allows any iterable; it may be read twice here
        lines: dict[bytes, list[bytes]] = {}
        get = lines.get
        for raw_name, raw_value in raw:
            found = get(raw_name)
            if found is None:
                lines[raw_name] = [raw_value]
            else:
                found.append(raw_value)
        values: dict[str, str] = {}
        for raw_name, found in lines.items():
            name = raw_name.decode("latin-1").lower()
            if name in values:
                # One name in two spellings (a server that keeps the client's): every line in order.
                lines_in_order: dict[str, list[bytes]] = {}
                for spelt, raw_value in raw:
                    lines_in_order.setdefault(spelt.decode("latin-1").lower(), []).append(raw_value)
                values = {name: _joined(name, found) for name, found in lines_in_order.items()}
                break
            values[name] = _joined(name, found)
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _joined(name: str, lines: list[bytes]) -> str:
    """The lines of header *name* as one value: joined with ``"; "`` for Cookie (RFC 9113
    8.2.3), ``", "`` for the others (RFC 9110 5.3); decoded as latin-1."""
    value = lines[0] if len(lines) == 1 else (b"; " if name == "cookie" else b", ").join(lines)
    return value.decode("latin-1")


class TrackingUserMiddleware:
    """ASGI 3 middleware that gives every visitor one stable Hello Retail trackingUserId.

    Args:
        app: the ASGI application to wrap.
        settings: a ready :class:`~hr_middleware.Settings` (or a dict of its
            options); or pass its options as keyword arguments
            (``website_uuid`` is required).
        minter: what mints (for tests); default: one of its own (a pooled
            httpx client), prefetching when the ``prefetch`` option says so.
        **options: the options of :class:`~hr_middleware.Settings`.

    Raises:
        TypeError: an unknown option (with the one meant), or *app* is a WSGI
            app (naming the middleware it needs).
        ValueError: an option's value.
        ImportError: httpx is not installed (``pip install "hr-middleware[asgi]"``).

    Built lazily by a framework (Starlette's and FastAPI's ``add_middleware``:
    at the lifespan start-up), it refuses the start-up with that reason instead;
    see docs/asgi.md.
    """

    def __new__(
        cls,
        app: ASGIApp,
        *,
        settings: Settings | Mapping[str, Any] | None = None,
        minter: AsyncMinter | AsyncPrefetchingMinter | None = None,
        **options: Any,
    ) -> TrackingUserMiddleware:
        try:
            wrong = wrong_adapter(app, "asgi")
            if wrong is not None:
                raise TypeError(wrong)
            Settings.merge(settings, options)
            if minter is None:
                import_httpx()  # its own minter needs the [asgi] extra: say so now, not at each request
        except (TypeError, ValueError, ImportError) as exc:
            return cast(TrackingUserMiddleware, refused(app, exc))
        return super().__new__(cls)

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | Mapping[str, Any] | None = None,
        minter: AsyncMinter | AsyncPrefetchingMinter | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.settings = Settings.merge(settings, options)
        self._minter = minter or make_async_minter(self.settings)
        self._engine: Engine[Scope, _ASGIVisit] = Engine(
            self.settings, ASGIRequestFacts, returning=scope_reader, aminter=self._minter, visit=_ASGIVisit
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or VISIT_KEY in scope:
            # The lifespan, a scope type we don't know, or another instance outside
            # this one decided already: one visit, one mint.
            await self.app(scope, receive, self._lifespan_send(send) if kind == "lifespan" else send)
            return
        # A websocket handshake's response cannot carry our cookies: its id is only read.
        visit = self._engine.serve(scope, may_mint=kind == "http")
        if visit.must_mint:
            visit = await self._engine.amint(visit)
        _expose(scope, visit)
        # send is wrapped even when nothing is to be set yet: the app may read the id
        # (and so need Vary: Cookie) before it starts the response.
        visit.downstream = send
        token = enter(visit)
        try:
            await self.app(scope, receive, visit.send)
        finally:
            leave(token)

    def _lifespan_send(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                # Before the server hears it: after that the loop may be gone.
                await self.aclose()
            await send(message)

        return lifespan_send

    async def aclose(self) -> None:
        """Close the pooled connections to Hello Retail (done at lifespan shutdown).

        Never raises: a failure is logged. A later mint opens new connections.
        """
        await self._engine.aclose()


class _ASGIVisit(Visit):
    """A visit served over ASGI; its ``send`` is the app's: the app's ``send``,
    with the visit's headers added to ``http.response.start`` when there are any."""

    downstream: Send

    def send(self, message: Message) -> Awaitable[None]:
        """Pass *message* on, patched if it starts the response and the visit has headers to add.

        A plain function returning what the server's ``send`` returns (the app
        awaits it): the patch is synchronous, so no coroutine of our own is needed.
        """
        if (self.cookies or self.accessed) and message["type"] == "http.response.start":
            with fail_open:  # a message whose headers cannot even be read: sent as it is
                headers = message.get("headers", ())
                if type(headers) is not list:
                    # ASGI allows any iterable of headers (a generator too): it is read once, here.
                    headers = list(headers)
                # A new message and a new header list: the app's own are left as they
                # were (an app may send one message object on every response).
                started = dict(message)
                started["headers"] = patched(self, headers, patch_raw_headers)
                message = started
        return self.downstream(message)


# The app awaits what ``send`` returns, as with any ASGI send. Code that asks whether
# ``send`` is a coroutine function hears yes: asgiref's async_to_sync (which Django
# Channels' sync consumers send through) warns on every call otherwise. Before Python
# 3.12 only asgiref has a public way to say so, and only asgiref asks.
if sys.version_info >= (3, 12):
    inspect.markcoroutinefunction(_ASGIVisit.send)
else:
    try:
        from asgiref.sync import markcoroutinefunction
    except ImportError:  # no asgiref: nothing here asks
        pass
    else:
        markcoroutinefunction(_ASGIVisit.send)


def refused(app: ASGIApp, error: Exception) -> _Misconfigured:
    """A middleware that cannot be built around *app* because of *error*: raised, or,
    built lazily by a framework, what refuses the server's start-up with it.

    Starlette and FastAPI build their middleware stack lazily, in the first ASGI
    call (the lifespan start-up): an exception there reads to uvicorn's default
    ``--lifespan auto`` as "no lifespan", and then every request would fail.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        lazily = False
    else:
        lazily = True
    if not lazily:  # built at import, by the app's own code: raised there (with its cause)
        raise error
    return _Misconfigured(app, f"hr-middleware: {error}")


class _Misconfigured:
    """What a lazily built middleware with invalid options is: the server's
    start-up is refused with the reason; requests that arrive all the same
    (a server without lifespan) are served without ids."""

    def __init__(self, app: ASGIApp, reason: str) -> None:
        self.app = app
        self.reason = reason
        self._logged = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if (await receive())["type"] == "lifespan.startup":  # always the first message
                logger.error(self.reason)
                await send({"type": "lifespan.startup.failed", "message": self.reason})
            return
        if not self._logged:
            self._logged = True
            logger.error(MISCONFIGURED, self.reason)
        await ain_visit(Visit.failed(scope), self.app, scope, receive, send)

    async def aclose(self) -> None:
        """Nothing to close: no connection was opened."""


def _expose(scope: Scope, visit: Visit) -> None:
    """Put the id where ``request.state`` reads it (a server may not provide ``state``),
    and mark the scope decided for instances inside this one. Never raises."""
    # try, not the fail_open block: this runs on every request, and a block costs two calls
    # (docs/performance.md). What it catches goes to the same log line.
    try:
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[STATE_KEY] = visit.tracking_user_id
        if visit.engine is not None:  # a visit this middleware could not serve is not decided
            scope[VISIT_KEY] = True
    except Exception:  # a read-only state of an odd server: the id is still current
        fail_open.caught()
