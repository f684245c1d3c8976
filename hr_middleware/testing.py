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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from .identity import OPT_OUT_ID, is_valid_id
from .settings import Settings

__all__ = ["DEFAULT_WEBSITE_UUID", "FakeHelloRetail", "Mode", "RecordedRequest", "fake_products"]

#: The website UUID the fake server's :meth:`FakeHelloRetail.settings` uses.
DEFAULT_WEBSITE_UUID = "00000000-0000-4000-8000-000000000001"

MINT_PATH = "/serve/trackingUser"
RECOMS_PATH = "/serve/recoms"
SEARCH_PATH = "/serve/search"
PAGES_PREFIX = "/serve/pages/"
COLLECT_PREFIX = "/serve/collect/"
COLLECT_PATHS = {COLLECT_PREFIX + name for name in ("pageview", "click", "cart", "conversion")}
NOT_TRACKED = "Not tracked for anonymous user"


class Mode(str, Enum):
    """How the fake server answers: ``mode`` for mints, ``api_mode`` for the other endpoints.

    ``NO_ID`` and ``INVALID_ID`` concern mints only; the other endpoints answer
    normally in them.
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


class FakeHelloRetail:
    """A fake Hello Retail on 127.0.0.1 (random port), served from a background thread.

    Attributes you may set at any time: ``mode`` (a :class:`Mode`), ``delay``
    (seconds before answering), ``drip_interval``, and ``fail_every`` (every
    n-th mint answers with ``failure_mode`` instead; 0 = never); these are
    about mints. ``api_mode`` is the :class:`Mode` of every other endpoint.

    The downstream endpoints answer like Hello Retail, with products derived
    from a hash of the visitor (``trackingUserId``, else ``customerId`` or
    ``email``) and the request (key, query, url): the same for one visitor
    every time, different between visitors, the same for every anonymous or
    opted-out one. They check ids like the real service: a trackingUserId that
    is neither 24 lower-case hex nor :data:`~hr_middleware.OPT_OUT_ID` gets 400
    on the collect endpoints (and, stricter than documented, 500 elsewhere);
    cart and conversion answer ``"Not tracked for anonymous user"`` without a
    real id.
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

    def wait_for_mint_attempts(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until *count* mint requests arrived; True if they did."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.mint_attempts >= count:
                return True
            time.sleep(0.005)
        return False

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
        path = self.path
        fake._record(RecordedRequest("POST", path, headers, body, document, self.client_address))
        if path == MINT_PATH:
            mode, release = fake._mode_for_next_mint()
            if fake.delay and release.wait(fake.delay):
                return  # the server is stopping or was reset
            self._answer(mode, release, lambda: _mint_problem(document), lambda: _mint_answer(fake, mode))
        elif path in (RECOMS_PATH, SEARCH_PATH) or path in COLLECT_PATHS or path.startswith(PAGES_PREFIX):
            mode, release = fake._mode_for_next_api_call()
            self._answer(mode, release, lambda: _api_problem(path, document), lambda: _api_answer(mode, path, document))
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
            self._json(500, {"success": False, "code": 500, "message": "Unexpected error"})
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


def _error(code: int, message: str) -> dict[str, Any]:
    return {"success": False, "code": code, "message": message}


def _mint_problem(document: Any) -> tuple[int, Any] | None:
    if not isinstance(document, dict) or not isinstance(document.get("websiteUuid"), str):
        return 500, _error(0, "websiteUuid is required")
    return None


def _mint_answer(fake: FakeHelloRetail, mode: Mode) -> tuple[int, Any]:
    if mode is Mode.NO_ID:
        return 200, {"success": True}
    if mode is Mode.INVALID_ID:
        return 200, {"success": True, "id": "<script>alert(1)</script>"}
    if mode is Mode.SUCCESS_FALSE:
        return 200, {"success": False, "id": fake.new_id()}
    return 200, {"id": fake.new_id(), "success": True}


def _is_id_or_opt_out(value: object) -> bool:
    return value == OPT_OUT_ID or is_valid_id(value)


def _api_problem(path: str, document: Any) -> tuple[int, Any] | None:
    """Hello Retail's answer to a request it rejects, or None."""
    if not isinstance(document, dict):
        return 500, _error(0, "request body must be a JSON object")
    if "trackingUserId" in document and not _is_id_or_opt_out(document["trackingUserId"]):
        if path in COLLECT_PATHS:
            return 400, {"success": False, "message": '"trackingUserId" must be 24-character hex string'}
        return 500, _error(0, "trackingUserId must be 24-character hex string")
    if path in COLLECT_PATHS and not isinstance(document.get("websiteUuid"), str):
        return 500, _error(0, "websiteUuid is required")
    if path == RECOMS_PATH:
        if sum(name in document for name in ("trackingUserId", "email", "customerId")) > 1:
            return 500, _error(0, "trackingUserId, email and customerId are mutually exclusive")
        requests = document.get("requests")
        if not isinstance(requests, list) or not requests or not all(isinstance(r, dict) for r in requests):
            return 500, _error(0, "requests must be a non-empty list of objects")
    if path == SEARCH_PATH and not isinstance(document.get("key"), str):
        return 500, _error(0, "key is required")
    if path.startswith(PAGES_PREFIX) and not isinstance(document.get("url"), str):
        return 500, _error(0, "url is required")
    return None


def _api_answer(mode: Mode, path: str, document: Any) -> tuple[int, Any]:
    """The canned answer of a downstream endpoint."""
    if mode is Mode.SUCCESS_FALSE:
        return 200, _error(7, "Request could not be served")
    visitor = _visitor(document)
    if path == RECOMS_PATH:
        return 200, {"success": True, "responses": [_recom_response(visitor, r) for r in document["requests"]]}
    if path == SEARCH_PATH:
        scope = f"search:{document['key']}:{document.get('query', '')}"
        return 200, {"success": True, "products": _product_page(visitor, scope, document)}
    if path.startswith(PAGES_PREFIX):
        scope = f"page:{unquote(path[len(PAGES_PREFIX) :])}:{document['url']}"
        return 200, {"success": True, "products": _product_page(visitor, scope, document)}
    if path.endswith(("/cart", "/conversion")) and not is_valid_id(document.get("trackingUserId")):
        return 200, NOT_TRACKED
    return 200, {"success": True}


def _visitor(document: dict[str, Any]) -> str:
    """Who the products are for: "" for an anonymous or opted-out visitor."""
    tracking_user_id = document.get("trackingUserId")
    if is_valid_id(tracking_user_id):
        return str(tracking_user_id)
    for name in ("customerId", "email"):
        if isinstance(document.get(name), str) and document[name]:
            return f"{name}:{document[name]}"
    return ""


def _recom_response(visitor: str, request: dict[str, Any]) -> dict[str, Any]:
    key = request.get("key") or request.get("trackingKey")
    if not isinstance(key, str):
        return _error(0, "key or trackingKey is required")
    count = _bounded(request.get("count"), default=4)
    return {"success": True, "key": key, "products": fake_products(visitor, f"recoms:{key}", 0, count)}


def _product_page(visitor: str, scope: str, document: dict[str, Any]) -> dict[str, Any]:
    products = document.get("products")
    query = products if isinstance(products, dict) else {}
    start = _bounded(query.get("start"), default=0, low=0, high=10_000)
    count = _bounded(query.get("count"), default=10)
    total = 100
    count = max(0, min(count, total - start))
    return {"start": start, "count": count, "total": total, "results": fake_products(visitor, scope, start, count)}


def _bounded(value: object, *, default: int, low: int = 1, high: int = 50) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(low, min(value, high))


_ADJECTIVES = ("Classic", "Organic", "Vintage", "Compact", "Deluxe", "Rugged", "Silky", "Bright", "Cosy", "Swift")
_NOUNS = ("Teapot", "Backpack", "Lamp", "Sneakers", "Scarf", "Notebook", "Kettle", "Jacket", "Mug", "Headphones")


def fake_products(visitor: str, scope: str, start: int, count: int) -> list[dict[str, Any]]:
    """Products *start* to *start + count* for *visitor* ("" = anonymous) in *scope*, derived from a hash."""
    products = []
    for position in range(start, start + count):
        digest = hashlib.sha256(f"{visitor}|{scope}|{position}".encode()).hexdigest()
        number = str(10_000 + int(digest[:8], 16) % 90_000)
        products.append(
            {
                "title": f"{_ADJECTIVES[int(digest[8:10], 16) % 10]} {_NOUNS[int(digest[10:12], 16) % 10]}",
                "productNumber": number,
                "url": f"https://shop.example/products/{number}",
                "imgUrl": f"https://shop.example/images/{number}.jpg",
                "price": round(5 + int(digest[12:16], 16) % 20_000 / 100, 2),
                "trackingCode": digest[16:40],
            }
        )
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
