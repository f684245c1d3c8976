"""A fake Hello Retail for tests and demos: a real HTTP server on 127.0.0.1.

It mints valid ids on ``POST /serve/trackingUser``, counts them, answers the
downstream endpoints (recommendations, search, pages, tracking) with
deterministic canned products (and serves their images, as generated SVGs,
and stand-in pages for their links), records every request to Hello Retail's
endpoints, and can be told to be slow, hang, fail or answer garbage::

    from hr_middleware.testing import FakeHelloRetail, Mode

    with FakeHelloRetail() as fake:
        app = TrackingUserMiddleware(app, settings=fake.settings())
        ...
        assert fake.mint_count == 1
        fake.mode = Mode.SERVER_ERROR      # mints fail
        fake.api_mode = Mode.HANG          # the other endpoints hang

With pytest, the ``fake_hello_retail`` fixture (from this package's pytest
plugin) gives a running server, reset for every test. Nothing here talks to
the real Hello Retail. ``python -m hr_middleware.testing`` runs one in the
foreground.

The modules: :mod:`._server` (the fake's lifecycle and what it counted),
:mod:`._handler` (its HTTP side), :mod:`._answers` (modes and canned answers in
Hello Retail's shapes), :mod:`._images` (the products' pictures), :mod:`._script`
(the stand-in for Hello Retail's script, ``fake.script_url``, and what pages told it) and
:mod:`.__main__` (the command line).
"""

from __future__ import annotations

from ._answers import Mode, fake_products
from ._handler import RecordedRequest
from ._script import ScriptEvent, ScriptLog
from ._server import DEFAULT_WEBSITE_UUID, FakeHelloRetail

__all__ = [
    "DEFAULT_WEBSITE_UUID",
    "FakeHelloRetail",
    "Mode",
    "RecordedRequest",
    "ScriptEvent",
    "ScriptLog",
    "fake_products",
]
