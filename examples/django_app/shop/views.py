"""The shop's views: the shared demo page (recommendations, search, consent, two regions, a login that
links the customer) and an async JSON view."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views.decorators.http import require_POST

from examples.shop_page import (
    CONSENT_COOKIE,
    CONSENT_MAX_AGE,
    CUSTOMER_COOKIE,
    DEMO_CUSTOMER,
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
from hr_middleware import HelloRetailError, get_tracking_user, get_tracking_user_id, get_website_uuid
from hr_middleware.client import HelloRetailClient
from hr_middleware.consent import grant, revoke
from hr_middleware.customers import link_customer
from hr_middleware.django import read_settings
from hr_middleware.script import hello_retail_script

logger = logging.getLogger(__name__)


@functools.cache
def hello_retail() -> HelloRetailClient:
    """One client per process (a pool of connections), with the middleware's options.

    Made on first use, so that ``manage.py check`` reports bad options instead of failing to import.
    """
    return HelloRetailClient.from_settings(read_settings())


def page(request: HttpRequest, consent: str | None, customer: str | None) -> HttpResponse:
    """The shared demo page; the client fills in the visitor's id (``request.tracking_user_id``) itself."""
    form = SearchForm(request.GET, request.GET.getlist("filter"))
    # On every page of a logged-in customer: Hello Retail hears of each visitor and customer
    # once (a cookie remembers the link), and the script below is told setCustomerId. A shop
    # with django.contrib.auth links in a user_logged_in receiver instead (docs/customers.md).
    link = link_customer(customer) if customer is not None else None
    websites = settings.HELLO_RETAIL.get("WEBSITES")
    return HttpResponse(
        render_page(
            get_tracking_user(),
            "Django",
            recommended_for_you(os.environ.get("RECOMMENDATIONS_KEY", RECOMMENDATIONS_KEY)),
            query=form.query,
            search=search_results(os.environ.get("SEARCH_KEY", SEARCH_KEY), form),
            fake=demo_fake(),
            consent=consent,
            script=hello_retail_script(),  # early in <head>: the consent decision reaches the script first
            host=request.get_host(),
            website_uuid=get_website_uuid(),
            websites=websites if isinstance(websites, Mapping) else None,
            customer=customer,
            link=link,
        )
    )


def demo_fake() -> Any:
    """The embedded fake Hello Retail (settings.DEMO_FAKE_HELLO_RETAIL), or None for the real one."""
    return getattr(settings, "DEMO_FAKE_HELLO_RETAIL", None)


def image(request: HttpRequest, name: str) -> HttpResponse:
    """The embedded fake's product pictures, through the demo's own origin."""
    status, content_type, body = fake_image(demo_fake(), name)
    response = HttpResponse(body, status=status, content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    return response


def customer_now(request: HttpRequest) -> str | None:
    """The customer the demo's login cookie names, if any."""
    return logged_in_customer(request.COOKIES.get(CUSTOMER_COOKIE))


def index(request: HttpRequest) -> HttpResponse:
    """The shop's front page."""
    return page(request, request.COOKIES.get(CONSENT_COOKIE), customer_now(request))


@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    """The consent banner's answer: act on it in this response, and show the page as it now is."""
    value = consent_value(request.POST.get("answer"))
    if value is None:
        return HttpResponseRedirect("/", status=303)
    if value == "yes":
        grant()  # keeps or mints the id and sets its cookies
    else:
        revoke()  # the id becomes the opt-out id; both id cookies are deleted
    response = page(request, value, customer_now(request))
    response.set_cookie(CONSENT_COOKIE, value, max_age=CONSENT_MAX_AGE, samesite="Lax")
    return response


@require_POST
def login(request: HttpRequest) -> HttpResponse:
    """The demo's login (no password): the customer is linked to the visitor's id in this response."""
    response = page(request, request.COOKIES.get(CONSENT_COOKIE), DEMO_CUSTOMER)
    # Not HttpOnly, unlike a real session: "Become a new visitor" forgets it from the page.
    response.set_cookie(CUSTOMER_COOKIE, DEMO_CUSTOMER, samesite="Lax")
    return response


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """The demo's logout: the page without the customer."""
    response = page(request, request.COOKIES.get(CONSENT_COOKIE), None)
    response.delete_cookie(CUSTOMER_COOKIE, samesite="Lax")
    return response


def recommended_for_you(key: str) -> list[Mapping[str, Any]]:
    """The visitor's recommended products; [] when Hello Retail fails, so the page renders without them."""
    try:
        return products_of(hello_retail().recommendations(recommendation_requests(key)))
    except HelloRetailError as exc:
        logger.warning("no recommendations: %s", exc)
        return []


def search_results(key: str, form: SearchForm) -> str:
    """The search results' HTML; "" without a query or when Hello Retail fails."""
    if not form.query:
        return ""
    try:
        answer = hello_retail().search(key, form.query, format="json", products=form.products())
        return search_html(form, answer, demo_fake())
    except HelloRetailError as exc:
        logger.warning("no search results: %s", exc)
        return ""


async def tracking_user(request: HttpRequest) -> JsonResponse:
    """An async view sees the same id, on the request and through the contextvar."""
    return JsonResponse(
        {
            "tracking_user_id": request.tracking_user_id,  # type: ignore[attr-defined]
            "get_tracking_user_id": get_tracking_user_id(),
        }
    )
