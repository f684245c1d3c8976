"""A fake Hello Retail for tests and demos: a real HTTP server on 127.0.0.1.

It mints valid ids on ``POST /serve/trackingUser``, counts them, answers the
downstream endpoints (recommendations, search, pages, tracking) with
deterministic canned products, records every request, and can be told to be
slow, hang, fail or answer garbage::

    from hr_middleware.testing import FakeHelloRetail, Mode

    with FakeHelloRetail() as fake:
        app = TrackingUserMiddleware(app, settings=fake.settings())
        ...
        assert fake.mint_count == 1
        fake.mode = Mode.SERVER_ERROR      # mints fail
        fake.api_mode = Mode.HANG          # the other endpoints hang

With pytest, the ``fake_hello_retail`` fixture (from this package's pytest
plugin) gives a running server, reset for every test. Nothing here talks to
the real Hello Retail.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from ..identity import OPT_OUT_ID, is_valid_id
from ..settings import Settings

__all__ = ["DEFAULT_WEBSITE_UUID", "FakeHelloRetail", "Mode", "RecordedRequest", "fake_products"]

#: The website UUID the fake server's :meth:`FakeHelloRetail.settings` uses.
DEFAULT_WEBSITE_UUID = "00000000-0000-4000-8000-000000000001"

MINT_PATH = "/serve/trackingUser"
RECOMS_PATH = "/serve/recoms"
SEARCH_PATH = "/serve/search"
PAGES_PREFIX = "/serve/pages/"
COLLECT_PREFIX = "/serve/collect/"
COLLECT_PATHS = {COLLECT_PREFIX + name for name in ("pageview", "click", "cart", "conversion")}


class Mode(str, Enum):
    """How the fake server answers: ``mode`` for mints, ``api_mode`` for the other endpoints.

    ``NO_ID``, ``INVALID_ID`` and ``ID_ONLY`` concern mints only; the other
    endpoints answer normally in them.
    """

    #: 200 with a fresh valid id (other endpoints: their canned answer).
    OK = "ok"
    #: Accept the request and never answer (until the server stops or the mode changes).
    HANG = "hang"
    #: 500 with Hello Retail's JSON error body.
    SERVER_ERROR = "server_error"
    #: 400 with Hello Retail's JSON error body.
    BAD_REQUEST = "bad_request"
    #: 502 with an HTML body, as a proxy in front of Hello Retail answers.
    GATEWAY_ERROR = "gateway_error"
    #: 200 with an HTML body.
    NOT_JSON = "not_json"
    #: 200 JSON without an id.
    NO_ID = "no_id"
    #: 200 JSON whose id is not 24 lower-case hex.
    INVALID_ID = "invalid_id"
    #: 200 JSON ``{"id": ...}`` without ``success``: the shape Hello Retail's public documentation shows.
    ID_ONLY = "id_only"
    #: 200 JSON with ``success: false`` (other endpoints: with a ``code`` and ``message``).
    SUCCESS_FALSE = "success_false"
    #: Read the request, then close the connection without a word.
    DROP = "drop"
    #: Read the request, then reset the connection (TCP RST).
    RESET = "reset"
    #: 200 whose (good) body arrives one byte per ``drip_interval`` seconds.
    DRIP = "drip"
    #: 200 whose status line and headers arrive one byte per ``drip_interval`` seconds.
    DRIP_HEADERS = "drip_headers"
    #: 200 with a 16 MiB body.
    HUGE = "huge"


@dataclass
class RecordedRequest:
    """A request the fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = field(default=None)
    #: The client's (host, port): requests sent over one pooled connection share it.
    peer: tuple[str, int] | None = None
    #: The query string, without the ``?`` ("" when there was none).
    query: str = ""

    @property
    def params(self) -> dict[str, str]:
        """The query string's parameters (the last value of a repeated one)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))


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
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, website_uuid: str = DEFAULT_WEBSITE_UUID) -> None:
        self.host = host
        self.website_uuid = website_uuid
        self._lock = threading.Lock()
        self._release = threading.Event()
        # Not reset between tests: connections outlive them.
        self._open_peers: set[tuple[str, int]] = set()
        # Each open connection's socket and thread, so that stop() can end them.
        self._connections: dict[tuple[str, int], tuple[socket.socket, threading.Thread]] = {}
        self._stopping = False
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to use as ``api_url``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeHelloRetail:
        """Start serving in a daemon thread (idempotent)."""
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
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
        with self._lock:
            connections = list(self._connections.values())
        for sock, _ in connections:
            _shut(sock)
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
            self.minted: list[str] = []
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
        with self._lock:
            self.requests.append(request)

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
        with self._lock:
            self._open_peers.discard(peer)
            self._connections.pop(peer, None)


def _shut(sock: socket.socket) -> None:
    """End a connection from another thread: its blocked read returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its thread
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops or resets connections when many
    # visitors mint at once (a burst of 50 first visits lost ~20 of them).
    request_queue_size = 128
    fake: FakeHelloRetail

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection closed under an answer (by the client, or by stop()) is
        # not worth a traceback; anything else is a bug in the fake.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that pooling can be observed
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server
    timeout = 30  # idle keep-alive connections end eventually

    def setup(self) -> None:
        super().setup()
        if not self.server.fake._connected(self.client_address, self.connection):
            _shut(self.connection)  # accepted while stop() ran: answer nothing

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._disconnected(self.client_address)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        path, _, raw_query = self.path.partition("?")
        fake._record(RecordedRequest("POST", path, headers, body, document, self.client_address, raw_query))
        query = dict(parse_qsl(raw_query))
        if path == MINT_PATH:
            mode, release = fake._mode_for_next_mint()
            if fake.delay and release.wait(fake.delay):
                return  # the server is stopping or was reset
            self._answer(mode, release, lambda: _mint_problem(document), lambda: _mint_answer(fake, mode))
        elif path in (RECOMS_PATH, SEARCH_PATH) or path in COLLECT_PATHS or path.startswith(PAGES_PREFIX):
            mode, release = fake._mode_for_next_api_call()
            self._answer(
                mode,
                release,
                lambda: _api_problem(fake, path, query, document),
                lambda: _api_answer(fake, mode, path, query, document),
            )
        else:
            self._json(404, {"success": False, "message": f"no such endpoint {path}"})

    def _answer(
        self,
        mode: Mode,
        release: threading.Event,
        problem: Callable[[], tuple[int, Any] | None],
        answer: Callable[[], tuple[int, Any]],
    ) -> None:
        """Answer as *mode* says; *problem* checks the request, *answer* is the good answer."""
        if mode is Mode.HANG:
            release.wait(120)
            self.close_connection = True
            return
        if mode is Mode.DROP:
            self.close_connection = True
            return
        if mode is Mode.RESET:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        rejected = problem()
        if rejected is not None:
            self._json(*rejected)
        elif mode is Mode.SERVER_ERROR:
            self._json(500, _error(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE))
        elif mode is Mode.BAD_REQUEST:
            self._json(400, {"success": False, "message": "Bad request"})
        elif mode is Mode.GATEWAY_ERROR:
            self._send(502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        elif mode is Mode.NOT_JSON:
            self._send(200, "text/html", b"<html><body>Service Unavailable</body></html>")
        elif mode is Mode.HUGE:
            self._send(200, "application/json", b" " * (16 * 1024 * 1024))
        elif mode is Mode.DRIP:
            self._drip(json.dumps(answer()[1]).encode(), self.server.fake.drip_interval, release, headers=False)
        elif mode is Mode.DRIP_HEADERS:
            self._drip(json.dumps(answer()[1]).encode(), self.server.fake.drip_interval, release, headers=True)
        else:
            self._json(*answer())

    def _drip(self, body: bytes, interval: float, release: threading.Event, *, headers: bool) -> None:
        """A 200 with *body*, one byte per *interval*: of the status line and headers
        when *headers*, else of the body."""
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        try:
            for data, slow in ((head.encode(), headers), (body, not headers)):
                if not slow:
                    self.wfile.write(data)
                    continue
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    if release.wait(interval):
                        return  # stopping or reset
        except OSError:
            pass
        finally:
            self.close_connection = True

    def _json(self, status: int, document: Any) -> None:
        self._send(status, "application/json", json.dumps(document).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


# -- what the endpoints answer -------------------------------------------------------
#
# The shapes below are Hello Retail's (see tests/contract/*.json, which the fake is
# tested against); where the published facts are silent, the contract says so.

#: ``code`` of Hello Retail's error answers: strings, never numbers.
INVALID_REQUEST = "INVALID REQUEST"
NOT_FOUND = "NOT FOUND"
UNEXPECTED_ERROR = "UNEXPECTED ERROR"
ACCESS_DENIED = "ACCESS DENIED"

UNEXPECTED_MESSAGE = "Unexpected error, please contact Hello Retail support"
ACCESS_DENIED_MESSAGE = (
    "Authentication with access to the website is required when using email or customerId as identifier"
)
TWO_IDENTITIES_MESSAGE = "Only one of email, customerId, or trackingUserId can be provided"
INVALID_ID_MESSAGE = "Invalid trackingUserId: must be 24-character hex string"
NOT_TRACKED_MESSAGE = "Not tracked for anonymous user"

#: The good answer's ``message`` of each collect endpoint.
TRACKED_MESSAGES = {
    COLLECT_PREFIX + "pageview": "Page view tracked",
    COLLECT_PREFIX + "click": "Click tracked",
    COLLECT_PREFIX + "cart": "Cart tracked",
    COLLECT_PREFIX + "conversion": "Conversion tracked",
}
SOURCE_TYPES = frozenset(
    {"TOP", "MOST_BOUGHT", "MOST_VIEWED", "ALTERNATIVES", "BOUGHT_TOGETHER", "RETARGETED", "RECENTLY_BOUGHT", "RELATED"}
)
#: Search's content types besides products, and how many of each match any query.
SEARCH_CONTENT = {"categories": 12, "brands": 6, "blogPosts": 4, "sitePages": 3, "redirects": 0}
#: How many products match a query, a page or a recommendation box without filters.
CATALOGUE_SIZE = 100
BRANDS = ("Acme", "Globex", "Initech", "Umbrella")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "code": code, "message": message}


def _mint_problem(document: Any) -> tuple[int, Any] | None:
    if not isinstance(document, dict) or not isinstance(document.get("websiteUuid"), str):
        return 500, _error(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
    return None


def _mint_answer(fake: FakeHelloRetail, mode: Mode) -> tuple[int, Any]:
    if mode is Mode.NO_ID:
        return 200, {"success": True}
    if mode is Mode.INVALID_ID:
        return 200, {"success": True, "id": "<script>alert(1)</script>"}
    if mode is Mode.SUCCESS_FALSE:
        return 200, {"success": False, "id": fake.new_id()}
    if mode is Mode.ID_ONLY:
        return 200, {"id": fake.new_id()}
    return 200, {"id": fake.new_id(), "success": True}


def _is_id_or_opt_out(value: object) -> bool:
    return value == OPT_OUT_ID or is_valid_id(value)


def _named_by(document: dict[str, Any]) -> list[str]:
    """The body fields that name the visitor."""
    return [name for name in ("trackingUserId", "email", "customerId") if name in document]


def _authenticated(fake: FakeHelloRetail, query: dict[str, str]) -> bool:
    key = query.get("apiKey")
    return bool(key) and (fake.api_key is None or key == fake.api_key)


def _api_problem(fake: FakeHelloRetail, path: str, query: dict[str, str], document: Any) -> tuple[int, Any] | None:
    """Hello Retail's answer to a request it rejects, or None."""
    if path in COLLECT_PATHS:
        return _collect_problem(path, document)
    if path == RECOMS_PATH:
        return _recoms_problem(fake, query, document)
    if path.startswith(PAGES_PREFIX):
        key = unquote(path[len(PAGES_PREFIX) :])
        known = fake.known_page_keys
        if not isinstance(document, dict) or not isinstance(document.get("url"), str) or not key:
            return 500, _error(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
        if (known is not None and key not in known) or not _valid_optional_id(document):
            return 500, _error(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
        return None
    # search
    if not isinstance(document, dict) or not isinstance(document.get("key"), str) or not _valid_optional_id(document):
        return 500, _error(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)
    return None


def _valid_optional_id(document: dict[str, Any]) -> bool:
    return "trackingUserId" not in document or _is_id_or_opt_out(document["trackingUserId"])


def _collect_problem(path: str, document: Any) -> tuple[int, Any] | None:
    if not isinstance(document, dict):
        return 400, {"success": False, "message": "Invalid request body"}
    if not _valid_optional_id(document):
        # Hello Retail's conversion endpoint words it without the last word.
        message = INVALID_ID_MESSAGE.removesuffix(" string") if path.endswith("/conversion") else INVALID_ID_MESSAGE
        return 400, {"success": False, "message": message}
    if not isinstance(document.get("websiteUuid"), str) or not document["websiteUuid"]:
        if path.endswith(("/cart", "/conversion")):
            return 400, {"success": False, "message": "Website not found"}
        return 400, {"success": False, "message": "websiteUuid is required"}
    return None


def _recoms_problem(fake: FakeHelloRetail, query: dict[str, str], document: Any) -> tuple[int, Any] | None:
    if not isinstance(document, dict):
        return 500, _error(INVALID_REQUEST, "Request body must be a JSON object")
    named_by = _named_by(document)
    if len(named_by) > 1:
        return 500, _error(INVALID_REQUEST, TWO_IDENTITIES_MESSAGE)
    if not _valid_optional_id(document):
        return 500, _error(INVALID_REQUEST, INVALID_ID_MESSAGE)
    if named_by and named_by[0] != "trackingUserId" and not _authenticated(fake, query):
        return 500, _error(ACCESS_DENIED, ACCESS_DENIED_MESSAGE)
    requests = document.get("requests")
    if not isinstance(requests, list) or not requests or not all(isinstance(r, dict) for r in requests):
        return 500, _error(INVALID_REQUEST, "requests must be a non-empty list of recom requests")
    known = fake.known_recommendation_keys
    for request in requests:
        key = request.get("key")
        if isinstance(key, str):
            if known is not None and key not in known:
                return 500, _error(NOT_FOUND, f"Recom with key {key} not found")
            continue
        if not isinstance(request.get("trackingKey"), str) or not request["trackingKey"]:
            return 500, _error(INVALID_REQUEST, "key or trackingKey is required")
        if not isinstance(document.get("websiteUuid"), str):
            return 500, _error(INVALID_REQUEST, "websiteUuid is required when loading any unmanaged recoms")
        sources = request.get("sources")
        if not isinstance(sources, list) or not all(
            isinstance(s, dict) and s.get("type") in SOURCE_TYPES for s in sources
        ):
            return 500, _error(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE + ". ")
    return None


def _api_answer(fake: FakeHelloRetail, mode: Mode, path: str, query: dict[str, str], document: Any) -> tuple[int, Any]:
    """The good answer of a downstream endpoint."""
    if mode is Mode.SUCCESS_FALSE:
        return 200, _error(INVALID_REQUEST, "Request could not be served")
    if path in COLLECT_PATHS:
        return 200, {"success": True, "message": _collect_message(fake, path, query, document)}
    visitor = _visitor(document)
    if path == RECOMS_PATH:
        return 200, {"success": True, "responses": [_recom_response(visitor, r) for r in document["requests"]]}
    if path == SEARCH_PATH:
        return 200, _search_answer(visitor, document)
    return 200, _page_answer(visitor, unquote(path[len(PAGES_PREFIX) :]), document)


def _collect_message(fake: FakeHelloRetail, path: str, query: dict[str, str], document: dict[str, Any]) -> str:
    named_by = _named_by(document)
    by_customer = [name for name in named_by if name != "trackingUserId"]
    if by_customer and "trackingUserId" not in named_by and not _authenticated(fake, query):
        return NOT_TRACKED_MESSAGE  # email/customerId without the API key: an anonymous visitor
    if path.endswith(("/cart", "/conversion")) and not (
        is_valid_id(document.get("trackingUserId")) or (by_customer and _authenticated(fake, query))
    ):
        return NOT_TRACKED_MESSAGE
    return TRACKED_MESSAGES[path]


def _visitor(document: dict[str, Any]) -> str:
    """Who the products are for: "" for an anonymous or opted-out visitor."""
    tracking_user_id = document.get("trackingUserId")
    if is_valid_id(tracking_user_id):
        return str(tracking_user_id)
    for name in ("customerId", "email"):
        if isinstance(document.get(name), str) and document[name]:
            return f"{name}:{document[name]}"
    return ""


def _fields(request: dict[str, Any]) -> list[str] | None:
    fields = request.get("fields")
    if isinstance(fields, list) and all(isinstance(f, str) for f in fields) and fields:
        return list(fields)
    return None


def _recom_response(visitor: str, request: dict[str, Any]) -> dict[str, Any]:
    count = _bounded(request.get("count"), default=4)
    context = request.get("context")
    scope = f"recoms:{request.get('key') or request.get('trackingKey')}:{json.dumps(context, sort_keys=True)}"
    products = fake_products(visitor, scope, 0, count, fields=_fields(request))
    if isinstance(request.get("key"), str):
        return {"key": request["key"], "success": True, "products": products}
    sources = [s.get("type") for s in request.get("sources", [])]
    steps = ", ".join(f"{i}. {source} (1ms): {count}" for i, source in enumerate(sources))
    return {"trackingKey": request["trackingKey"], "success": True, "products": products, "countAfterSource": steps}


def _slice(query: dict[str, Any], total: int) -> tuple[int, int, int]:
    """start, requested count and returned count of a query over *total* matches."""
    start = _bounded(query.get("start"), default=0, low=0, high=10_000)
    requested = _bounded(query.get("count"), default=10, low=0, high=200)
    return start, requested, max(0, min(requested, total - start))


def _filters(query: dict[str, Any]) -> list[str]:
    filters = query.get("filters")
    return [f for f in filters if isinstance(f, str)] if isinstance(filters, list) else []


def _matches(filters: list[str]) -> int:
    """How many products match *filters*: each filter halves the catalogue."""
    return max(1, CATALOGUE_SIZE >> len(filters))


def _facets(filters: list[str], total: int) -> list[dict[str, Any]]:
    """Facets in Hello Retail's shape: a LIST (brand), a RANGE (price) and a BOOLEAN (isOnSale)."""
    share, rest = divmod(total, len(BRANDS))
    brand_values = [
        {
            "title": brand,
            "count": share + (1 if i < rest else 0),
            "query": f"brand:{brand}",
            "selected": f"brand:{brand}" in filters,
        }
        for i, brand in enumerate(BRANDS)
    ]
    return [
        {"name": "brand", "settings": {"name": "brand", "type": "LIST", "title": "Brand"}, "values": brand_values},
        {
            "name": "price",
            "settings": {"name": "price", "type": "RANGE", "title": "Price"},
            "min": "5.0",
            "max": "205.0",
        },
        {
            "name": "isOnSale",
            "settings": {"name": "isOnSale", "type": "BOOLEAN", "title": "On sale"},
            "values": [
                {"title": "true", "count": total // 3, "query": "isOnSale:true", "selected": "isOnSale:true" in filters}
            ],
        },
    ]


def _sorting(query: dict[str, Any]) -> list[dict[str, Any]]:
    sorting = query.get("sorting")
    chosen: list[Any] = sorting if isinstance(sorting, list) else []
    options = []
    for name, title in (("price", "Price"), ("title", "Name")):
        options.append(
            {
                "name": name,
                "settings": {"name": name, "title": title, "ascendingText": "asc", "descendingText": "desc"},
                "ascending": {"query": f"{name} asc", "selected": f"{name} asc" in chosen},
                "descending": {"query": f"{name} desc", "selected": f"{name} desc" in chosen},
            }
        )
    return options


def _search_answer(visitor: str, document: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"success": True, "query": document.get("query", "")}
    scope = f"search:{document['key']}:{document.get('query', '')}"
    products = document.get("products")
    if isinstance(products, dict):
        filters = _filters(products)
        total = _matches(filters)
        start, requested, returned = _slice(products, total)
        results = fake_products(visitor, f"{scope}:{filters}", start, returned, fields=_fields(products))
        section: dict[str, Any] = {
            "start": start,
            "requestedCount": requested,
            "returnedCount": returned,
            "totalCount": total,
            "results": [{**p, **_SEARCH_METADATA} for p in results],
            "sorting": _sorting(products),
            "suggestedProductStatus": "NO_SUGGESTED",
        }
        if products.get("returnFilters") is True:
            section["filters"] = _facets(filters, total)
        answer["products"] = section
    for content, total in SEARCH_CONTENT.items():
        query = document.get(content)
        if not isinstance(query, dict):
            continue
        start, requested, returned = _slice(query, total)
        answer[content] = {
            "start": start,
            "requestedCount": requested,
            "returnedCount": returned,
            "totalCount": total,
            "results": [_content_item(content, scope, i) for i in range(start, start + returned)],
        }
    return answer


_SEARCH_METADATA: dict[str, Any] = {
    "extraData": {},
    "extraDataList": {},
    "extraDataNumber": {},
    "suggestedResult": False,
}


def _content_item(content: str, scope: str, position: int) -> dict[str, Any]:
    digest = hashlib.sha256(f"{scope}|{content}|{position}".encode()).hexdigest()
    slug = f"{content.lower()}-{digest[:6]}"
    if content == "redirects":
        return {
            "url": f"https://shop.example/{slug}",
            "originalUrl": f"https://shop.example/{slug}",
            "trackingCode": digest[16:40],
        }
    return {
        "title": f"{content[:1].upper()}{content[1:]} {digest[:4]}",
        "url": f"https://shop.example/{slug}",
        "trackingCode": digest[16:40],
    }


def _page_answer(visitor: str, key: str, document: dict[str, Any]) -> dict[str, Any]:
    first_load = document.get("firstLoad") is True
    products = document.get("products")
    if not isinstance(products, dict):
        products = {}
    filters = _filters(products)
    params = document.get("params")
    total = _matches(filters)
    start, requested, returned = _slice(products, total)
    scope = f"page:{key}:{document['url']}:{json.dumps(params, sort_keys=True)}:{filters}"
    result = fake_products(visitor, scope, start, returned, fields=_fields(products))
    section: dict[str, Any] = {
        "start": start,
        "count": requested,
        "total": total,
        "result": result,
        "filters": _facets(filters, total) if first_load else [],
        "sorting": _sorting(products),
        "html": None,
        "style": None,
        "javascript": None,
    }
    if document.get("format", "html") == "html":
        items = "".join(f'<li class="hr-product">{p.get("title", "")}</li>' for p in result)
        section.update(html=f'<ul class="hr-page">{items}</ul>', style=".hr-page{list-style:none}", javascript="")
    return {"success": True, "firstLoad": first_load, "errors": [], "products": section}


def _bounded(value: object, *, default: int, low: int = 1, high: int = 50) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(low, min(value, high))


_ADJECTIVES = ("Classic", "Organic", "Vintage", "Compact", "Deluxe", "Rugged", "Silky", "Bright", "Cosy", "Swift")
_NOUNS = ("Teapot", "Backpack", "Lamp", "Sneakers", "Scarf", "Notebook", "Kettle", "Jacket", "Mug", "Headphones")


def fake_products(
    visitor: str, scope: str, start: int, count: int, *, fields: list[str] | None = None
) -> list[dict[str, Any]]:
    """Products *start* to *start + count* for *visitor* ("" = anonymous) in *scope*, derived from a hash.

    With *fields*, each product holds only those of its fields (as Hello
    Retail returns only the requested ones); without, all of them.
    """
    products = []
    for position in range(start, start + count):
        digest = hashlib.sha256(f"{visitor}|{scope}|{position}".encode()).hexdigest()
        number = str(10_000 + int(digest[:8], 16) % 90_000)
        product = {
            "title": f"{_ADJECTIVES[int(digest[8:10], 16) % 10]} {_NOUNS[int(digest[10:12], 16) % 10]}",
            "productNumber": number,
            "url": f"https://shop.example/products/{number}",
            "imgUrl": f"https://shop.example/images/{number}.jpg",
            "price": round(5 + int(digest[12:16], 16) % 20_000 / 100, 2),
            "brand": BRANDS[int(digest[40:42], 16) % len(BRANDS)],
            "trackingCode": digest[16:40],
        }
        products.append(product if fields is None else {name: product[name] for name in fields if name in product})
    return products


def main(argv: list[str] | None = None) -> None:
    """``python -m hr_middleware.testing``: a fake Hello Retail in the foreground.

    For manual tests, a demo against another process, or a benchmark that must
    not share a GIL with the server. Prints its base URL, then serves until
    interrupted.
    """
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="python -m hr_middleware.testing", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.OK.value)
    args = parser.parse_args(argv)
    fake = FakeHelloRetail(port=args.port)
    fake.delay = args.delay
    fake.mode = Mode(args.mode)
    fake.start()
    print(fake.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
