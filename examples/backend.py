"""Where the demos get ids from: the real Hello Retail, or an embedded fake."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from examples.shop_page import DEMO_WEBSITE_UUIDS, website_options
from hr_middleware._core.settings import DEFAULT_API_URL
from hr_middleware.testing import FakeHelloRetail

__all__ = ["Backend", "hello_retail_options"]


class Backend(NamedTuple):
    """The Hello Retail a demo talks to."""

    #: The middleware's options that point at it (``website_uuid``, maybe ``websites``, ``api_url`` and
    #: ``script_url``).
    options: dict[str, Any]
    #: Where ids come from, in words.
    description: str
    #: The embedded fake, or None for the real Hello Retail.
    fake: FakeHelloRetail | None


@contextmanager
def hello_retail_options() -> Iterator[Backend]:
    """The Hello Retail to use, as a :class:`Backend`.

    With ``HELLO_RETAIL_WEBSITE_UUID`` set in the environment: the real Hello
    Retail (``HELLO_RETAIL_API_URL`` overrides the address;
    ``HELLO_RETAIL_SECOND_WEBSITE_UUID`` is the second region's website, on
    localhost). Otherwise a fake Hello Retail on 127.0.0.1 that knows both
    regions' websites, stopped when the block ends.
    """
    website_uuid = os.environ.get("HELLO_RETAIL_WEBSITE_UUID")
    if website_uuid:
        options = website_options(website_uuid, os.environ.get("HELLO_RETAIL_SECOND_WEBSITE_UUID"))
        if os.environ.get("HELLO_RETAIL_API_URL"):
            options["api_url"] = os.environ["HELLO_RETAIL_API_URL"]
        if os.environ.get("HELLO_RETAIL_SCRIPT_URL"):  # e.g. a test's fake: its stand-in for the script
            options["script_url"] = os.environ["HELLO_RETAIL_SCRIPT_URL"]
        yield Backend(options, f"Hello Retail at {options.get('api_url', DEFAULT_API_URL)}", None)
        return
    with FakeHelloRetail(website_uuids=DEMO_WEBSITE_UUIDS) as fake:
        options = {**website_options(*DEMO_WEBSITE_UUIDS), "api_url": fake.url, "script_url": fake.script_url}
        yield Backend(options, f"the embedded fake Hello Retail at {fake.url}", fake)
