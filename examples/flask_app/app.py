"""The demo shop on Flask: the shared page (examples/shop_page.py) with recommendations, search, consent,
two regions (websites by host) and a login that links the customer."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, make_response, redirect, request

from examples.response_headers import ShowHeadersWSGI
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
from hr_middleware import HelloRetailError, get_tracking_user, get_website_uuid
from hr_middleware.client import HelloRetailClient
from hr_middleware.consent import grant, revoke
from hr_middleware.customers import link_customer
from hr_middleware.flask import HelloRetail
from hr_middleware.script import hello_retail_script
from hr_middleware.testing import FakeHelloRetail

logger = logging.getLogger(__name__)


def create_app(config: dict[str, Any] | None = None, *, fake: FakeHelloRetail | None = None) -> Flask:
    """The demo app; *config* must hold at least ``HELLO_RETAIL_WEBSITE_UUID``.

    ``HELLO_RETAIL_WEBSITES`` (from :func:`examples.shop_page.website_options`) gives the
    second region its website. ``RECOMMENDATIONS_KEY`` in *config* names the recommendation box to show,
    ``SEARCH_KEY`` the search configuration. *fake* is the embedded fake Hello
    Retail, whose calls the page counts.
    """
    app = Flask(__name__)
    app.config.update({"HELLO_RETAIL_" + name.upper(): value for name, value in MIDDLEWARE_OPTIONS.items()})
    app.config.update(config or {})
    HelloRetail(app)
    # Outside the middleware: it sees the response as it leaves, and writes its headers into the page.
    app.wsgi_app = ShowHeadersWSGI(app.wsgi_app)  # type: ignore[method-assign]
    # One client for the app's life: it keeps a pool of connections.
    hello_retail = HelloRetailClient.from_settings(HelloRetail.settings(app))
    key = app.config.get("RECOMMENDATIONS_KEY", RECOMMENDATIONS_KEY)
    search_key = app.config.get("SEARCH_KEY", SEARCH_KEY)

    def page(consent: str | None, customer: str | None) -> str:
        form = SearchForm(request.args, request.args.getlist("filter"))
        # On every page of a logged-in customer: Hello Retail hears of each visitor and customer
        # once (a cookie remembers the link), and the script below is told setCustomerId.
        link = link_customer(customer) if customer is not None else None
        return render_page(
            get_tracking_user(),
            "Flask",
            recommended_for_you(hello_retail, key),
            query=form.query,
            search=search_results(hello_retail, search_key, form, fake),
            fake=fake,
            consent=consent,
            script=hello_retail_script(),  # early in <head>: the consent decision reaches the script first
            host=request.host,
            website_uuid=get_website_uuid(),
            websites=app.config.get("HELLO_RETAIL_WEBSITES"),
            customer=customer,
            link=link,
        )

    def customer_now() -> str | None:
        return logged_in_customer(request.cookies.get(CUSTOMER_COOKIE))

    @app.get("/")
    def index() -> str:
        return page(request.cookies.get(CONSENT_COOKIE), customer_now())

    @app.post("/consent")
    def consent() -> Response:
        """The consent banner's answer: act on it in this response, and show the page as it now is."""
        value = consent_value(request.form.get("answer"))
        if value is None:
            return redirect("/", 303)
        if value == "yes":
            grant()  # keeps or mints the id and sets its cookies
        else:
            revoke()  # the id becomes the opt-out id; both id cookies are deleted
        response = make_response(page(value, customer_now()))
        response.set_cookie(CONSENT_COOKIE, value, max_age=CONSENT_MAX_AGE, samesite="Lax")
        return response

    @app.get("/images/<name>")
    def image(name: str) -> Response:
        """The embedded fake's product pictures, through the demo's own origin."""
        status, content_type, body = fake_image(fake, name)
        return Response(body, status, content_type=content_type, headers={"Cache-Control": "public, max-age=86400"})

    @app.post("/login")
    def login() -> Response:
        """The demo's login (no password): the customer is linked to the visitor's id in this response."""
        response = make_response(page(request.cookies.get(CONSENT_COOKIE), DEMO_CUSTOMER))
        # Not HttpOnly, unlike a real session: "Become a new visitor" forgets it from the page.
        response.set_cookie(CUSTOMER_COOKIE, DEMO_CUSTOMER, samesite="Lax")
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = make_response(page(request.cookies.get(CONSENT_COOKIE), None))
        response.delete_cookie(CUSTOMER_COOKIE, samesite="Lax")
        return response

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


def search_results(
    hello_retail: HelloRetailClient, key: str, form: SearchForm, fake: FakeHelloRetail | None = None
) -> str:
    """The search results' HTML; "" without a query or when Hello Retail fails."""
    if not form.query:
        return ""
    try:
        return search_html(form, hello_retail.search(key, form.query, format="json", products=form.products()), fake)
    except HelloRetailError as exc:
        logger.warning("no search results: %s", exc)
        return ""
