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
from typing import TYPE_CHECKING, Any, NamedTuple
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
from ._bias import BIAS_PATH, bias_answer, bias_problem
from ._customers import CUSTOMER_LINK_PATH, customer_link_reply
from ._images import IMAGE_PREFIX, product_image
from ._index import index_page, log_call
from ._script import EVENTS_PATH, SCRIPT_PATH, STAND_IN

if TYPE_CHECKING:
    from ._server import FakeHelloRetail

__all__ = [
    "PRODUCT_PREFIX",
    "FakeHTTPServer",
    "FakeRequestHandler",
    "RecordedRequest",
    "Reply",
    "product_page",
    "reply_to_post",
    "shut",
]


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
    def website_uuid(self) -> str | None:
        """The website the request was for: its body's ``websiteUuid`` (None without one)."""
        website = self.json.get("websiteUuid") if isinstance(self.json, dict) else None
        return website if isinstance(website, str) else None

    @property
    def params(self) -> dict[str, str]:
        """The query string's parameters (the last value of a repeated one)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))


#: Where the fake serves its stand-in product pages (the products' ``originalUrl`` unless a ``shop_url`` is set).
PRODUCT_PREFIX = "/products/"


def product_page(number: str) -> bytes | None:
    """The stand-in page of product *number* (digits only), or None for anything else."""
    if not (number.isascii() and number.isdigit() and len(number) <= 12):
        return None
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Product {number}</title></head><body><h1>Product {number}</h1>"
        "<p>A stand-in for the shop's product page: the fake Hello Retail's products link here "
        "(their <code>originalUrl</code>). Go back to return to the shop.</p></body></html>"
    ).encode()


def shut(sock: socket.socket) -> None:
    """End a connection from another thread: its blocked read returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its thread
        pass


class Reply(NamedTuple):
    """What the fake does with one POST, whatever carries it (a socket, or memory): a fault
    of the connection (``HANG``, ``DROP``, ``RESET``), an answer sent slowly (``DRIP``,
    ``DRIP_HEADERS``), or an answer."""

    mode: Mode
    status: int = 200
    content_type: str = "application/json"
    body: bytes = b""
    #: Seconds to wait before answering (the fake's ``delay``, for mints).
    delay: float = 0.0


