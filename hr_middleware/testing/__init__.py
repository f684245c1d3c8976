"""A fake Hello Retail for tests and demos (being split into modules by job)."""

from __future__ import annotations

from .server import DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode, RecordedRequest, fake_products

__all__ = ["DEFAULT_WEBSITE_UUID", "FakeHelloRetail", "Mode", "RecordedRequest", "fake_products"]
