"""CPU instructions per request, counted by valgrind: a cost that a noisy machine does not blur.

``make bench-instructions`` (needs valgrind: ``apt-get install valgrind``);
``make bench-instructions INSTRUCTIONS_ARGS="--only asgi,wsgi"`` runs a subset
of the rows (see ``--help``). Wall-clock figures on a shared machine move by
10-20% from run to run; in-process instruction counts by well under 1%, those
of real servers by about 1%.

Counts are taken between marks: the measured code calls ``os.getloadavg()``,
which nothing else calls, and callgrind (``--dump-before=getloadavg``) writes
out the instructions counted since the previous mark. Start-up, imports and
warm-up are left out.

In-process (rows ``asgi``, ``wsgi``)
    The variants of ``bench/micro.py`` (same app, same scope or environ, same
    returning visitor), ours next to the peers, each warmed up, then N requests
    between two marks. The figure is the ratio of the instructions ours adds
    over the bare app to those the peer adds.
Real servers (rows ``h11``, ``httptools``, ``jinja``, ``gthread``)
    uvicorn and gunicorn, one worker, serving ``bench/apps.py`` (bare, bare
    sending the ``Cache-Control: private`` and ``Vary: Cookie`` headers a
    personalised page needs, with the middleware, and with a peer middleware), a returning visitor's requests
    sent one at a time over one keep-alive connection. ``GET /mark`` marks;
    the figure per request is the difference of two stretches of N1 and N2
    requests divided by N2 - N1 (the marking requests cancel out), counting
    everything the worker process does but its idle work by the wall clock
    (measured in two idle stretches and subtracted). The figure is the share of the bare
    server's instructions per request that a stack keeps (bare / with): the
    throughput it keeps where the server's CPU is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PYTHONHASHSEED": "0"}  # the same dict layouts in every run
#: What the measured code calls to mark (see the module docstring).
mark = os.getloadavg


def callgrind(directory: str) -> list[str]:
    """valgrind's command line, dumping the counts at every mark into files in *directory*."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",
        "--dump-before=getloadavg",
        f"--callgrind-out-file={directory}/cg.%p",
    ]


def marked(directory: str) -> list[int]:
    """The instructions counted up to each mark, in order, in the one process that marked."""
    dumps: dict[str, dict[int, int]] = {}
    for path in Path(directory).iterdir():
        match = re.fullmatch(r"cg\.(\d+)\.(\d+)", path.name)
        if match:
            totals = re.search(r"^totals: (\d+)", path.read_text(), re.MULTILINE)
            assert totals, path
            dumps.setdefault(match[1], {})[int(match[2])] = int(totals[1])
    assert len(dumps) == 1, f"expected one process that marks, got {sorted(dumps)}"
    (counts,) = dumps.values()
    return [counts[i] for i in sorted(counts)]


@dataclass(frozen=True)
class Target:
    """A figure's target: ``value <= bound`` for in-process ratios, ``value >= bound`` for shares kept."""

    what: str
    bound: float
    at_most: bool

    def text(self) -> str:
        return f"<= {self.bound:.2f}x" if self.at_most else f">= {self.bound:.0%}"

    def mark(self, value: float) -> str:
        return "pass" if (value <= self.bound if self.at_most else value >= self.bound) else "miss"

    def shown(self, value: float) -> str:
        return f"{value:.2f}x" if self.at_most else f"{value:.1%}"


#: The in-process figures are budgets that CI enforces (``make bench-budget``, which ``.ci/run`` runs):
#: a change that costs the returning visitor more fails the build.
TARGETS = {
    "asgi": Target("ASGI in-process, ours added / asgi-correlation-id added", 0.50, at_most=True),
    "wsgi": Target("WSGI in-process, ours added / ProxyFix added (forwarded headers)", 0.55, at_most=True),
    "httptools": Target("uvicorn+httptools hello, % of bare kept", 0.85, at_most=False),
    "jinja": Target("uvicorn+httptools Jinja page, % of bare kept", 0.98, at_most=False),
    "gthread": Target("gunicorn gthread hello, % of bare kept", 0.96, at_most=False),
}


# -- in-process ---------------------------------------------------------------------------

