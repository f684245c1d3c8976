"""Real servers for end-to-end tests: subprocesses on a free loopback port, and a mint gate."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port free right now (the tests' and the benchmarks' servers listen on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health",
    own_group: bool = False,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """Run *argv* (a server listening on *host*:*port*) until the block ends; yields its base URL.

    The environment is ours minus any ``HELLO_RETAIL_*`` variable, plus *env*.
    With *own_group* the server runs in a process group of its own, killed
    whole at the end: a worker that hangs must not outlive its master.
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}
    full_env.update(env or {})
    full_env["PORT"] = str(port)
    process = subprocess.Popen(
        list(argv),
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=own_group,
    )
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv} exited early:\n{process.stdout.read() if process.stdout else ''}")
            try:
                requests.get(url + ready_path, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{argv} did not start on port {port}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            # A worker that outlives its master keeps the output pipe open: kill them all.
            if own_group:
                kill_group(process.pid)
            else:
                process.kill()
            process.communicate()
        if own_group:
            kill_group(process.pid)  # workers left behind by a master that exited


def kill_group(pgid: int) -> None:
    """SIGKILL the process group *pgid* (a server started with ``own_group``), if anyone is left in it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:  # no one is
        pass


def uwsgi_argv(*args: str) -> list[str]:
    """uWSGI from the ``pyuwsgi`` wheel with *args*, as its ``uwsgi`` command runs it, in our Python."""
    run = "import sys, pyuwsgi; sys.argv[0] = 'uwsgi'; sys.exit(pyuwsgi.run())"
    return [sys.executable, "-c", run, *args]


def demo_argv() -> list[str]:
    return [sys.executable, "-m", "examples.flask_app"]


class MintGate:
    """A Hello Retail mint endpoint on 127.0.0.1 that holds every mint until
    *together* mints wait at the same time, or until :meth:`release`.

    Then each held mint gets a new id (``minted``). Mints made one after
    another never fill the gate: after *deadline* seconds they fail (503).
    Use as a context manager; ``url`` is the ``api_url``.
    """

    def __init__(self, together: int = 0, deadline: float = 10.0) -> None:
        self.together = together
        self.deadline = deadline
        self.minted: list[str] = []
        #: How many mints have reached the gate so far.
        self.arrived = 0
        self._released = False
        self._changed = threading.Condition()
        self._server = _GateServer(("127.0.0.1", 0), _GateHandler)
        self._server.gate = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> MintGate:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def release(self) -> None:
        """Let every held mint (and every later one) through."""
        with self._changed:
            self._released = True
            self._changed.notify_all()

    def wait_until_arrived(self, count: int) -> None:
        """Block until *count* mints have reached the gate (fails after the deadline)."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.arrived >= count, self.deadline), "no mint reached the gate"

    def hold(self) -> str | None:
        """One mint at the gate: a new id once the gate opens, None if it never does."""
        with self._changed:
            self.arrived += 1
            self._changed.notify_all()
            opened = self._changed.wait_for(
                lambda: self._released or (self.together > 0 and self.arrived >= self.together), self.deadline
            )
            if not opened:
                return None
            tracking_user_id = secrets.token_hex(12)
            self.minted.append(tracking_user_id)
            return tracking_user_id


class _GateServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # visitors arriving at once must not wait for a SYN retry
    gate: MintGate

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A mint that gave up on its budget before the gate opened has hung up: its
        # answer's broken pipe is expected, not worth a traceback; anything else is a bug.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _GateHandler(BaseHTTPRequestHandler):
    server: _GateServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        tracking_user_id = self.server.gate.hold()
        status, document = (200, {"id": tracking_user_id, "success": True}) if tracking_user_id else (503, {})
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
