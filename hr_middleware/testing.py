"""A fake Hello Retail for tests and demos: a real HTTP server on 127.0.0.1.

It mints valid ids on ``POST /serve/trackingUser``, counts them, records every
request, and can be told to be slow, hang, fail or answer garbage::

    from hr_middleware.testing import FakeHelloRetail, Mode

    with FakeHelloRetail() as fake:
        app = TrackingUserMiddleware(app, settings=fake.settings())
        ...
        assert fake.mint_count == 1
        fake.mode = Mode.SERVER_ERROR

With pytest, the ``fake_hello_retail`` fixture (from this package's pytest
plugin) gives a running server, reset for every test. Nothing here talks to
the real Hello Retail.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .settings import Settings

__all__ = ["DEFAULT_WEBSITE_UUID", "FakeHelloRetail", "Mode", "RecordedRequest"]

#: The website UUID the fake server's :meth:`FakeHelloRetail.settings` uses.
DEFAULT_WEBSITE_UUID = "00000000-0000-4000-8000-000000000001"


class Mode(str, Enum):
    """How the fake server answers a mint."""

    #: 200 with a fresh valid id.
    OK = "ok"
    #: Accept the request and never answer (until the server stops or the mode changes).
    HANG = "hang"
    #: 500 with Hello Retail's JSON error body.
    SERVER_ERROR = "server_error"
    #: 400 with Hello Retail's JSON error body.
    BAD_REQUEST = "bad_request"
    #: 200 with an HTML body.
    NOT_JSON = "not_json"
    #: 200 JSON without an id.
    NO_ID = "no_id"
    #: 200 JSON whose id is not 24 lower-case hex.
    INVALID_ID = "invalid_id"
    #: 200 JSON with ``success: false``.
    SUCCESS_FALSE = "success_false"
    #: Read the request, then close the connection without a word.
    DROP = "drop"
    #: Read the request, then reset the connection (TCP RST).
    RESET = "reset"
    #: 200 whose body arrives one byte per ``drip_interval`` seconds.
    DRIP = "drip"
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


class FakeHelloRetail:
    """A fake Hello Retail on 127.0.0.1 (random port), served from a background thread.

    Attributes you may set at any time: ``mode`` (a :class:`Mode`), ``delay``
    (seconds before answering), ``drip_interval``, and ``fail_every`` (every
    n-th mint answers with ``failure_mode`` instead; 0 = never).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, website_uuid: str = DEFAULT_WEBSITE_UUID) -> None:
        self.host = host
        self.website_uuid = website_uuid
        self._lock = threading.Lock()
        self._release = threading.Event()
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
        """Stop serving and release hanging requests."""
        self._release.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

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
            self.connections = 0

    @property
    def mint_count(self) -> int:
        """How many ids were handed out."""
        return len(self.minted)

    def mint_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST /serve/trackingUser`` requests."""
        return [r for r in self.requests if r.path == "/serve/trackingUser"]

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

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of new
    # connections; the client retries after 1 s, which looks like a slow mint.
    request_queue_size = 128
    fake: FakeHelloRetail


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that pooling can be observed
    server: _Server
    timeout = 30  # idle keep-alive connections end eventually

    def setup(self) -> None:
        super().setup()
        self.server.fake._connected()

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
        fake._record(RecordedRequest("POST", self.path, headers, body, document))
        if self.path == "/serve/trackingUser":
            self._mint(fake, document)
        else:
            self._json(404, {"success": False, "message": f"no such endpoint {self.path}"})

    def _mint(self, fake: FakeHelloRetail, document: Any) -> None:
        mode, release = fake._mode_for_next_mint()
        if fake.delay and release.wait(fake.delay):
            return  # the server is stopping or was reset
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
        if not isinstance(document, dict) or not isinstance(document.get("websiteUuid"), str):
            self._json(500, {"success": False, "code": 0, "message": "websiteUuid is required"})
            return
        if mode is Mode.SERVER_ERROR:
            self._json(500, {"success": False, "code": 500, "message": "Unexpected error"})
        elif mode is Mode.BAD_REQUEST:
            self._json(400, {"success": False, "message": "Bad request"})
        elif mode is Mode.NOT_JSON:
            self._send(200, "text/html", b"<html><body>Service Unavailable</body></html>")
        elif mode is Mode.NO_ID:
            self._json(200, {"success": True})
        elif mode is Mode.INVALID_ID:
            self._json(200, {"success": True, "id": "<script>alert(1)</script>"})
        elif mode is Mode.SUCCESS_FALSE:
            self._json(200, {"success": False, "id": fake.new_id()})
        elif mode is Mode.DRIP:
            self._drip(json.dumps({"id": fake.new_id(), "success": True}).encode(), fake.drip_interval, release)
        elif mode is Mode.HUGE:
            self._send(200, "application/json", b" " * (16 * 1024 * 1024))
        else:
            self._json(200, {"id": fake.new_id(), "success": True})

    def _drip(self, body: bytes, interval: float, release: threading.Event) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                if release.wait(interval):
                    break
        except OSError:
            pass
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
