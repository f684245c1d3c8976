"""A hostile Hello Retail for transport tests: one canned answer to every POST, on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seen: list[dict[str, str]]
    lock: threading.Lock


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
