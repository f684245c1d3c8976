"""pytest plugin (registered as ``hr_middleware``): a fake Hello Retail per test.

Fixtures:

``fake_hello_retail``
    A running :class:`~hr_middleware.testing.FakeHelloRetail`, reset before
    each test. ``fake_hello_retail.settings(**options)`` gives settings that
    point the middleware at it; ``fake_hello_retail.mint_count`` counts mints.

``browser_headers``
    The headers of a person's page navigation
    (:data:`hr_middleware.testing.BROWSER_HEADERS`), a fresh dict per test:
    ``client.get("/", headers=browser_headers)`` mints on a first visit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import BROWSER_HEADERS, FakeHelloRetail


@pytest.fixture(scope="session")
def _hr_fake_server() -> Iterator[FakeHelloRetail]:
    with FakeHelloRetail() as fake:
        yield fake


@pytest.fixture
def fake_hello_retail(_hr_fake_server: FakeHelloRetail) -> Iterator[FakeHelloRetail]:
    """A fake Hello Retail on 127.0.0.1, reset for this test."""
    _hr_fake_server.reset()
    yield _hr_fake_server
    _hr_fake_server.reset()


@pytest.fixture
def browser_headers() -> dict[str, str]:
    """A person's page navigation headers (``hr_middleware.testing.BROWSER_HEADERS``), yours to change."""
    return dict(BROWSER_HEADERS)
