"""A tiny Starlette shop page that shows the visitor's Hello Retail trackingUserId."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from examples.shop_page import render_page
from hr_middleware import get_tracking_user
from hr_middleware.asgi import TrackingUserMiddleware


async def index(request: Request) -> HTMLResponse:
    # request.state.tracking_user_id holds the id too; get_tracking_user() adds its origin.
    return HTMLResponse(render_page(get_tracking_user(), "Starlette"))


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(**options: Any) -> Starlette:
    """The demo app; *options* are the middleware's (``website_uuid`` at least)."""
    return Starlette(
        routes=[Route("/", index), Route("/health", health)],
        middleware=[Middleware(TrackingUserMiddleware, **options)],
    )