def reply_to_post(
    fake: FakeHelloRetail, target: str, headers: dict[str, str], body: bytes, peer: tuple[str, int] | None
) -> tuple[Reply, threading.Event]:
    """Record the POST to *target* (a path and query) and decide the fake's reply, with the
    event that ends a wait (set when the fake stops or is reset)."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    path, _, raw_query = target.partition("?")
    # Recorded once its attempt is counted: a test that saw it recorded sees it counted.
    recorded = RecordedRequest("POST", path, headers, body, document, peer, raw_query)
    query = dict(parse_qsl(raw_query))
    if path == MINT_PATH:
        mode, release = fake._mode_for_next_mint()
        fake._record(recorded)
        reply = _reply(mode, lambda: mint_problem(document), lambda: mint_answer(fake, mode, document))
        return reply._replace(delay=fake.delay), release
    if path == CUSTOMER_LINK_PATH:
        return customer_link_reply(fake, recorded, document)
    if path in (RECOMS_PATH, SEARCH_PATH) or path in COLLECT_PATHS or path.startswith(PAGES_PREFIX):
        mode, release = fake._mode_for_next_api_call()
        fake._record(recorded)
        reply = _reply(
            mode,
            lambda: api_problem(fake, path, query, document),
            lambda: api_answer(fake, mode, path, query, document),
        )
        return reply, release
    if path == BIAS_PATH:  # customer bias, in _bias.py
        mode, release = fake._mode_for_next_api_call()
        fake._record(recorded)
        return _reply(mode, lambda: bias_problem(fake, document), lambda: bias_answer(mode, document)), release
    fake._record(recorded)
    return Reply(Mode.OK, 404, body=_json({"success": False, "message": f"no such endpoint {path}"})), fake._release


def _reply(mode: Mode, problem: Callable[[], tuple[int, Any] | None], answer: Callable[[], tuple[int, Any]]) -> Reply:
    """The reply in *mode*; *problem* checks the request, *answer* is the good answer."""
    if mode in (Mode.HANG, Mode.DROP, Mode.RESET):
        return Reply(mode)
    rejected = problem()
    if rejected is not None:
        return Reply(Mode.OK, rejected[0], body=_json(rejected[1]))
    if mode is Mode.SERVER_ERROR:
        return Reply(mode, 500, body=_json(error_answer(UNEXPECTED_ERROR, UNEXPECTED_MESSAGE)))
    if mode is Mode.BAD_REQUEST:
        return Reply(mode, 400, body=_json({"success": False, "message": "Bad request"}))
    if mode is Mode.GATEWAY_ERROR:
        return Reply(mode, 502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    if mode is Mode.NOT_JSON:
        return Reply(mode, 200, "text/html", b"<html><body>Service Unavailable</body></html>")
    if mode is Mode.HUGE:
        return Reply(mode, 200, body=b" " * (16 * 1024 * 1024))
    status, document = answer()
    return Reply(mode, status, body=_json(document))


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


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
        # The script, product pages, images and the front page: they stand in for Hello Retail's CDN and
        # the shop's own servers, not for Hello Retail's API, so they are neither recorded nor counted.
        path = self.path.partition("?")[0]
        if path == SCRIPT_PATH:  # the stand-in for Hello Retail's script (_script.py): not recorded either
            self._send(200, "text/javascript; charset=utf-8", STAND_IN, cache_control="no-store")
            return
        if path.startswith(PRODUCT_PREFIX):
            page = product_page(path[len(PRODUCT_PREFIX) :])
            if page is None:
                self._json(404, {"success": False, "message": "no such product"})
            else:
                self._send(200, "text/html; charset=utf-8", page)
            return
        if path == "/":  # someone opened the fake's URL: say what it is
            self._send(200, "text/plain; charset=utf-8", index_page(self.server.fake))
            log_call(self.server.fake, "GET", self.path, "200")
            return
        image = product_image(path[len(IMAGE_PREFIX) :]) if path.startswith(IMAGE_PREFIX) else None
        log_call(self.server.fake, "GET", self.path, "404" if image is None else "200")
        if image is None:
            self._json(404, {"success": False, "message": "no such image"})
        else:
            self._send(200, "image/svg+xml", image, cache_control="public, max-age=86400")

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.partition("?")[0] == EVENTS_PATH:  # the stand-in's reports (_script.py), kept apart
            self._send(204 if fake.script.record(body) else 400, "text/plain", b"", cors=True)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply, release = reply_to_post(fake, self.path, headers, body, self.client_address)
        log_call(
            fake,
            "POST",
            self.path,
            str(reply.status) if reply.body else reply.mode.name,
            request=body,
            answer=reply.body,
        )
        if reply.delay and release.wait(reply.delay):
            return  # the server is stopping or was reset
        mode = reply.mode
        if mode is Mode.HANG:
            release.wait(120)
            self.close_connection = True
        elif mode is Mode.DROP:
            self.close_connection = True
        elif mode is Mode.RESET:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif mode in (Mode.DRIP, Mode.DRIP_HEADERS):
            self._drip(reply.body, fake.drip_interval, release, headers=mode is Mode.DRIP_HEADERS)
        else:
            self._send(reply.status, reply.content_type, reply.body)

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
        self._send(status, "application/json", _json(document))

    def _send(
        self, status: int, content_type: str, body: bytes, *, cache_control: str | None = None, cors: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if cors:  # a page on another origin (the shop) posts here
            self.send_header("Access-Control-Allow-Origin", "*")
        if cache_control is not None:
            self.send_header("Cache-Control", cache_control)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
