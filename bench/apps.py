"""Apps for real servers in the load, throughput and instruction runs, configured by environment.

``HR_BENCH_BARE`` picks the stack around the app:

- ``0`` (or unset): the middleware, talking to ``HELLO_RETAIL_API_URL``;
- ``1``: the same app without it;
- ``vary``: without it, its pages sending the ``Cache-Control: private`` and
  ``Vary: Cookie`` headers that the middleware adds to a page that reads the id;
- ``correlation-id``: asgi-correlation-id instead of ours (ASGI only), a peer
  that also reads a header and sets a contextvar on every request.

``HR_BENCH_PAGE`` picks the page: ``hello`` (a one-line page, the default) or
``jinja`` (a product listing of 20 items rendered from a Jinja template with a
base layout, as a shop's category page is).

``GET /mark`` calls ``os.getloadavg()``, which nothing else in a server calls:
``bench/instructions.py`` has callgrind dump its counts there, to count the
instructions of the requests between two marks.

    gunicorn bench.apps:wsgi_app        uvicorn bench.apps:asgi_app
"""

from __future__ import annotations

import os
from typing import Any

from hr_middleware import get_tracking_user_id

_STACK = os.environ.get("HR_BENCH_BARE", "0")
BARE = _STACK in ("1", "vary")
#: The page headers; the bare app with "vary" sends what ours adds (Cache-Control: private, Vary: Cookie).
_VARY = _STACK == "vary"
_JINJA = os.environ.get("HR_BENCH_PAGE", "hello") == "jinja"


def _options() -> dict[str, Any]:
    return {
        "website_uuid": os.environ.get("HELLO_RETAIL_WEBSITE_UUID", "00000000-0000-4000-8000-000000000001"),
        "api_url": os.environ.get("HELLO_RETAIL_API_URL", "http://127.0.0.1:9"),
        "timeout": float(os.environ.get("HELLO_RETAIL_TIMEOUT", "1.0")),
    }


_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{% block title %}{% endblock %} | {{ shop.name }}</title>
  <link rel="stylesheet" href="/static/shop.css">
</head>
<body>
  <header>
    <a class="logo" href="/">{{ shop.name }}</a>
    <nav>{% for link in shop.menu %}<a href="{{ link.url }}">{{ link.title }}</a>{% endfor %}</nav>
    <form action="/search"><input name="q" placeholder="Search {{ shop.name }}"></form>
    <a class="cart" href="/cart">Cart ({{ cart_count }})</a>
  </header>
  <main>{% block content %}{% endblock %}</main>
  <footer>&copy; {{ shop.year }} {{ shop.name }}
    {%- if tracking_user_id %} &middot; visitor {{ tracking_user_id }}{% endif %}</footer>
</body>
</html>
""",
    "category.html": """{% extends "base.html" %}
{% block title %}{{ category.title }}{% endblock %}
{% block content %}
<h1>{{ category.title }}</h1>
<p class="count">{{ products|length }} products</p>
<ul class="products">
{% for product in products %}
  <li class="product{% if product.sale_price %} on-sale{% endif %}">
    <a href="/products/{{ product.id }}/{{ product.slug }}">
      <img src="{{ product.image }}" alt="{{ product.title }}" width="240" height="240" loading="lazy">
      <h2>{{ product.title|truncate(40) }}</h2>
    </a>
    <p class="brand">{{ product.brand|upper }}</p>
    {% if product.sale_price %}
    <p class="price"><del>{{ "%.2f"|format(product.price) }} kr.</del> {{ "%.2f"|format(product.sale_price) }} kr.</p>
    {% else %}
    <p class="price">{{ "%.2f"|format(product.price) }} kr.</p>
    {% endif %}
    <p class="stock">{{ "In stock" if product.in_stock else "Sold out" }}</p>
    <form action="/cart" method="post"><input type="hidden" name="id" value="{{ product.id }}">
      <button{% if not product.in_stock %} disabled{% endif %}>Add to cart</button></form>
  </li>
{% endfor %}
</ul>
{% endblock %}
""",
}

_CONTEXT: dict[str, Any] = {
    "shop": {
        "name": "Nordic Outdoor & Co",
        "year": 2025,
        "menu": [{"url": f"/c/{name.lower()}", "title": name} for name in ("Jackets", "Shoes", "Tents", "Sale")],
    },
    "category": {"title": "Rain jackets"},
    "cart_count": 2,
    "products": [
        {
            "id": 1000 + i,
            "slug": f"waterproof-shell-jacket-model-{i}",
            "title": f"Waterproof shell jacket <model {i}> with taped seams & hood",
            "brand": ("Fjellgear", "Skog & Sjø", "Nordlys")[i % 3],
            "image": f"/media/products/{1000 + i}/front-240.webp",
            "price": 899.0 + 50 * i,
            "sale_price": 749.5 + 40 * i if i % 4 == 0 else None,
            "in_stock": i % 7 != 3,
        }
        for i in range(20)
    ],
}


def _template() -> Any:
    from jinja2 import DictLoader, Environment

    return Environment(loader=DictLoader(_TEMPLATES), autoescape=True).get_template("category.html")


_CATEGORY = _template() if _JINJA else None


def _page(tracking_user_id: str | None) -> bytes:
    if _CATEGORY is not None:
        return _CATEGORY.render(_CONTEXT, tracking_user_id=tracking_user_id).encode()
    return f"<!doctype html><p>Hello, visitor {tracking_user_id or 'without id'}</p>".encode()


def _bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ["PATH_INFO"] in ("/health", "/mark"):
        if environ["PATH_INFO"] == "/mark":
            os.getloadavg()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    body = _page(get_tracking_user_id())
    headers = [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
    start_response("200 OK", [*headers, ("Cache-Control", "private"), ("Vary", "Cookie")] if _VARY else headers)
    return [body]


async def _bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] in ("/health", "/mark"):
        if scope["path"] == "/mark":
            os.getloadavg()
        body, headers = b"ok", [(b"content-type", b"text/plain")]
    else:
        body, headers = _page(get_tracking_user_id()), [(b"content-type", b"text/html")]
        if _VARY:
            headers += [(b"cache-control", b"private"), (b"vary", b"Cookie")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _build_wsgi() -> Any:
    from hr_middleware.wsgi import TrackingUserMiddleware

    # Built in the bare variant too, unused: both processes then load the same
    # modules, and compare per-request cost, not heap size (a bigger heap makes
    # every garbage collection of the server dearer).
    middleware = TrackingUserMiddleware(_bare_wsgi, **_options())
    return _bare_wsgi if BARE else middleware


def _build_asgi() -> Any:
    from hr_middleware.asgi import TrackingUserMiddleware

    middleware = TrackingUserMiddleware(_bare_asgi, **_options())
    if _STACK == "correlation-id":
        from asgi_correlation_id import CorrelationIdMiddleware

        return CorrelationIdMiddleware(_bare_asgi)
    return _bare_asgi if BARE else middleware


wsgi_app = _build_wsgi()


def __getattr__(name: str) -> Any:
    # Built on first use, so that a WSGI-only install can import this module.
    if name == "asgi_app":
        app = _build_asgi()
        globals()["asgi_app"] = app
        return app
    raise AttributeError(name)
