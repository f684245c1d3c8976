"""``make demo-asgi``: the Starlette shop under uvicorn on http://127.0.0.1:$PORT (default 8001).

Ids come from an embedded fake Hello Retail; with ``HELLO_RETAIL_WEBSITE_UUID``
set in the environment, from the real Hello Retail instead
(``HELLO_RETAIL_API_URL`` overrides the address).
"""

from __future__ import annotations

import logging
import os

import uvicorn

from examples.backend import hello_retail_options

from .app import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    port = int(os.environ.get("PORT", "8001"))
    with hello_retail_options() as backend:
        app = create_app(fake=backend.fake, **backend.options)
        print(f"\n  Demo shop: http://127.0.0.1:{port}/  (ids from {backend.description})\n", flush=True)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


if __name__ == "__main__":
    main()
