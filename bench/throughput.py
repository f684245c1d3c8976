"""Throughput of real servers, bare app vs with the middleware, returning visitors only.

``make throughput`` starts gunicorn (WSGI) and uvicorn (ASGI) serving
``bench/apps.py`` with and without the middleware, drives each with ``wrk``
(Debian's package) on loopback with a returning visitor's Cookie header, and
prints requests/s. Rounds alternate bare and ours so that drift hits both; the
figure is the ratio of medians. uvicorn uses httptools when it is installed (the
dev extras install it). Its targets are stated in CPU instructions, which move
far less than requests/s: ``make bench-instructions``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.load import server_argv
from bench.micro import COOKIE
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def start(kind: str, bare: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}
    env["HR_BENCH_BARE"] = "1" if bare else "0"
    env["HELLO_RETAIL_API_URL"] = "http://127.0.0.1:9"  # returning visitors never mint
    argv = pinned(SERVER_CPU, server_argv(kind, port, workers=1))  # one worker: 2 cores
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + "/health", timeout=1)
            return process, url
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """*argv* run on one CPU, where there are two and ``taskset``: the server
    and wrk then don't take turns on a core, and a round is far less noisy."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(cpu), *argv]


SERVER_CPU, WRK_CPU = 1, 0


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        pinned(
            WRK_CPU,
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "-H",
                f"Cookie: {COOKIE}",
                "-H",
                "Accept: text/html",
                "-H",
                "User-Agent: Mozilla/5.0 Chrome/130.0",
                url + "/",
            ],
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match is not None, out
    return float(match.group(1))


def measure(kind: str, rounds: int, seconds: int, connections: int) -> tuple[float, float]:
    results: dict[bool, list[float]] = {True: [], False: []}
    servers = {bare: start(kind, bare) for bare in (True, False)}
    try:
        for bare in (True, False):
            wrk(servers[bare][1], 2, connections)  # warm up
        for _ in range(rounds):
            for bare in (True, False):
                results[bare].append(wrk(servers[bare][1], seconds, connections))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(15)
    return statistics.median(results[True]), statistics.median(results[False])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--servers", default="gunicorn,uvicorn")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    print(f"\nReturning visitors, {args.rounds} rounds x {args.seconds} s, {args.connections} connections, 1 worker")
    print(f"  {'server':<10}{'bare req/s':>12}{'ours req/s':>12}{'ours/bare':>11}")
    for kind in args.servers.split(","):
        bare, ours = measure(kind, args.rounds, args.seconds, args.connections)
        print(f"  {kind:<10}{bare:>12,.0f}{ours:>12,.0f}{ours / bare:>10.1%}")


if __name__ == "__main__":
    main()
