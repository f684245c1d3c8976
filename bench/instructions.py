"""CPU instructions per request, counted by valgrind: a cost that a noisy machine does not blur.

``make bench-instructions`` (needs valgrind: ``apt-get install valgrind``).
Wall-clock figures on a shared 2-core machine move by 10-20% from run to run;
instruction counts move by well under 1%. Each figure is the difference of two
runs of the same process, N1 and N2 requests, divided by N2 - N1: start-up and
imports cancel out.

In-process
    The variants of ``bench/micro.py`` (same app, same scope or environ, same
    returning visitor), ours next to the peers.
Real servers
    uvicorn and gunicorn serving ``bench/apps.py`` (bare, bare sending the
    ``Vary: Cookie`` header a personalised page needs, and with the
    middleware), a returning visitor's requests sent one at a time over one
    keep-alive connection. Everything the server process does is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VALGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--trace-children=yes"]
ENV = {"PYTHONHASHSEED": "0"}  # the same dict layouts in every run


def collected(stderr: str) -> int:
    """The instructions callgrind counted, summed over the processes it traced."""
    counts = re.findall(r"Collected : ([\d,]+)", stderr)
    assert counts, stderr[-2000:]
    return sum(int(count.replace(",", "")) for count in counts)


# -- in-process ---------------------------------------------------------------------------


def in_process_variants() -> dict[str, Callable[[], Callable[[int], None]]]:
    """Builders of "run n requests" for every in-process variant, by name."""
    from bench import micro
    from hr_middleware import Settings

    settings = Settings(website_uuid=micro.UUID, api_url="http://127.0.0.1:9")

    def asgi(make: Callable[[], Any]) -> Callable[[], Callable[[int], None]]:
        def build() -> Callable[[int], None]:
            app, scope = make(), micro.asgi_scope(micro.COOKIE)
            return lambda n: asyncio.run(micro.time_asgi(app, scope, n))

        return build

    def wsgi(make: Callable[[], Any]) -> Callable[[], Callable[[int], None]]:
        def build() -> Callable[[int], None]:
            app, environ = make(), micro.wsgi_environ(micro.COOKIE)
            return lambda n: micro.time_wsgi(app, environ, n) and None

        return build

    def ours_asgi(app: Any) -> Any:
        from hr_middleware.asgi import TrackingUserMiddleware

        return TrackingUserMiddleware(app, settings=settings)

    def correlation_id() -> Any:
        from asgi_correlation_id import CorrelationIdMiddleware

        return CorrelationIdMiddleware(micro.bare_asgi)

    def proxy_fix() -> Any:
        from werkzeug.middleware.proxy_fix import ProxyFix

        return ProxyFix(micro.bare_wsgi, x_for=1, x_proto=1)

    def ours_wsgi() -> Any:
        from hr_middleware.wsgi import TrackingUserMiddleware

        return TrackingUserMiddleware(micro.bare_wsgi, settings=settings)

    return {
        "asgi: bare app": asgi(lambda: micro.bare_asgi),
        "asgi: hr-middleware (returning visitor)": asgi(lambda: ours_asgi(micro.bare_asgi)),
        "asgi: asgi-correlation-id": asgi(correlation_id),
        "asgi: floor: contextvar + send wrapper": asgi(lambda: micro.FloorMiddleware(micro.bare_asgi)),
        "asgi: bare app that reads the id": asgi(lambda: micro.reading_asgi),
        "asgi: hr-middleware, app reads the id": asgi(lambda: ours_asgi(micro.reading_asgi)),
        "wsgi: bare app": wsgi(lambda: micro.bare_wsgi),
        "wsgi: hr-middleware (returning visitor)": wsgi(ours_wsgi),
        "wsgi: werkzeug ProxyFix": wsgi(proxy_fix),
        "wsgi: floor: contextvar + start_response": wsgi(lambda: micro.FloorWSGI(micro.bare_wsgi)),
    }


def count_in_process(name: str, n: int) -> int:
    result = subprocess.run(
        [*VALGRIND, sys.executable, "-m", "bench.instructions", "--child", name, str(n)],
        cwd=ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return collected(result.stderr)


def per_request(count: Callable[[int], int], n1: int, n2: int) -> float:
    return (count(n2) - count(n1)) / (n2 - n1)


def report_in_process(n1: int, n2: int) -> None:
    names = list(in_process_variants())
    print(f"\nIn-process, CPU instructions per request ({n2} - {n1} requests, callgrind)")
    figures = {name: per_request(lambda n, name=name: count_in_process(name, n), n1, n2) for name in names}
    for stack, peer in (("asgi", "asgi: asgi-correlation-id"), ("wsgi", "wsgi: werkzeug ProxyFix")):
        bare = figures[f"{stack}: bare app"]
        print(f"  {'variant':<44}{'instructions':>14}{'added':>10}{'vs peer':>10}")
        for name, value in figures.items():
            if not name.startswith(stack):
                continue
            reference = figures["asgi: bare app that reads the id"] if "app reads the id" in name else bare
            added = value - reference
            shown = name not in (f"{stack}: bare app", peer)
            ratio = f"{added / (figures[peer] - bare):>9.2f}x" if shown else ""
            print(f"  {name:<44}{value:>14,.0f}{added:>10,.0f}{ratio}")
        print()
    print("  (the reads-the-id row is measured against the bare app that reads it too)")


# -- real servers ---------------------------------------------------------------------------


def count_server(kind: str, variant: str, n: int) -> int:
    from bench.load import free_port, server_argv
    from bench.micro import COOKIE

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}
    env.update(ENV, HR_BENCH_BARE={"bare": "1", "bare + Vary": "vary", "ours": "0"}[variant])
    env["HELLO_RETAIL_API_URL"] = "http://127.0.0.1:9"  # returning visitors never mint
    process = subprocess.Popen(
        [*VALGRIND, *server_argv(kind, port, workers=1)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request("GET", "/health")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        headers = {"Cookie": COOKIE, "Accept": "text/html", "User-Agent": "Mozilla/5.0 Chrome/130.0"}
        for _ in range(n):
            connection.request("GET", "/", headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM if kind == "gunicorn" else signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    return collected(stderr)


def report_servers(kinds: list[str], n1: int, n2: int) -> None:
    print(f"\nReal servers, CPU instructions per request in the server ({n2} - {n1} requests, callgrind)")
    print(f"  {'server':<10}{'bare':>12}{'bare + Vary':>13}{'ours':>12}{'ours added':>12}{'bare/ours':>11}")
    for kind in kinds:
        figures = {
            variant: per_request(lambda n, kind=kind, variant=variant: count_server(kind, variant, n), n1, n2)
            for variant in ("bare", "bare + Vary", "ours")
        }
        bare, vary, ours = figures["bare"], figures["bare + Vary"], figures["ours"]
        print(f"  {kind:<10}{bare:>12,.0f}{vary:>13,.0f}{ours:>12,.0f}{ours - bare:>12,.0f}{bare / ours:>10.1%}")
    print("  bare/ours: the throughput ours keeps where the server's CPU is the limit.")
    print("  bare + Vary: the bare app sending the Vary: Cookie header that ours adds to a page reading the id.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--servers", default="uvicorn,gunicorn")
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    args = parser.parse_args()
    if args.child:
        in_process_variants()[args.child[0]]()(int(args.child[1]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    started = time.monotonic()
    report_in_process(100, 600 if args.quick else 1100)
    report_servers(args.servers.split(","), 200, 500 if args.quick else 700)
    print(f"\n(took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