OURS = "hr-middleware (returning visitor)"
PEERS = {"asgi": "asgi-correlation-id", "wsgi": "werkzeug ProxyFix"}
#: The variants the targets need; ``--lean`` measures only these.
ESSENTIAL = ("bare app", OURS, *PEERS.values())
WARM = 100


def in_process_variants() -> dict[str, Callable[[], Callable[[int], None]]]:
    """Builders of "warm up, then run n requests between two marks" for every in-process variant, by name."""
    from bench import micro
    from hr_middleware import Settings

    settings = Settings(website_uuid=micro.UUID, api_url="http://127.0.0.1:9")

    def asgi(make: Callable[[], Any]) -> Callable[[], Callable[[int], None]]:
        def build() -> Callable[[int], None]:
            app, scope = make(), micro.asgi_scope(micro.COOKIE)

            async def run(n: int) -> None:
                await micro.time_asgi(app, scope, WARM)
                mark()
                await micro.time_asgi(app, scope, n)
                mark()

            return lambda n: asyncio.run(run(n))

        return build

    def wsgi(make: Callable[[], Any]) -> Callable[[], Callable[[int], None]]:
        def build() -> Callable[[int], None]:
            app, environ = make(), micro.wsgi_environ(micro.COOKIE)

            def run(n: int) -> None:
                micro.time_wsgi(app, environ, WARM)
                mark()
                micro.time_wsgi(app, environ, n)
                mark()

            return run

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

    def ours_wsgi(app: Any) -> Any:
        from hr_middleware.wsgi import TrackingUserMiddleware

        return TrackingUserMiddleware(app, settings=settings)

    return {
        "asgi: bare app": asgi(lambda: micro.bare_asgi),
        f"asgi: {OURS}": asgi(lambda: ours_asgi(micro.bare_asgi)),
        "asgi: asgi-correlation-id": asgi(correlation_id),
        "asgi: floor: contextvar + send wrapper": asgi(lambda: micro.FloorMiddleware(micro.bare_asgi)),
        "asgi: bare app that reads the id": asgi(lambda: micro.reading_asgi),
        "asgi: hr-middleware, app reads the id": asgi(lambda: ours_asgi(micro.reading_asgi)),
        "wsgi: bare app": wsgi(lambda: micro.bare_wsgi),
        f"wsgi: {OURS}": wsgi(lambda: ours_wsgi(micro.bare_wsgi)),
        "wsgi: werkzeug ProxyFix": wsgi(proxy_fix),
        "wsgi: floor: contextvar + start_response": wsgi(lambda: micro.FloorWSGI(micro.bare_wsgi)),
        "wsgi: bare app that reads the id": wsgi(lambda: micro.reading_wsgi),
        "wsgi: hr-middleware, app reads the id": wsgi(lambda: ours_wsgi(micro.reading_wsgi)),
    }


def run_child(n: int, names: list[str]) -> None:
    """In the process under valgrind: each variant built and warmed up, then *n* requests between two marks."""
    variants = in_process_variants()
    for name in names:
        variants[name]()(n)


