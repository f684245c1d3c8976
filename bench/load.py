"""Real servers under load, against a fake Hello Retail that fails part of the time.

``make load`` drives gunicorn (WSGI, threads) and uvicorn (ASGI) serving
``bench/apps.py`` with a mix of returning and new visitors, on loopback only,
bounded in time. It reports, per server: requests served, non-2xx answers
(must be 0), mints against new-visitor page views (must be equal: one each,
never one for a returning visitor), p50/p99 latency, and the workers' memory
(RSS) after a warm-up and after the long run (no growth).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from hr_middleware.testing import FakeHelloRetail
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
PAGE = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Sec-Fetch-Dest": "document",
}
COOKIE = "helloRetailTrackingUserId"


def server_argv(kind: str, port: int, workers: int = 2, http: str | None = None) -> list[str]:
    """The command line of *kind* (``gunicorn`` or ``uvicorn``) serving ``bench/apps.py``;
    *http* picks uvicorn's HTTP implementation (``h11``, ``httptools``; its default: httptools if installed)."""
    bind = f"127.0.0.1:{port}"
    if kind == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "--threads",
            "8",
            "-b",
            bind,
            "-k",
            "gthread",
            "--log-level",
            "warning",
            "bench.apps:wsgi_app",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        *(["--http", http] if http else []),
        "bench.apps:asgi_app",
    ]


def worker_rss_kib(pid: int) -> int:
    """Total RSS of the server's worker processes (its children), in KiB."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children or [str(pid)]:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    served: int = 0
    non_2xx: int = 0
    errors: int = 0
    new_page_views: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(url: str, seconds: float, args: argparse.Namespace, tally: Tally) -> None:
    """``args.clients`` threads, each a series of visitors; a visitor is new with probability ``args.new_share``."""
    stop = time.monotonic() + seconds
    max_requests, clients, new_share = args.max_requests, args.clients, args.new_share

    def client(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        while time.monotonic() < stop:
            with tally.lock:
                if tally.served + tally.errors >= max_requests:
                    return
            if rng.random() < new_share:
                session.cookies.clear()  # a new visitor
            is_new = COOKIE not in session.cookies
            started = time.perf_counter()
            try:
                response = session.get(url + "/", headers=PAGE, timeout=10)
            except requests.RequestException:
                with tally.lock:
                    tally.errors += 1
                continue
            elapsed = time.perf_counter() - started
            with tally.lock:
                tally.served += 1
                tally.latencies.append(elapsed)
                tally.non_2xx += not 200 <= response.status_code < 300
                tally.new_page_views += is_new

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_server(kind: str, args: argparse.Namespace) -> dict[str, object]:
    with FakeHelloRetail() as fake:
        fake.fail_every = args.fail_every  # every n-th mint answers 500
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}
        env.update(HELLO_RETAIL_WEBSITE_UUID=fake.website_uuid, HELLO_RETAIL_API_URL=fake.url)
        process = subprocess.Popen(server_argv(kind, port), cwd=ROOT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(url + "/health", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            warm = Tally()
            drive(url, min(5.0, args.seconds), args, warm)
            rss_before = worker_rss_kib(process.pid)
            fake.reset()
            fake.fail_every = args.fail_every
            tally = Tally()
            started = time.monotonic()
            drive(url, args.seconds, args, tally)
            duration = time.monotonic() - started
            rss_after = worker_rss_kib(process.pid)
            mint_attempts = fake.mint_attempts
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)
    latencies = sorted(tally.latencies)
    return {
        "server": kind,
        "seconds": round(duration, 1),
        "served": tally.served,
        "req/s": round(tally.served / duration),
        "non-2xx": tally.non_2xx,
        "errors": tally.errors,
        "new-visitor views": tally.new_page_views,
        "mints": mint_attempts,
        "p50 ms": round(statistics.median(latencies) * 1000, 2),
        "p99 ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "RSS KiB warm": rss_before,
        "RSS KiB after": rss_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the measured run per server")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--new-share", type=float, default=0.1, help="share of requests from new visitors")
    parser.add_argument("--fail-every", type=int, default=10, help="every n-th mint fails (0 = never)")
    parser.add_argument("--servers", default="gunicorn,uvicorn")
    args = parser.parse_args()
    results = [run_server(kind, args) for kind in args.servers.split(",")]
    keys = list(results[0])
    print("\n" + " | ".join(keys))
    print(" | ".join("---" for _ in keys))
    for result in results:
        print(" | ".join(str(result[k]) for k in keys))
    ok = all(r["non-2xx"] == 0 and r["errors"] == 0 and r["mints"] == r["new-visitor views"] for r in results)
    print("\n" + ("OK: every request served, one mint per new-visitor page view" if ok else "PROBLEM: see the table"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
