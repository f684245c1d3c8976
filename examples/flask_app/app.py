"""A tiny Flask shop page: the visitor's Hello Retail trackingUserId, a search box and "Recommended for you"."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, request

from examples.shop_page import (
    RECOMMENDATIONS_KEY,
    SEARCH_KEY,
    SearchForm,
    products_of,
    recommendation_requests,
    render_page,
    search_html,
)
from hr_middleware import HelloRetailError, get_tracking_user
from hr_middleware.client import HelloRetailClient
from hr_middleware.flask import HelloRetail

logger = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The demo app; *config* must hold at least ``HELLO_RETAIL_WEBSITE_UUID``.

    ``RECOMMENDATIONS_KEY`` in *config* names the recommendation box to show,
    ``SEARCH_KEY`` the search configuration.
    """
    app = Flask(__name__)
    app.config.update(config or {})
    HelloRetail(app)
    # One client for the app's life: it keeps a pool of connections.
    hello_retail = HelloRetailClient.from_settings(HelloRetail.settings(app))
    key = app.config.get("RECOMMENDATIONS_KEY", RECOMMENDATIONS_KEY)
    search_key = app.config.get("SEARCH_KEY", SEARCH_KEY)

    @app.get("/")
    def index() -> str:
        form = SearchForm(request.args, request.args.getlist("filter"))
        return render_page(
            get_tracking_user(),
            "Flask",
            recommended_for_you(hello_retail, key),
            query=form.query,
            search=search_results(hello_retail, search_key, form),
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def recommended_for_you(hello_retail: HelloRetailClient, key: str) -> list[Mapping[str, Any]]:
    """The visitor's recommended products; [] when Hello Retail fails, so the page renders without them."""
    try:
        # The client fills in the visitor's trackingUserId itself.
        return products_of(hello_retail.recommendations(recommendation_requests(key)))
    except HelloRetailError as exc:
        logger.warning("no recommendations: %s", exc)
        return []


def search_results(hello_retail: HelloRetailClient, key: str, form: SearchForm) -> str:
    """The search results' HTML; "" without a query or when Hello Retail fails."""
    if not form.query:
        return ""
    try:
        return search_html(form, hello_retail.search(key, form.query, format="json", products=form.products()))
    except HelloRetailError as exc:
        logger.warning("no search results: %s", exc)
        return ""
