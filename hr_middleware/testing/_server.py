"""The fake Hello Retail's lifecycle: start, stop, reset, and what it counted and recorded."""

from __future__ import annotations

import itertools
import secrets
import socket
import threading
from collections.abc import Mapping
from typing import Any

from hr_middleware._core.settings import Settings
from hr_middleware._hello_retail import memory
from hr_middleware._hello_retail.errors import InvalidResponseError, RequestTimeoutError, TransportError
from hr_middleware._hello_retail.transport import Answer

from ._answers import MINT_PATH, Mode
from ._handler import FakeHTTPServer, FakeRequestHandler, RecordedRequest, reply_to_post, shut
from ._images import IMAGE_PREFIX
from ._minted import Minted

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
    400 to a malformed trackingUserId on the collect endpoints, want the
    ``?apiKey=`` query parameter when ``email``/``customerId`` name the visitor,
    and answer cart and conversion of an anonymous visitor with
    ``{"success": true, "message": "Not tracked for anonymous user"}``.

    Also settable: ``known_recommendation_keys`` and ``known_page_keys`` (None,
    the default: every key exists; a set: only those, others fail as at Hello
    Retail) and ``api_key`` (None: any non-empty ``apiKey`` is accepted; a
    string: only that one).

    The canned products' ``imgUrl`` points at pictures the fake serves itself
    (generated SVGs under :attr:`images_url`); fetching them is not a call to
    Hello Retail, so it is neither recorded nor counted.

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
        website_uuid: str = DEFAULT_WEBSITE_UUID,
        in_memory: bool = False,
    ) -> None:
        self.host = host
        self.website_uuid = website_uuid
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
            self.requests: list[RecordedRequest] = []
            self.mint_attempts = 0
            self.api_mode = Mode.OK
            self.api_attempts = 0
            self.known_recommendation_keys: set[str] | None = None
            self.known_page_keys: set[str] | None = None
            self.api_key: str | None = None
            self.connections = 0

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

    def new_id(self) -> str:
        """A fresh valid id, recorded as minted."""
        tracking_user_id = secrets.token_hex(12)
        with self._lock:
            self.minted.append(tracking_user_id)
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
