"""Where a returning visitor's instructions go: each part of the hot path, and the C calls it is made of.

``make bench-parts`` (needs valgrind). Every part runs alone, in a loop of
1,000 and then one of 3,000 between callgrind marks (see
``bench/instructions.py``); its cost is the difference divided by 2,000, less
that of an empty loop measured the same way. The request is the in-process
bench's (``bench/micro.py``: a 321-byte ``Cookie`` header among five
headers, a returning visitor). The figures are in ``docs/performance.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable

from bench.instructions import ENV, ROOT, callgrind, marked

SMALL, LARGE = 1000, 3000


def parts() -> dict[str, Callable[[int], None]]:
    """The parts by name: each runs its work *n* times."""
    from bench import micro
    from hr_middleware import Settings, get_tracking_user_id
    from hr_middleware._core.cookies import find_cookie, valid_id_or_none
    from hr_middleware._core.visit import Decision, Origin
    from hr_middleware._serving import enter, fail_open, leave
    from hr_middleware.asgi import ASGIRequestFacts, TrackingUserMiddleware, _expose

    settings = Settings(website_uuid=micro.UUID, api_url="http://127.0.0.1:9")
    middleware = TrackingUserMiddleware(micro.bare_asgi, settings=settings)
    engine = middleware._engine
    policy = engine.policy
    scope = micro.asgi_scope(micro.COOKIE)
    request = ASGIRequestFacts(scope)
    header = micro.COOKIE
    sdk_key = settings.sdk_cookie_name + "="
    at = header.find(sdk_key) + len(sdk_key)
    value = header[at : at + 24]
    served = engine.serve(scope)
    assert served.tracking_user_id is not None, "the bench's visitor must be a returning one"
    served.downstream = lambda message: None
    body = {"type": "http.response.body", "body": b"ok"}
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}

    # Every part is called through a lambda, as the empty loop is: the call is what it takes off.
    def loop(work: Callable[[], object]) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                work()

        return run

    def in_visit(work: Callable[[], object]) -> Callable[[int], None]:
        def run(n: int) -> None:
            token = enter(served)
            try:
                for _ in range(n):
                    work()
            finally:
                leave(token)

        return run

    def patched_start() -> object:
        served.accessed = True
        served.send(start)
        served.accessed = False
        return None

    def context() -> None:
        leave(enter(served))

    def boundary() -> None:
        with fail_open:
            pass

    return {
        "empty loop": loop(lambda: None),
        # The parts of an ASGI request, as the middleware makes them.
        "Engine.serve: the returning visitor's visit": loop(lambda: engine.serve(scope)),
        "the hot path's reader (the Cookie line found, both cookies checked)": loop(lambda: engine._returning(scope)),  # type: ignore[misc]
        "the request's facts (the Cookie line found and decoded)": loop(lambda: ASGIRequestFacts(scope)),
        "TrackingPolicy.decide (both cookies read)": loop(lambda: policy.decide(request)),
        "find_cookie: the SDK cookie": loop(lambda: find_cookie(header, sdk_key, valid_id_or_none)),
        "valid_id_or_none on an id": loop(lambda: valid_id_or_none(value)),
        "a Decision, made": loop(lambda: Decision(value, Origin.COOKIE, None, (), False, ())),
        "the visit object, made and freed": loop(lambda: type(served)(engine, scope, value, Origin.COOKIE)),
        "the fail-open boundary, entered and left": loop(boundary),
        "the context variable, set and reset": loop(context),
        "request.state and the mark for nested instances": loop(lambda: _expose({**scope, "state": {}}, served)),
        "a dict copy of the scope (subtract from the line above)": loop(lambda: {**scope, "state": {}}),
        "the send wrapper: one message passed on": loop(lambda: served.send(body)),
        "get_tracking_user_id() in a visit": in_visit(lambda: get_tracking_user_id()),  # noqa: PLW0108
        "the start message patched for Vary: Cookie and private": loop(patched_start),
        # The C calls the cookie read is made of.
        "str.find of a cookie name on the 321-byte header": loop(lambda: header.find(sdk_key)),
        "a 24-character slice": loop(lambda: header[at : at + 24]),
        "str.strip(hex digits) of an id": loop(lambda: value.strip("0123456789abcdef")),
        "str.encode() of an id, then bytes.strip": loop(lambda: value.encode().strip(b"0123456789abcdef")),
    }


def run_child() -> None:
    """In the process under valgrind: every part warmed up, then its two loops between marks."""
    for work in parts().values():
        work(100)
        os.getloadavg()
        work(SMALL)
        os.getloadavg()
        work(LARGE)
        os.getloadavg()


def main() -> None:
    if "--child" in sys.argv:
        run_child()
        return
    names = list(parts())
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(
            [*callgrind(directory), sys.executable, "-m", "bench.parts", "--child"],
            cwd=ROOT,
            env={**os.environ, **ENV},
            capture_output=True,
            check=True,
        )
        counts = marked(directory)
    # Per part: a dump up to its first mark (warm-up), then the small loop, then the large one.
    assert len(counts) == 3 * len(names), counts
    per = {name: (counts[3 * i + 2] - counts[3 * i + 1]) / (LARGE - SMALL) for i, name in enumerate(names)}
    empty = per.pop("empty loop")
    print("CPU instructions per part, each alone (callgrind; the empty loop's cost taken off)")
    for name, value in per.items():
        print(f"  {name:<74}{value - empty:>8,.0f}")


if __name__ == "__main__":
    main()