def count_in_process(names: list[str], n: int) -> dict[str, float]:
    """Instructions per request of each variant in *names*, all run in one process under valgrind."""
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(
            [*callgrind(directory), sys.executable, "-m", "bench.instructions", "--child", str(n), *names],
            cwd=ROOT,
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        counts = marked(directory)
    # Per variant: a dump up to its first mark (building, warming up), then its n requests.
    assert len(counts) == 2 * len(names), counts
    return {name: counts[2 * i + 1] / n for i, name in enumerate(names)}


def report_in_process(
    pool: ThreadPoolExecutor, stacks: list[str], *, lean: bool, n: int, results: dict[str, float]
) -> None:
    names = [
        name
        for name in in_process_variants()
        if name.split(":")[0] in stacks and (not lean or name.split(": ", 1)[1] in ESSENTIAL)
    ]
    # One process per stack, the stacks side by side.
    pending = [pool.submit(count_in_process, [nm for nm in names if nm.startswith(stack)], n) for stack in stacks]
    figures = {name: value for future in pending for name, value in future.result().items()}
    print(f"\nIn-process, CPU instructions per request ({n} requests after {WARM} to warm up, callgrind)")
    for stack in stacks:
        peer = f"{stack}: {PEERS[stack]}"
        bare = figures[f"{stack}: bare app"]
        peer_added = figures[peer] - bare
        print(f"  {'variant':<44}{'instructions':>14}{'added':>10}{'vs peer':>10}{'target':>11}")
        for name, value in figures.items():
            if not name.startswith(stack):
                continue
            reference = figures[f"{stack}: bare app that reads the id"] if "app reads the id" in name else bare
            added = value - reference
            line = f"  {name:<44}{value:>14,.0f}"
            if name != f"{stack}: bare app":
                line += f"{added:>10,.0f}"
            if name not in (f"{stack}: bare app", peer):
                line += f"{added / peer_added:>9.2f}x"
            if name == f"{stack}: {OURS}":
                target = TARGETS[stack]
                results[stack] = added / peer_added
                line += f"{target.text():>11}  {target.mark(results[stack])}"
            print(line)
        print()
    if not lean:
        print("  (the reads-the-id rows are measured against the bare app that reads it too)")


# -- real servers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerRow:
    """A server, its HTTP implementation and a page, measured with each stack in *stacks*."""

    title: str
    kind: str
    http: str | None
    page: str
    stacks: tuple[str, ...]


SERVER_ROWS = {
    "h11": ServerRow("uvicorn h11, hello", "uvicorn", "h11", "hello", ("bare", "bare + Vary", "ours")),
    "httptools": ServerRow(
        "uvicorn httptools, hello", "uvicorn", "httptools", "hello", ("bare", "bare + Vary", "ours", "correlation-id")
    ),
    "jinja": ServerRow(
        "uvicorn httptools, Jinja page",
        "uvicorn",
        "httptools",
        "jinja",
        ("bare", "bare + Vary", "ours", "correlation-id"),
    ),
    "gthread": ServerRow("gunicorn gthread, hello", "gunicorn", None, "hello", ("bare", "bare + Vary", "ours")),
}
STACK_ENV = {"bare": "1", "bare + Vary": "vary", "ours": "0", "correlation-id": "correlation-id"}
STACK_NAMES = {
    "bare": "bare",
    "bare + Vary": "bare + private, Vary",
    "ours": "hr-middleware",
    "correlation-id": "asgi-correlation-id",
}


IDLE = (1.0, 3.0)  # seconds of the two idle stretches that measure the worker's idle work


def count_server(row: ServerRow, stack: str, n1: int, n2: int) -> float:
    """Instructions per request of the worker: stretches of *n1* and *n2* requests between marks.

    A server also works while idle, by the wall clock (uvicorn's 10 ticks a
    second, gunicorn's heartbeat), so a slower run would count more per
    request: two idle stretches measure that rate, and the requests' share
    of it is subtracted.
    """
    from bench.load import server_argv
    from bench.micro import COOKIE
    from tests.servers import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}
    env.update(ENV, HR_BENCH_BARE=STACK_ENV[stack], HR_BENCH_PAGE=row.page)
    env["HELLO_RETAIL_API_URL"] = "http://127.0.0.1:9"  # returning visitors never mint
    headers = {"Cookie": COOKIE, "Accept": "text/html", "User-Agent": "Mozilla/5.0 Chrome/130.0"}
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [*callgrind(directory), *server_argv(row.kind, port, workers=1, http=row.http)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            connection = _connected(port, process)

            def get(path: str) -> float:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status
                return time.monotonic()

            for _ in range(WARM):
                get("/")
            marks = [get("/mark")]
            for pause in IDLE:
                # A new connection after each pause (gunicorn closes idle ones): the same in both stretches.
                connection.close()
                time.sleep(pause)
                connection = _connected(port, process)
                marks.append(get("/mark"))
            for n in (n1, n2):
                for _ in range(n):
                    get("/")
                marks.append(get("/mark"))
            connection.close()
        finally:
            process.send_signal(signal.SIGTERM if row.kind == "gunicorn" else signal.SIGINT)
            process.communicate(timeout=300)
        counts = marked(directory)
    # Dumps: start-up and warm-up, the two idle stretches, then the stretches of n1 and n2 requests.
    assert len(counts) == 5, counts
    seconds = [after - before for before, after in itertools.pairwise(marks)]
    idle_rate = (counts[2] - counts[1]) / (seconds[1] - seconds[0])
    return (counts[4] - counts[3] - idle_rate * (seconds[3] - seconds[2])) / (n2 - n1)


def _connected(port: int, process: subprocess.Popen[str]) -> http.client.HTTPConnection:
    """A keep-alive connection to the server on *port*, once it answers ``/health``."""
    deadline = time.monotonic() + 300
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            connection.request("GET", "/health")
            connection.getresponse().read()
            return connection
        except OSError:
            connection.close()
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.5)


