"""A fake Hello Retail for tests and demos: a real HTTP server on 127.0.0.1.

It mints valid ids on ``POST /serve/trackingUser``, counts them, answers the
downstream endpoints (recommendations, search, pages, tracking) with
deterministic canned products (and serves their images, as generated SVGs),
records every request to Hello Retail's endpoints, and can be told to be
slow, hang, fail or answer garbage::

    from hr_middleware.testing import FakeHelloRetail, Mode

    with FakeHelloRetail() as fake:
        app = TrackingUserMiddleware(app, settings=fake.settings())
        ...
        assert fake.mint_count == 1
        fake.mode = Mode.SERVER_ERROR      # mints fail
        fake.api_mode = Mode.HANG          # the other endpoints hang

Only a person's page navigation mints, and test clients send no browser
headers: pass ``headers=BROWSER_HEADERS`` for a first visit. Reading an id the
fake never minted (``fake.minted[0]``) fails with the likely cause.

With pytest, the ``fake_hello_retail`` fixture (from this package's pytest
plugin) gives a running server, reset for every test, and ``browser_headers``
a copy of :data:`BROWSER_HEADERS`. Nothing here talks to
the real Hello Retail. ``python -m hr_middleware.testing`` runs one in the
foreground.

The modules: :mod:`._server` (the fake's lifecycle and what it counted),
:mod:`._handler` (its HTTP side), :mod:`._answers` (modes and canned answers in
Hello Retail's shapes), :mod:`._images` (the products' pictures),
:mod:`._browser` (a person's browser headers), :mod:`._minted` (the minted ids) and
:mod:`.__main__` (the command line).
"""

from __future__ import annotations

from ._answers import Mode, fake_products
from ._browser import BROWSER_HEADERS
from ._handler import RecordedRequest
from ._server import DEFAULT_WEBSITE_UUID, FakeHelloRetail

__all__ = ["BROWSER_HEADERS", "DEFAULT_WEBSITE_UUID", "FakeHelloRetail", "Mode", "RecordedRequest", "fake_products"]
