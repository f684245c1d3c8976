"""``python -m hr_middleware.testing``: a fake Hello Retail in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from ._answers import Mode
from ._server import FakeHelloRetail

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """``python -m hr_middleware.testing``: a fake Hello Retail in the foreground.

    For manual tests, a demo against another process, or a benchmark that must
    not share a GIL with the server. Prints its base URL, then serves until
    interrupted, logging each mint and call as a dev server would. ``GET /`` says
    what it is and what it answers.
    """
    parser = argparse.ArgumentParser(prog="python -m hr_middleware.testing", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.OK.value)
    parser.add_argument("--quiet", action="store_true", help="log no call (a benchmark's fake)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fake = FakeHelloRetail(port=args.port)
    fake.delay = args.delay
    fake.mode = Mode(args.mode)
    fake.log_requests = not args.quiet
    fake.start()
    print(fake.url, flush=True)
    print(f"  a fake Hello Retail: open {fake.url}/ for what it answers; each call is logged below", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
