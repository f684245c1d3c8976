"""The fake Hello Retail's lifecycle: start, stop, reset, and what it counted and recorded."""

from __future__ import annotations

import itertools
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from hr_middleware._core.settings import Settings
from hr_middleware._hello_retail import memory
from hr_middleware._hello_retail.errors import InvalidResponseError, RequestTimeoutError, TransportError
from hr_middleware._hello_retail.transport import Answer

from ._answers import MINT_PATH, ZERO_RESULT_QUERY, Mode
from ._handler import FakeHTTPServer, FakeRequestHandler, RecordedRequest, reply_to_post, shut
from ._images import IMAGE_PREFIX
from ._minted import Minted
from ._script import SCRIPT_PATH, ScriptLog

__all__ = ["DEFAULT_WEBSITE_UUID", "FakeHelloRetail"]

#: The website UUID the fake server's :meth:`FakeHelloRetail.settings` uses.
DEFAULT_WEBSITE_UUID = "00000000-0000-4000-8000-000000000001"

#: Numbers the in-memory fakes' hosts: each its own.
_numbers = itertools.count(1)


class FakeHelloRetail:
    """A fake Hello Retail on 127.0.0.1 (random port), served from a background thread.

    Attributes you may set at any time: ``mode`` (a :class:`Mode`), ``delay``
    (seconds before answering), ``drip_interval``, and ``fail_every`` (every
    n-th mint answers with ``failure_mode`` instead; 0 = never); these are
    about mints. ``api_mode`` is the :class:`Mode` of every other endpoint.

    The downstream endpoints answer in Hello Retail's shapes (the contract in
    ``tests/contract/`` holds one request and answer per endpoint and failure),
    with products derived from a hash of the visitor (``trackingUserId``, else
    ``customerId`` or ``email``) and the request (key, query, url): the same
    for one visitor every time, different between visitors, the same for every
    anonymous or opted-out one. Like the real service they fail a whole
    recommendations batch with one flat HTTP 500 and a string ``code``, answer
    400 to a malformed trackingUserId on the collect endpoints and to a click
    that names nobody (no ``trackingUserId``, no ``customerId``), take an empty
    ``trackingUserId`` (``""``) as none on recommendations, search and pages, and
    answer cart and conversion of an anonymous visitor with ``{"success": true,
    "message": "Not tracked for anonymous user"}``. The ``?apiKey=`` query
    parameter is wanted only where something other than the id names the
    visitor: ``customerId`` or ``email`` on recommendations (without the key:
    HTTP 500 ``ACCESS DENIED``), ``customerId`` on the collect endpoints (without
    the key: an anonymous visitor's call). On cart and conversion ``email`` is
    abandoned-cart data, not an identity: an email-only cart or conversion is an
    anonymous visitor's, key or no key. ``?apiLogTag=`` is accepted on any call
    and recorded like any query parameter (:attr:`RecordedRequest.params`).

    It also answers customer links (``POST /serve/collect/customerId``
    ``{trackingUserId, websiteUuid, id}``: ``"Customer linked"``; the opt-out id
    or none: ``"Not tracked for anonymous user"``, nothing linked; no API key
    wanted), listed in ``customer_links`` as ``(trackingUserId, customer id)`` so
    tests count them, and customer bias (``POST /serve/customer/bias``: per asked
    field, the values the visitor favours with a score, the same for one visitor
    every time; empty lists for the opt-out id). Hello Retail publishes neither
    answer: both are chosen, and the contract in ``tests/contract/customers.json``
    says why.

    It serves a stand-in for Hello Retail's script at :attr:`script_url` (what
    :meth:`settings` gives as ``script_url``, so ``hello_retail_script()`` loads
    it) and keeps what pages told it in :attr:`script`; those reports are not
    calls to Hello Retail and are not in :attr:`requests`.

    Also settable: ``known_recommendation_keys`` and ``known_page_keys`` (None,
    the default: every key exists; a set: only those, others fail as at Hello
    Retail) and ``api_key`` (None: any non-empty ``apiKey`` is accepted; a
    string: only that one).

    It knows the websites it was started with (``website_uuids=``; by default its
    own :attr:`website_uuid`) and, like Hello Retail, refuses the tracking calls of
    any other with HTTP 400 (``website with websiteUuid not found`` for pageview,
    click and customer links, ``Website not found`` for cart and conversion) and a
    customer bias request with HTTP 500 ``INVALID REQUEST`` (``Website not
    found``), so a mis-copied UUID fails the shop's tests. Recommendations, search
    and pages are named by their keys and do not check it. A mint is answered for
    any website (Hello Retail mints even on a bare ``GET`` that names none);
    :meth:`minted_for` and each
    :class:`RecordedRequest`'s ``website_uuid`` tell which website a mint or a call
    was for. ``website_uuids`` is a set that may be changed; :meth:`reset` restores
    the one it was started with.

    Products come as Hello Retail sends them: a plain ``originalUrl``
    (``<shop_url>/products/<productNumber>``), a ``url`` ending in
    ``#aw_source=<trackingCode>``, and tracking codes shaped like Hello Retail's. A
    search for one of ``zero_result_queries`` (by default ``"no-such-product"``)
    matches nothing and answers zero results with ``zeroResultContent``. Whatever
    ``count`` and ``start`` are asked for are echoed; the catalogue is finite, so at
    most its 100 products come back.

    The canned products' ``imgUrl`` points at pictures the fake serves itself
    (generated SVGs under :attr:`images_url`), and unless ``shop_url`` (given as
    ``shop_url=`` or set later) names a shop, their ``originalUrl`` at a stand-in
    product page it serves too (``<url>/products/<number>``; over a socket), so a
    demo's links lead somewhere; fetching either is not a call to Hello Retail, so
    it is neither recorded nor counted.

    ``FakeHelloRetail(in_memory=True)`` is the same fake without a socket: its
    :attr:`url` is a host under ``.invalid`` that the middleware's and the
    client's transports answer from in this process. A hang or a drip is the
    transport's timeout at once, so tests of failures do not wait out the time
    budget; servers in other processes cannot reach it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        website_uuid: str | None = None,
        website_uuids: Iterable[str] | None = None,
        shop_url: str | None = None,
        in_memory: bool = False,
    ) -> None:
        self.host = host
        if isinstance(website_uuids, str):
            raise TypeError("website_uuids: a collection of website UUIDs, not one string")
        known = [] if website_uuids is None else list(website_uuids)
        if (website_uuids is not None and not known) or not all(isinstance(u, str) and u for u in known):
            raise ValueError("website_uuids: one or more website UUIDs (non-empty strings)")
        #: The website its :meth:`settings` name: *website_uuid*, else the first of *website_uuids*, else
        #: :data:`DEFAULT_WEBSITE_UUID`.
        self.website_uuid = website_uuid or (known[0] if known else DEFAULT_WEBSITE_UUID)
        if known and self.website_uuid not in known:
            raise ValueError("website_uuid: not one of website_uuids, the websites the fake knows")
        known = known or [self.website_uuid]
        self._website_uuids = frozenset(known)
        self._shop_url = None if shop_url is None else shop_url.rstrip("/")
        #: Answered in memory, in this process, without a socket (see the class docstring).
        self.in_memory = in_memory
        #: Log each call at INFO on the ``hr_middleware.testing`` logger (``python -m hr_middleware.testing`` does).
        self.log_requests = False
        self._memory_url = f"http://hello-retail-{next(_numbers)}.invalid"
        self._lock = threading.Lock()
        #: Notified whenever a connection closes (wait_disconnected() waits on it).
        self._closed = threading.Condition(self._lock)
        #: Notified whenever a request is recorded (wait_for_requests() waits on it).
        self._recorded = threading.Condition(self._lock)
        self._release = threading.Event()
        # Not reset between tests: connections outlive them.
        self._open_peers: set[tuple[str, int]] = set()
        # Each open connection's socket and thread, so that stop() can end them.
        self._connections: dict[tuple[str, int], tuple[socket.socket, threading.Thread]] = {}
        self._stopping = False
        self._server: FakeHTTPServer | None = None
        if not in_memory:
            self._server = FakeHTTPServer((host, port), FakeRequestHandler)
            self._server.fake = self
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (a free one unless given); an in-memory fake has none."""
        if self._server is None:
            raise AttributeError("a FakeHelloRetail in memory listens on no port")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to use as ``api_url`` (in memory: a host under ``.invalid``, which never resolves)."""
        return self._memory_url if self._server is None else f"http://{self.host}:{self.port}"

    @property
    def images_url(self) -> str:
        """Where it serves the canned products' images (their ``imgUrl``): ``<url>/images``."""
        return self.url + IMAGE_PREFIX.rstrip("/")

    @property
    def script_url(self) -> str:
        """Where it serves its stand-in for Hello Retail's script (``script_url`` of :meth:`settings`);
        what pages told it is in :attr:`script`, a :class:`~hr_middleware.testing._script.ScriptLog`."""
        return self.url + SCRIPT_PATH

    def start(self) -> FakeHelloRetail:
        """Start serving in a daemon thread (idempotent); in memory, start answering calls to :attr:`url`."""
        if self._server is None:
            memory.register(self.url, self._answer_in_memory)
            return self
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hello-retail", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release hanging requests and close every open connection.

        A kept-alive connection from a pooled client is closed too, so after
        ``stop()`` nothing answers: Hello Retail is down for every client.
        """
        with self._lock:
            self._stopping = True
            self._release.set()
        if self._server is None:
            memory.unregister(self.url)
            return
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
        with self._lock:
            connections = list(self._connections.values())
        for sock, _ in connections:
            shut(sock)
        for _, thread in connections:
            thread.join(5)

    def __enter__(self) -> FakeHelloRetail:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self, **options: Any) -> Settings:
        """:class:`~hr_middleware.Settings` pointing at this server."""
        options.setdefault("website_uuid", self.website_uuid)
        options.setdefault("api_url", self.url)
        options.setdefault("script_url", self.script_url)
        return Settings(**options)

    def _answer_in_memory(
        self, url: str, body: bytes, *, timeout: float, headers: Mapping[str, str] | None, max_bytes: int | None
    ) -> Answer:
        """A POST answered in memory: what a transport makes of the reply a socket would carry.

        A reply that would not come within *timeout* (a hang, a drip, a longer
        ``delay``) is the transport's timeout, at once; a dropped or reset
        connection its transport error; an answer over *max_bytes* its size error.
        """
        target = url[len(self.url) :]
        reply, _ = reply_to_post(self, target, {k.lower(): v for k, v in (headers or {}).items()}, body, None)
        if reply.mode in (Mode.HANG, Mode.DRIP, Mode.DRIP_HEADERS) or reply.delay >= timeout:
            raise RequestTimeoutError(f"no answer within {timeout:g}s")
        if reply.mode is Mode.DROP:
            raise TransportError("RemoteDisconnected: the fake closed the connection without an answer")
        if reply.mode is Mode.RESET:
            raise TransportError("ConnectionResetError: the fake reset the connection")
        if max_bytes is not None and len(reply.body) > max_bytes:
            raise InvalidResponseError(f"answer larger than {max_bytes} bytes")
        return Answer(reply.status, reply.body)

    # -- behaviour -------------------------------------------------------------

    def reset(self) -> None:
        """Back to answering every mint at once with a new id; forget all counts."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()
            self.mode = Mode.OK
            self.delay = 0.0
            self.drip_interval = 0.2
            self.fail_every = 0
            self.failure_mode = Mode.SERVER_ERROR
            #: The ids handed out; reading one that was not says why (see :class:`._minted.Minted`).
            self.minted: list[str] = Minted(self)
            # The website each minted id was for.
            self._minted_for: dict[str, str | None] = {}
            self.requests: list[RecordedRequest] = []
            self.mint_attempts = 0
            self.api_mode = Mode.OK
            self.api_attempts = 0
            self.known_recommendation_keys: set[str] | None = None
            self.known_page_keys: set[str] | None = None
            self.api_key: str | None = None
            #: The websites it knows: tracking calls for others are refused.
            self.website_uuids: set[str] = set(self._website_uuids)
            #: Where the canned products' pages are: ``originalUrl`` is ``<shop_url>/products/<number>``
            #: (None: the fake's own :attr:`url`, where it serves stand-in product pages).
            self.shop_url: str | None = self._shop_url
            #: Searches for these (any case, spaces around ignored) match nothing.
            self.zero_result_queries: set[str] = {ZERO_RESULT_QUERY}
            self.connections = 0
            #: Each accepted ``POST /serve/collect/customerId``: ``(trackingUserId, customer id)``.
            self.customer_links: list[tuple[str, str]] = []
            #: What pages told the stand-in for Hello Retail's script (:attr:`script_url`).
            self.script = ScriptLog()

    @property
    def mint_count(self) -> int:
        """How many ids were handed out."""
        return len(self.minted)

    def mint_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /serve/trackingUser`` requests."""
        return [r for r in self.requests if r.path == MINT_PATH]

    def api_requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The recorded requests to the other endpoints (all, or those to *path*)."""
        return [r for r in self.requests if r.path != MINT_PATH and (path is None or r.path == path)]

    @property
    def open_peers(self) -> set[tuple[str, int]]:
        """The clients' (host, port) of the connections open right now."""
        with self._lock:
            return set(self._open_peers)

    def wait_disconnected(self, peer: tuple[str, int], timeout: float = 5.0) -> bool:
        """Wait until the connection from *peer* is closed; False if it is still open after *timeout* seconds."""
        with self._closed:
            return self._closed.wait_for(lambda: peer not in self._open_peers, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until *count* requests to Hello Retail's endpoints are recorded (a test's way to
        know a call arrived, say one the fake holds); False if not within *timeout* seconds."""
        with self._recorded:
            return self._recorded.wait_for(lambda: len(self.requests) >= count, timeout)

    def knows_website(self, website_uuid: str) -> bool:
        """Whether *website_uuid* is one of :attr:`website_uuids` (compared without regard to case)."""
        return website_uuid.lower() in {known.lower() for known in self.website_uuids}

    def minted_for(self, website_uuid: str | None) -> list[str]:
        """The ids minted for *website_uuid* (None: by requests that named no website), in order."""
        with self._lock:
            return [i for i in self.minted if self._minted_for.get(i) == website_uuid]

    def new_id(self, website_uuid: str | None = None) -> str:
        """A fresh valid id, recorded as minted (for *website_uuid*, when the mint named one)."""
        tracking_user_id = secrets.token_hex(12)
        with self._lock:
            self.minted.append(tracking_user_id)
            self._minted_for[tracking_user_id] = website_uuid
        return tracking_user_id

    def _mode_for_next_mint(self) -> tuple[Mode, threading.Event]:
        with self._lock:
            self.mint_attempts += 1
            mode = self.mode
            if self.fail_every and self.mint_attempts % self.fail_every == 0:
                mode = self.failure_mode
            return mode, self._release

    def _mode_for_next_api_call(self) -> tuple[Mode, threading.Event]:
        with self._lock:
            self.api_attempts += 1
            return self.api_mode, self._release

    def _record(self, request: RecordedRequest) -> None:
        with self._recorded:
            self.requests.append(request)
            self._recorded.notify_all()

    def _connected(self, peer: tuple[str, int], sock: socket.socket) -> bool:
        """Count a new connection; False when the server is stopping (the connection must end)."""
        with self._lock:
            if self._stopping:
                return False
            self.connections += 1
            self._open_peers.add(peer)
            self._connections[peer] = (sock, threading.current_thread())
            return True

    def _disconnected(self, peer: tuple[str, int]) -> None:
        with self._closed:
            self._open_peers.discard(peer)
            self._connections.pop(peer, None)
            self._closed.notify_all()
