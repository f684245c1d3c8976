"""``make demo``: the Flask shop on http://127.0.0.1:$PORT with an embedded fake Hello Retail.

``HOST`` chooses the address it listens on (default 127.0.0.1; ``HOST=0.0.0.0`` to
reach it from outside a container or VM). With ``HELLO_RETAIL_WEBSITE_UUID`` set in
the environment it talks to the real Hello Retail instead (``HELLO_RETAIL_API_URL``
overrides the address, and ``RECOMMENDATIONS_KEY`` names one of the shop's
recommendation boxes).
"""

from __future__ import annotations

import logging
import os

from werkzeug.serving import make_server

from examples.backend import hello_retail_options
from examples.serving import address, banner, bind

from .app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    host, port = address(8000)
    listening = bind(host, port, "make demo")  # before anything is printed: a taken port is the one thing said
    with hello_retail_options() as backend, listening:
        config: dict[str, object] = {"HELLO_RETAIL_" + name.upper(): value for name, value in backend.options.items()}
        if os.environ.get("RECOMMENDATIONS_KEY"):
            config["RECOMMENDATIONS_KEY"] = os.environ["RECOMMENDATIONS_KEY"]
        app = create_app(config, fake=backend.fake)
        server = make_server(host, port, app, threaded=True, fd=listening.fileno())
        banner(host, port, backend.description)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


if __name__ == "__main__":
    main()
