"""Where the demos get ids from: the real Hello Retail, or an embedded fake."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from hr_middleware._core.settings import DEFAULT_API_URL
from hr_middleware.testing import FakeHelloRetail

__all__ = ["hello_retail_options"]


@contextmanager
def hello_retail_options() -> Iterator[tuple[dict[str, str], str]]:
    """The middleware options to use, and a line saying where ids come from.

    With ``HELLO_RETAIL_WEBSITE_UUID`` set in the environment: the real Hello
    Retail (``HELLO_RETAIL_API_URL`` overrides the address). Otherwise a fake
    Hello Retail on 127.0.0.1, stopped when the block ends.
    """
    website_uuid = os.environ.get("HELLO_RETAIL_WEBSITE_UUID")
    if website_uuid:
        options = {"website_uuid": website_uuid}
        if os.environ.get("HELLO_RETAIL_API_URL"):
            options["api_url"] = os.environ["HELLO_RETAIL_API_URL"]
        yield options, f"Hello Retail at {options.get('api_url', DEFAULT_API_URL)}"
        return
    with FakeHelloRetail() as fake:
        yield {"website_uuid": fake.website_uuid, "api_url": fake.url}, f"the embedded fake Hello Retail at {fake.url}"
