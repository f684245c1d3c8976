"""Pages rendering ``{% hello_retail_script %}`` for tests/test_script.py: ``/``, ``csp``, ``grant``, ``revoke``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from hr_middleware.consent import grant, revoke

PAGE = (
    "{% load hello_retail %}<html><head>{% hello_retail_script customer_id=customer nonce=nonce %}</head>"
    "<body></body></html>"
)


def page(request: HttpRequest) -> HttpResponse:
    template = engines["django"].from_string(PAGE)
    context = {"customer": request.GET.get("customer"), "nonce": request.GET.get("nonce")}
    return HttpResponse(template.render(context, request))


def with_csp_nonce(request: HttpRequest) -> HttpResponse:
    """As with Django 6's ``csp`` context processor: ``csp_nonce`` in the context."""
    template = engines["django"].from_string("{% load hello_retail %}{% hello_retail_script %}")
    return HttpResponse(template.render({"csp_nonce": "n0nce"}, request))


@csrf_exempt
def granting(request: HttpRequest) -> HttpResponse:
    grant()
    return page(request)


@csrf_exempt
def revoking(request: HttpRequest) -> HttpResponse:
    revoke()
    return page(request)


urlpatterns = [path("", page), path("csp", with_csp_nonce), path("grant", granting), path("revoke", revoking)]
