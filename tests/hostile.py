"""A hostile Hello Retail for transport tests: one canned answer to every POST, on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
    """A server that answers every connection with *first*, then *more* every *interval* seconds, for ever.

    With the default *more* it drips one byte at a time; with an *interval* of 0
    and a *more* of whole events it floods.
    """

    def __init__(self, first: bytes, interval: float, more: bytes = b"a") -> None:
        self.first = first
        self.interval = interval
        self.more = more
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        #: Set when the client closed a connection the server was dripping into.
        self.client_gone = threading.Event()
        #: Bytes written to all connections so far (what the kernel accepted, not what the client read).
        self.sent = 0
        #: How many requests it read (and started answering).
        self.requests = 0
        #: Called with the bytes sent to a connection when its client hung up.
        self.on_gone: Callable[[int], None] = lambda sent: None
        #: Called when a request was read.
        self.on_request: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the listener was closed: stop
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        sent = [0]
        with conn:
            try:
                conn.recv(65536)  # the request (or the TLS ClientHello)
                with self._lock:
                    self.requests += 1
                self.on_request()
                self._send(conn, self.first, sent)
                while not self._stop.wait(self.interval):
                    self._send(conn, self.more, sent)
            except OSError:  # reset or broken pipe: the client hung up
                self.client_gone.set()
                self.on_gone(sent[0])

    def _send(self, conn: socket.socket, data: bytes, sent: list[int]) -> None:
        conn.sendall(data)
        sent[0] += len(data)
        with self._lock:
            self.sent += len(data)

    def stop(self) -> None:
        self._stop.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.listener.close()


@contextmanager
def dripping(first: bytes, interval: float = 0.02, more: bytes = b"a") -> Iterator[Dripper]:
    """A :class:`Dripper` serving on 127.0.0.1 until the block ends."""
    server = Dripper(first, interval, more)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(5)


class RemoteDripper:
    """A :class:`Dripper` in a process of its own, seen from the test: the same counts, reported over a pipe.

    A server flooding as fast as it can from threads of the test's process
    would take the GIL from the event loop under test; in its own process it
    only competes for a CPU, as Hello Retail's would.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        assert process.stdout is not None
        self._lines = process.stdout
        self.port = int(self._lines.readline())
        self.requests = 0
        self.sent = 0
        self.client_gone = threading.Event()
        self._counted = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._lines:
            event, _, value = line.strip().partition(" ")
            if event == "request":
                with self._counted:
                    self.requests += 1
                    self._counted.notify_all()
            elif event == "gone":
                self.sent += int(value)
                self.client_gone.set()

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Wait until *count* requests have come in; False if they have not within *timeout* seconds."""
        with self._counted:
            return self._counted.wait_for(lambda: self.requests >= count, timeout)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)
        self._reader.join(5)


@contextmanager
def flooding(first: bytes, more: bytes) -> Iterator[RemoteDripper]:
    """A server in another process answering every connection with *first*, then *more* again and again.

    ``sent`` counts the bytes written to connections whose client hung up.
    """
    argv = [sys.executable, "-m", "tests.hostile", first.hex(), more.hex()]
    process = subprocess.Popen(argv, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, text=True)
    server = RemoteDripper(process)
    try:
        yield server
    finally:
        server.stop()


def _read_request(conn: socket.socket) -> None:
    """Read one whole request from *conn*: its head, then as many bytes as its Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:  # the client may send the body in a segment of its own
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


class HeadFirst:
    """A server that sends an answer's *head*, and its *body* only if the client is still there after *patience*.

    A client that refuses the answer on its headers hangs up before any byte of
    the body is sent: ``body_sent`` stays 0.
    """

    def __init__(self, head: bytes, body: bytes, patience: float) -> None:
        self.head = head
        self.body = body
        self.patience = patience
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        #: Set when a client hung up while the server waited with the body.
        self.client_gone = threading.Event()
        #: Bytes of the body written to all connections.
        self.body_sent = 0

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                _read_request(conn)
                conn.sendall(self.head)
                conn.settimeout(self.patience)
                try:
                    if conn.recv(1) == b"":  # the client hung up
                        self.client_gone.set()
                        return
                except TimeoutError:  # still there: it waits for the body
                    pass
                conn.sendall(self.body)
                self.body_sent += len(self.body)
            except OSError:
                self.client_gone.set()

    def stop(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()


@contextmanager
def head_first(head: bytes, body: bytes, patience: float = 3.0) -> Iterator[HeadFirst]:
    """A :class:`HeadFirst` serving on 127.0.0.1 until the block ends."""
    server = HeadFirst(head, body, patience)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(5)


def _serve_a_flood(first: str, more: str) -> None:
    """``python -m tests.hostile FIRST MORE`` (hex): a flooding :class:`Dripper`, reporting on stdout."""
    server = Dripper(bytes.fromhex(first), 0, bytes.fromhex(more))
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    server.on_request = lambda: say("request")
    server.on_gone = lambda sent: say(f"gone {sent}")
    say(str(server.port))
    server.serve()


if __name__ == "__main__":
    _serve_a_flood(*sys.argv[1:3])
