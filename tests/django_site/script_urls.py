"""Pages that render ``{% hello_retail_script %}`` (tests/test_script.py): GET ``/``, POST ``grant``, ``revoke``."""

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


@csrf_exempt
def granting(request: HttpRequest) -> HttpResponse:
    grant()
    return page(request)


@csrf_exempt
def revoking(request: HttpRequest) -> HttpResponse:
    revoke()
    return page(request)


urlpatterns = [path("", page), path("grant", granting), path("revoke", revoking)]
