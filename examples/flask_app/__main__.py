"""``make demo``: the Flask shop on http://127.0.0.1:$PORT with an embedded fake Hello Retail.

With ``HELLO_RETAIL_WEBSITE_UUID`` set in the environment it talks to the real
Hello Retail instead (``HELLO_RETAIL_API_URL`` overrides the address, and
``RECOMMENDATIONS_KEY`` names one of the shop's recommendation boxes).
"""

from __future__ import annotations

import logging
import os

from werkzeug.serving import run_simple

from examples.backend import hello_retail_options

from .app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    port = int(os.environ.get("PORT", "8000"))
    with hello_retail_options() as backend:
        config: dict[str, object] = {"HELLO_RETAIL_" + name.upper(): value for name, value in backend.options.items()}
        if os.environ.get("RECOMMENDATIONS_KEY"):
            config["RECOMMENDATIONS_KEY"] = os.environ["RECOMMENDATIONS_KEY"]
        app = create_app(config, fake=backend.fake)
        print(f"\n  Demo shop: http://127.0.0.1:{port}/  (ids from {backend.description})\n", flush=True)
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
