"""Real servers for end-to-end tests: started as subprocesses on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port free right now (the tests' and the benchmarks' servers listen on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(
    argv: Sequence[str], *, port: int, env: Mapping[str, str] | None = None, ready_path: str = "/health"
) -> Iterator[str]:
    """Run *argv* (a server listening on *port*) until the block ends; yields its base URL.

    The environment is ours minus any ``HELLO_RETAIL_*`` variable, plus *env*.
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}
    full_env.update(env or {})
    full_env["PORT"] = str(port)
    process = subprocess.Popen(
        list(argv), cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
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
            process.kill()
            process.communicate()


def demo_argv() -> list[str]:
    return [sys.executable, "-m", "examples.flask_app"]
