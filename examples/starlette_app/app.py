"""The demo shop on Starlette: the shared page (examples/shop_page.py) with recommendations, search, consent,
two regions (websites by host) and a login that links the customer."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from examples.response_headers import ShowHeadersASGI
from examples.shop_page import (
    CONSENT_COOKIE,
    CONSENT_MAX_AGE,
    CUSTOMER_COOKIE,
    DEMO_CUSTOMER,
    MIDDLEWARE_OPTIONS,
    RECOMMENDATIONS_KEY,
    SEARCH_KEY,
    SearchForm,
    consent_value,
    fake_image,
    logged_in_customer,
    products_of,
    recommendation_requests,
    render_page,
    search_html,
)
from hr_middleware import HelloRetailError, Settings, get_tracking_user, get_website_uuid
from hr_middleware.asgi import TrackingUserMiddleware
from hr_middleware.client import AsyncHelloRetailClient
from hr_middleware.consent import agrant, revoke
from hr_middleware.customers import alink_customer
from hr_middleware.script import hello_retail_script
from hr_middleware.testing import FakeHelloRetail

logger = logging.getLogger(__name__)


def create_app(*, fake: FakeHelloRetail | None = None, **options: Any) -> Starlette:
    """The demo app; *options* are the middleware's (``website_uuid`` at least; ``websites`` from
    :func:`examples.shop_page.website_options` gives the second region its website).

    *fake* is the embedded fake Hello Retail, whose calls the page counts.
    """
    settings = Settings(**{**MIDDLEWARE_OPTIONS, **options})
    key = os.environ.get("RECOMMENDATIONS_KEY", RECOMMENDATIONS_KEY)
    search_key = os.environ.get("SEARCH_KEY", SEARCH_KEY)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One client for the app's life (a pool of connections), closed at shutdown.
        async with AsyncHelloRetailClient.from_settings(settings) as client:
            app.state.hello_retail = client
            yield

    async def page(request: Request, consent: str | None, customer: str | None) -> HTMLResponse:
        # request.state.tracking_user_id holds the id too; get_tracking_user() adds its origin.
        form = SearchForm(request.query_params, request.query_params.getlist("filter"))
        client = request.app.state.hello_retail
        # On every page of a logged-in customer: Hello Retail hears of each visitor and customer
        # once (a cookie remembers the link), and the script below is told setCustomerId.
        link = await alink_customer(customer) if customer is not None else None
        products = await recommended_for_you(client, key)
        search = await search_results(client, search_key, form, fake)
        user = get_tracking_user()
        script = hello_retail_script()  # early in <head>: the consent decision reaches the script first
        return HTMLResponse(
            render_page(
                user,
                "Starlette",
                products,
                query=form.query,
                search=search,
                fake=fake,
                consent=consent,
                script=script,
                host=request.headers.get("host", ""),
                website_uuid=get_website_uuid(),
                websites=settings.websites if isinstance(settings.websites, Mapping) else None,
                customer=customer,
                link=link,
            )
        )

    def customer_now(request: Request) -> str | None:
        return logged_in_customer(request.cookies.get(CUSTOMER_COOKIE))

    async def index(request: Request) -> Response:
        return await page(request, request.cookies.get(CONSENT_COOKIE), customer_now(request))

    async def consent(request: Request) -> Response:
        """The consent banner's answer: act on it in this response, and show the page as it now is."""
        answer = parse_qs((await request.body()).decode("latin-1")).get("answer", [""])[-1]
        value = consent_value(answer)
        if value is None:
            return RedirectResponse("/", 303)
        if value == "yes":
            await agrant()  # keeps or mints the id and sets its cookies
        else:
            revoke()  # the id becomes the opt-out id; both id cookies are deleted
        response = await page(request, value, customer_now(request))
        response.set_cookie(CONSENT_COOKIE, value, max_age=CONSENT_MAX_AGE, samesite="lax")
        return response

    async def image(request: Request) -> Response:
        """The embedded fake's product pictures, through the demo's own origin."""
        status, content_type, body = await run_in_threadpool(fake_image, fake, request.path_params["name"])
        return Response(body, status, media_type=content_type, headers={"Cache-Control": "public, max-age=86400"})

    async def login(request: Request) -> Response:
        """The demo's login (no password): the customer is linked to the visitor's id in this response."""
        response = await page(request, request.cookies.get(CONSENT_COOKIE), DEMO_CUSTOMER)
        # Not HttpOnly, unlike a real session: "Become a new visitor" forgets it from the page.
        response.set_cookie(CUSTOMER_COOKIE, DEMO_CUSTOMER, samesite="lax")
        return response

    async def logout(request: Request) -> Response:
        response = await page(request, request.cookies.get(CONSENT_COOKIE), None)
        response.delete_cookie(CUSTOMER_COOKIE, samesite="lax")
        return response

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/consent", consent, methods=["POST"]),
            Route("/images/{name}", image),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/health", health),
        ],
        # The first middleware is the outermost: it sees the response as it leaves, and writes its headers in.
        middleware=[Middleware(ShowHeadersASGI), Middleware(TrackingUserMiddleware, settings=settings)],
        lifespan=lifespan,
    )


async def recommended_for_you(hello_retail: AsyncHelloRetailClient, key: str) -> list[Mapping[str, Any]]:
    """The visitor's recommended products; [] when Hello Retail fails, so the page renders without them."""
    try:
        return products_of(await hello_retail.recommendations(recommendation_requests(key)))
    except HelloRetailError as exc:
        logger.warning("no recommendations: %s", exc)
        return []


async def search_results(
    hello_retail: AsyncHelloRetailClient, key: str, form: SearchForm, fake: FakeHelloRetail | None = None
) -> str:
    """The search results' HTML; "" without a query or when Hello Retail fails."""
    if not form.query:
        return ""
    try:
        answer = await hello_retail.search(key, form.query, format="json", products=form.products())
        return search_html(form, answer, fake)
    except HelloRetailError as exc:
        logger.warning("no search results: %s", exc)
        return ""
