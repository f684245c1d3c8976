"""``make demo-asgi``: the Starlette shop under uvicorn on http://127.0.0.1:$PORT (default 8001).

``HOST`` chooses the address it listens on (default 127.0.0.1). Ids come from an
embedded fake Hello Retail; with ``HELLO_RETAIL_WEBSITE_UUID`` set in the
environment, from the real Hello Retail instead (``HELLO_RETAIL_API_URL``
overrides the address).
"""

from __future__ import annotations

import logging

import uvicorn

from examples.backend import hello_retail_options
from examples.serving import address, banner, bind

from .app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, port = address(8001)
    listening = bind(host, port, "make demo-asgi")  # before anything is printed: a taken port is the one thing said
    with hello_retail_options() as backend, listening:
        app = create_app(fake=backend.fake, **backend.options)
        banner(host, port, backend.description)
        try:
            uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[listening])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl+C it shut down on (as uvicorn.run catches it)
            pass


if __name__ == "__main__":
    main()
