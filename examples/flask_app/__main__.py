"""``make demo``: the Flask shop on http://127.0.0.1:$PORT with an embedded fake Hello Retail.

With ``HELLO_RETAIL_WEBSITE_UUID`` set in the environment it talks to the real
Hello Retail instead (``HELLO_RETAIL_API_URL`` overrides the address, and
``RECOMMENDATIONS_KEY`` names one of the shop's recommendation boxes).
"""

from __future__ import annotations

import logging
import os

from werkzeug.serving import run_simple

from hr_middleware.testing import FakeHelloRetail

from .app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    port = int(os.environ.get("PORT", "8000"))
    config: dict[str, object] = {}
    fake: FakeHelloRetail | None = None
    website_uuid = os.environ.get("HELLO_RETAIL_WEBSITE_UUID")
    if website_uuid:
        config["HELLO_RETAIL_WEBSITE_UUID"] = website_uuid
        if os.environ.get("HELLO_RETAIL_API_URL"):
            config["HELLO_RETAIL_API_URL"] = os.environ["HELLO_RETAIL_API_URL"]
        if os.environ.get("RECOMMENDATIONS_KEY"):
            config["RECOMMENDATIONS_KEY"] = os.environ["RECOMMENDATIONS_KEY"]
        backend = f"Hello Retail at {config.get('HELLO_RETAIL_API_URL', 'https://core.helloretail.com')}"
    else:
        fake = FakeHelloRetail().start()
        config["HELLO_RETAIL_WEBSITE_UUID"] = fake.website_uuid
        config["HELLO_RETAIL_API_URL"] = fake.url
        backend = f"the embedded fake Hello Retail at {fake.url}"
    app = create_app(config)
    print(f"\n  Demo shop: http://127.0.0.1:{port}/  (ids from {backend})\n", flush=True)
    try:
        run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)
    finally:
        if fake is not None:
            fake.stop()


if __name__ == "__main__":
    main()
