"""A tiny Starlette shop page: the visitor's Hello Retail trackingUserId, a search box and "Recommended for you"."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from examples.shop_page import (
    RECOMMENDATIONS_KEY,
    SEARCH_KEY,
    SearchForm,
    products_of,
    recommendation_requests,
    render_page,
    search_html,
)
from hr_middleware import HelloRetailError, Settings, get_tracking_user
from hr_middleware.asgi import TrackingUserMiddleware
from hr_middleware.client import AsyncHelloRetailClient

logger = logging.getLogger(__name__)


def create_app(**options: Any) -> Starlette:
    """The demo app; *options* are the middleware's (``website_uuid`` at least)."""
    settings = Settings(**options)
    key = os.environ.get("RECOMMENDATIONS_KEY", RECOMMENDATIONS_KEY)
    search_key = os.environ.get("SEARCH_KEY", SEARCH_KEY)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One client for the app's life (a pool of connections), closed at shutdown.
        async with AsyncHelloRetailClient.from_settings(settings) as client:
            app.state.hello_retail = client
            yield

    async def index(request: Request) -> HTMLResponse:
        # request.state.tracking_user_id holds the id too; get_tracking_user() adds its origin.
        form = SearchForm(request.query_params, request.query_params.getlist("filter"))
        client = request.app.state.hello_retail
        products = await recommended_for_you(client, key)
        search = await search_results(client, search_key, form)
        return HTMLResponse(render_page(get_tracking_user(), "Starlette", products, query=form.query, search=search))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/", index), Route("/health", health)],
        middleware=[Middleware(TrackingUserMiddleware, settings=settings)],
        lifespan=lifespan,
    )


async def recommended_for_you(hello_retail: AsyncHelloRetailClient, key: str) -> list[Mapping[str, Any]]:
    """The visitor's recommended products; [] when Hello Retail fails, so the page renders without them."""
    try:
        return products_of(await hello_retail.recommendations(recommendation_requests(key)))
    except HelloRetailError as exc:
        logger.warning("no recommendations: %s", exc)
        return []


async def search_results(hello_retail: AsyncHelloRetailClient, key: str, form: SearchForm) -> str:
    """The search results' HTML; "" without a query or when Hello Retail fails."""
    if not form.query:
        return ""
    try:
        return search_html(form, await hello_retail.search(key, form.query, format="json", products=form.products()))
    except HelloRetailError as exc:
        logger.warning("no search results: %s", exc)
        return ""
