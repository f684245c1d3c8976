"""Two views: a page rendered from a template (recommendations and a search box), and an async JSON view."""

from __future__ import annotations

import functools
import logging
import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe

from examples.shop_page import (
    RECOMMENDATIONS_KEY,
    SEARCH_KEY,
    SearchForm,
    products_of,
    recommendation_requests,
    search_html,
)
from hr_middleware import HelloRetailError, get_tracking_user, get_tracking_user_id
from hr_middleware.client import HelloRetailClient
from hr_middleware.django import read_settings

logger = logging.getLogger(__name__)

ORIGIN_TEXT = {
    "cookie": "read from the cookie (a returning visitor)",
    "sdk_cookie": "adopted from Hello Retail's own hello_retail_id cookie",
    "minted": "minted from Hello Retail on this request (a first visit)",
    "opt_out": "the opt-out id: this visitor declined tracking",
}


@functools.cache
def hello_retail() -> HelloRetailClient:
    """One client per process (a pool of connections), with the middleware's options.

    Made on first use, so that ``manage.py check`` reports bad options instead of failing to import.
    """
    return HelloRetailClient.from_settings(read_settings())


def index(request: HttpRequest) -> HttpResponse:
    """The template reads ``{{ request.tracking_user_id }}``; the client fills the id in itself."""
    origin = get_tracking_user().origin
    text = ORIGIN_TEXT.get(str(origin), "no id: this request does not mint, or Hello Retail failed")
    form = SearchForm(request.GET, request.GET.getlist("filter"))
    try:
        answer = hello_retail().recommendations(
            recommendation_requests(os.environ.get("RECOMMENDATIONS_KEY", RECOMMENDATIONS_KEY))
        )
        products = products_of(answer)
    except HelloRetailError as exc:
        logger.warning("no recommendations: %s", exc)
        products = []
    search = ""
    if form.query:
        try:
            key = os.environ.get("SEARCH_KEY", SEARCH_KEY)
            search = search_html(form, hello_retail().search(key, form.query, format="json", products=form.products()))
        except HelloRetailError as exc:
            logger.warning("no search results: %s", exc)
    context = {
        "origin_text": text,
        "products": products,
        "query": form.query,
        "search": mark_safe(search),
    }  # search_html escapes
    return render(request, "shop/index.html", context)


async def tracking_user(request: HttpRequest) -> JsonResponse:
    """An async view sees the same id, on the request and through the contextvar."""
    return JsonResponse(
        {
            "tracking_user_id": request.tracking_user_id,  # type: ignore[attr-defined]
            "get_tracking_user_id": get_tracking_user_id(),
        }
    )
