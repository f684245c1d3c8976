"""A fake Hello Retail for tests and demos: a real HTTP server on 127.0.0.1.

It mints valid ids on ``POST /serve/trackingUser``, counts them, answers the
downstream endpoints (recommendations, search, pages, tracking) in Hello
Retail's shapes with deterministic canned products (and serves their images,
as generated SVGs, and stand-in pages for their links), answers customer links
(counted in ``fake.customer_links``) and customer bias, records every request
to Hello Retail's endpoints, and can be told to be slow, hang, fail or answer
garbage. Like Hello Retail it refuses what Hello Retail refuses: a website it
does not know (``website_uuids=``), a click that names nobody, a malformed id;
the API key is wanted only where ``customerId`` names the visitor (or
``email``, on recommendations; on cart and conversion an email is data)::

    from hr_middleware.testing import FakeHelloRetail, Mode

    with FakeHelloRetail() as fake:
        app = TrackingUserMiddleware(app, settings=fake.settings())
        ...
        assert fake.mint_count == 1
        assert fake.minted_for(fake.website_uuid) == fake.minted
        fake.mode = Mode.SERVER_ERROR      # mints fail
        fake.api_mode = Mode.HANG          # the other endpoints hang

What else it can be told (``website_uuids=``, ``shop_url=``,
``zero_result_queries``, the known keys, the API key) and what it answers is
in :class:`FakeHelloRetail`'s docstring. Customer links are answered in
:mod:`._customers`, customer bias in :mod:`._bias`, the stand-in product pages
in :mod:`._handler`.

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
Hello Retail's shapes), :mod:`._images` (the products' pictures), :mod:`._script`
(the stand-in for Hello Retail's script, ``fake.script_url``, and what pages told it),
:mod:`._browser` (a person's browser headers), :mod:`._minted` (the minted ids) and
:mod:`.__main__` (the command line).
"""

from __future__ import annotations

from ._answers import Mode, fake_products
from ._browser import BROWSER_HEADERS
from ._handler import RecordedRequest
from ._script import ScriptEvent, ScriptLog
from ._server import DEFAULT_WEBSITE_UUID, FakeHelloRetail

__all__ = [
    "BROWSER_HEADERS",
    "DEFAULT_WEBSITE_UUID",
    "FakeHelloRetail",
    "Mode",
    "RecordedRequest",
    "ScriptEvent",
    "ScriptLog",
    "fake_products",
]
