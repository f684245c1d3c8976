"""``{% load hello_retail %}{% hello_retail_script %}``: Hello Retail's script for the current request.

Works when ``"hr_middleware"`` is in ``INSTALLED_APPS`` (Django finds the
library in the app's ``templatetags``). Arguments as for
:func:`hr_middleware.script.hello_retail_script`::

    {% hello_retail_script nonce=request.csp_nonce customer_id=user.pk %}

Without ``nonce``, the template context's ``csp_nonce`` is used when there is
one (Django 6's ``csp`` context processor puts it there).
"""

from __future__ import annotations

from typing import Any

from django import template
from markupsafe import Markup

from hr_middleware.script import TEMPLATE_GLOBAL
from hr_middleware.script import hello_retail_script as render

register = template.Library()


@register.simple_tag(takes_context=True, name=TEMPLATE_GLOBAL)
def hello_retail_script(
    context: template.Context, nonce: Any = None, customer_id: Any = None, src: str | None = None
) -> Markup:
    """Hello Retail's script and its ``hrq`` init for the request being rendered (safe HTML)."""
    if nonce is None:
        nonce = context.get("csp_nonce")
    return render(nonce=None if nonce is None else str(nonce), customer_id=customer_id, src=src)
