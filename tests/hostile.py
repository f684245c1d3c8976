"""A hostile Hello Retail for transport tests: one canned answer to every POST, on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections made at once (a 1 s SYN retry)
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seen: list[dict[str, str]]
    lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up on a refused answer is the point, not an error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(self.server.status)
        for name, value in self.server.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        try:
            self.wfile.write(self.server.body)
        except OSError:  # the client gave up (a refused bomb): nothing to do
            self.close_connection = True


@contextmanager
def answering(body: bytes, headers: list[tuple[str, str]], status: int = 200) -> Iterator[_Server]:
    """Serve *status*, *headers* and *body* to every POST; ``server.seen`` holds each request's headers."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.status, server.headers, server.body = status, headers, body
    server.seen, server.lock = [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def url_of(server: _Server, path: str = "/serve/search") -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}{path}"


class Dripper:
    """A server that answers every connection with *first*, then one more byte per *interval*, for ever."""

    def __init__(self, first: bytes, interval: float) -> None:
        self.first = first
        self.interval = interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        #: Set when the client closed a connection the server was dripping into.
        self.client_gone = threading.Event()
        self._stop = threading.Event()

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the listener was closed: stop
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)  # the request (or the TLS ClientHello)
                conn.sendall(self.first)
                while not self._stop.wait(self.interval):
                    conn.sendall(b"a")
            except OSError:  # reset or broken pipe: the client hung up
                self.client_gone.set()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.listener.close()


@contextmanager
def dripping(first: bytes, interval: float = 0.02) -> Iterator[Dripper]:
    """A :class:`Dripper` serving on 127.0.0.1 until the block ends."""
    server = Dripper(first, interval)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(5)
