"""The fake's HTTP side: the threading server, and the handler that records each request and answers it."""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ._answers import (
    COLLECT_PATHS,
    MINT_PATH,
    PAGES_PREFIX,
    RECOMS_PATH,
    SEARCH_PATH,
    UNEXPECTED_ERROR,
    UNEXPECTED_MESSAGE,
    Mode,
    api_answer,
    api_problem,
    error_answer,
    mint_answer,
    mint_problem,
)
from ._images import IMAGE_PREFIX, product_image

if TYPE_CHECKING:
    from ._server import FakeHelloRetail

__all__ = ["FakeHTTPServer", "FakeRequestHandler", "RecordedRequest", "shut"]


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


def shut(sock: socket.socket) -> None:
    """End a connection from another thread: its blocked read returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its thread
        pass


class FakeHTTPServer(ThreadingHTTPServer):
    """The fake's server socket: a thread per connection, each handled by :class:`FakeRequestHandler`."""

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


class FakeRequestHandler(BaseHTTPRequestHandler):
    """One connection to the fake: records each request, then answers as the fake's mode says."""

    protocol_version = "HTTP/1.1"  # keep-alive, so that pooling can be observed
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: FakeHTTPServer
    timeout = 30  # idle keep-alive connections end eventually

    def setup(self) -> None:
        super().setup()
        if not self.server.fake._connected(self.client_address, self.connection):
            shut(self.connection)  # accepted while stop() ran: answer nothing

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._disconnected(self.client_address)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        # Images only: they stand in for the shop's image server, not for Hello Retail,
        # so they are neither recorded nor counted.
        path = self.path.partition("?")[0]
        image = product_image(path[len(IMAGE_PREFIX) :]) if path.startswith(IMAGE_PREFIX) else None
        if image is None:
            self._json(404, {"success": False, "message": "no such image"})
        else:
            self._send(200, "image/svg+xml", image, cache_control="public, max-age=86400")

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
            self._answer(mode, release, lambda: mint_problem(document), lambda: mint_answer(fake, mode))
        elif path in (RECOMS_PATH, SEARCH_PATH) or path in COLLECT_PATHS or path.startswith(PAGES_PREFIX):
            mode, release = fake._mode_for_next_api_call()
            self._answer(
                mode,
                release,
                lambda: api_problem(fake, path, query, document),
                lambda: api_answer(fake, mode, path, query, document),
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
            self._json(500, error_answer(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE))
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

    def _send(self, status: int, content_type: str, body: bytes, *, cache_control: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if cache_control is not None:
            self.send_header("Cache-Control", cache_control)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
