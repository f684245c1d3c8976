"""Two views: a page rendered from a template, and an async JSON view."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from hr_middleware import get_tracking_user, get_tracking_user_id

ORIGIN_TEXT = {
    "cookie": "read from the cookie (a returning visitor)",
    "sdk_cookie": "adopted from Hello Retail's own hello_retail_id cookie",
    "minted": "minted from Hello Retail on this request (a first visit)",
    "opt_out": "the opt-out id: this visitor declined tracking",
}


def index(request: HttpRequest) -> HttpResponse:
    """The template reads ``{{ request.tracking_user_id }}``."""
    origin = get_tracking_user().origin
    text = ORIGIN_TEXT.get(str(origin), "no id: this request does not mint, or Hello Retail failed")
    return render(request, "shop/index.html", {"origin_text": text})


async def tracking_user(request: HttpRequest) -> JsonResponse:
    """An async view sees the same id, on the request and through the contextvar."""
    return JsonResponse(
        {
            "tracking_user_id": request.tracking_user_id,  # type: ignore[attr-defined]
            "get_tracking_user_id": get_tracking_user_id(),
        }
    )
