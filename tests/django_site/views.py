"""The driver endpoints (see tests/drivers.py) as Django views, sync and async, plus streaming and a template."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_page

import hr_middleware
from hr_middleware import consent, customers
from tests.drivers import awebsite_seen, header_query, linked, seen_now, website_seen


def index(request: HttpRequest) -> HttpResponse:
    return JsonResponse(seen_now(request.tracking_user_id))  # type: ignore[attr-defined]


def silent(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"silent", content_type="text/plain")


def with_headers(request: HttpRequest) -> HttpResponse:
    return _headers_from_query(request, JsonResponse(seen_now(request.tracking_user_id)))  # type: ignore[attr-defined]


def silent_with_headers(request: HttpRequest) -> HttpResponse:
    return _headers_from_query(request, HttpResponse(b"silent", content_type="text/plain"))


def _headers_from_query(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    for key, value in header_query(request.GET):
        if key == "Set-Cookie" and request.GET.get("set_cookie_as") != "header":
            # The Django way: through response.cookies.
            name, _, rest = value.partition("=")
            response.set_cookie(name, rest.partition(";")[0])
        else:
            response.headers[key] = value
    return response


class _CookielessResponse(HttpResponse):
    """An app's response that refuses cookies (say, one meant for a cookieless CDN domain)."""

    def set_cookie(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("this response carries no cookies")


def cookieless(request: HttpRequest) -> HttpResponse:
    response = _CookielessResponse(b"cookieless", content_type="text/plain")
    response.headers["Cache-Control"] = "public, max-age=600"
    response.headers["CDN-Cache-Control"] = "max-age=600"
    return response


def website(request: HttpRequest) -> HttpResponse:
    return JsonResponse(website_seen(request.GET))


async def awebsite(request: HttpRequest) -> HttpResponse:
    return JsonResponse(await awebsite_seen(request.GET))


def grant(request: HttpRequest) -> HttpResponse:
    consent.grant()
    return index(request)


def revoke(request: HttpRequest) -> HttpResponse:
    consent.revoke()
    return index(request)


def visitor(request: HttpRequest) -> HttpResponse:
    """The visitor's id, read the way any Python code reads it (no Django middleware of ours needed)."""
    return JsonResponse({"id": hr_middleware.get_tracking_user_id()})


def shop_visitor(request: HttpRequest) -> HttpResponse:
    """The id the shop's middleware read before the view (this view does not read it)."""
    return JsonResponse({"id": request.shop_visitor})  # type: ignore[attr-defined]


def stamped(request: HttpRequest) -> HttpResponse:
    """A page with a hole for the visitor's id, filled by the shop's ``StampingMiddleware``."""
    return HttpResponse(b'{"id": "HR-VISITOR"}', content_type="application/json")


#: ``/cached``: the index page under ``@cache_page``; ``/cached-silent`` does not read the id.
cached = cache_page(60)(index)
cached_silent = cache_page(60)(silent)
cached_visitor = cache_page(60)(visitor)
cached_shop_visitor = cache_page(60)(shop_visitor)


def error(request: HttpRequest) -> HttpResponse:
    hr_middleware.get_tracking_user_id()
    raise RuntimeError("the shop's bug")


async def aerror(request: HttpRequest) -> HttpResponse:
    return error(request)


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[str]:
        for _ in range(2):
            yield f"{hr_middleware.get_tracking_user_id()}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def aindex(request: HttpRequest) -> HttpResponse:
    return index(request)


async def avisitor(request: HttpRequest) -> HttpResponse:
    return visitor(request)


async def asilent(request: HttpRequest) -> HttpResponse:
    return silent(request)


async def awith_headers(request: HttpRequest) -> HttpResponse:
    return with_headers(request)


async def asilent_with_headers(request: HttpRequest) -> HttpResponse:
    return silent_with_headers(request)


async def agrant(request: HttpRequest) -> HttpResponse:
    await consent.agrant()
    return index(request)


async def arevoke(request: HttpRequest) -> HttpResponse:
    consent.revoke()
    return index(request)


async def astream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[str]:
        for _ in range(2):
            yield f"{hr_middleware.get_tracking_user_id()}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def login(request: HttpRequest) -> HttpResponse:
    outcome = customers.link_customer(request.GET["customer"])
    return JsonResponse(linked(outcome, request.tracking_user_id))  # type: ignore[attr-defined]


async def alogin(request: HttpRequest) -> HttpResponse:
    outcome = await customers.alink_customer(request.GET["customer"])
    return JsonResponse(linked(outcome, request.tracking_user_id))  # type: ignore[attr-defined]