def report_servers(pool: ThreadPoolExecutor, rows: list[str], *, n1: int, n2: int, results: dict[str, float]) -> None:
    pending = {
        (name, stack): pool.submit(count_server, SERVER_ROWS[name], stack, n1, n2)
        for name in rows
        for stack in SERVER_ROWS[name].stacks
    }
    figures = {key: future.result() for key, future in pending.items()}
    print(f"\nReal servers, CPU instructions per request in the worker ({n2} - {n1} requests, callgrind)")
    print(f"  {'server, page':<31}{'stack':<22}{'instructions':>13}{'added':>10}{'bare kept':>11}{'target':>10}")
    for name in rows:
        row = SERVER_ROWS[name]
        bare = figures[name, "bare"]
        for i, stack in enumerate(row.stacks):
            value = figures[name, stack]
            line = f"  {row.title if i == 0 else '':<31}{STACK_NAMES[stack]:<22}{value:>13,.0f}"
            if stack != "bare":
                line += f"{value - bare:>10,.0f}{bare / value:>11.1%}"
            if stack == "ours" and name in TARGETS:
                target = TARGETS[name]
                results[name] = bare / value
                line += f"{target.text():>10}  {target.mark(results[name])}"
            print(line)
    print("  bare kept: bare / with, the throughput a stack keeps where the server's CPU is the limit.")
    print("  bare + private, Vary: the bare app sending the Cache-Control: private and Vary: Cookie headers")
    print("  that ours adds to a page reading the id.")


# -- the run ------------------------------------------------------------------------------

ROWS = ("asgi", "wsgi", "h11", "httptools", "jinja", "gthread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs="+", metavar="N VARIANT", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only", default=",".join(ROWS), help=f"comma-separated rows to run, of: {', '.join(ROWS)} (default: all)"
    )
    parser.add_argument(
        "--lean", action="store_true", help="in-process: only bare, ours and the peer (no floor, no reads-the-id)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument(
        "--check", action="store_true", help="exit non-zero when a figure measured misses its target (CI's budget)"
    )
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="valgrind runs at a time (default: %(default)s)"
    )
    args = parser.parse_args()
    if args.child:
        run_child(int(args.child[0]), args.child[1:])
        return
    rows = [row.strip() for row in args.only.split(",") if row.strip()]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {', '.join(sorted(unknown))}; pick from {', '.join(ROWS)}")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    started = time.monotonic()
    results: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        stacks = [row for row in rows if row in PEERS]
        if stacks:
            report_in_process(pool, stacks, lean=args.lean, n=500 if args.quick else 1000, results=results)
        servers = [row for row in rows if row in SERVER_ROWS]
        if servers:
            # With 400 requests a stretch a figure moved by up to 1,500 instructions between
            # two runs of one commit, with 2,000 by 300 (docs/performance.md); 1,000 keeps
            # a whole run near 8 minutes on a 2-core machine.
            n1, n2 = (50, 250) if args.quick else (100, 1100)
            report_servers(pool, servers, n1=n1, n2=n2, results=results)
    print("\nTargets")
    missed = []
    for name, target in TARGETS.items():
        if name in results:
            value = results[name]
            print(f"  {target.what:<66}{target.shown(value):>8}  {target.text():>9}  {target.mark(value)}")
            if target.mark(value) == "miss":
                missed.append(name)
    print(f"\n(took {time.monotonic() - started:.0f} s)")
    if args.check and missed:
        sys.exit(f"over budget: {', '.join(missed)}")


if __name__ == "__main__":
    main()
