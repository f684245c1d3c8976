"""Hello Retail's script on the page, rendered for the current request: website, consent, customer.

Put it early in ``<head>`` of every page::

    {{ hello_retail_script() }}                          Flask: HelloRetail(app) registers it
    {{ hello_retail_script() }}                          Starlette/FastAPI: after install(templates)
    {% load hello_retail %}{% hello_retail_script %}     Django: "hr_middleware" in INSTALLED_APPS

or call :func:`hello_retail_script` anywhere else. It renders the ``hrq``
queue with the init (the request's website UUID, and ``setTrackingOptOut:
true`` when the visitor declined, so the script is told before it can
track), ``setTrackingOptOut false`` when consent is given (lifting an opt-out
the script may hold from an earlier page), ``setCustomerId`` when the shop
names the customer, and then Hello Retail's async script. docs/script.md has
the whole story.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from markupsafe import Markup

from . import _serving
from ._boundary import fail_open
from ._core.log import SCRIPT_CUSTOMER_IGNORED, SCRIPT_NOT_RENDERED, logger
from ._core.script import ScriptTracking, hrq_commands, script_comment, script_html, script_tracking
from ._core.visit import NoIdReason

__all__ = ["TEMPLATE_GLOBAL", "hello_retail_script", "install"]

#: The name of the template function, in Jinja's globals and as the Django tag.
TEMPLATE_GLOBAL = "hello_retail_script"

#: What :func:`install` is given and returns: a ``Jinja2Templates`` or a ``jinja2.Environment``.
_Templates = TypeVar("_Templates")

#: The reasons already logged: each once per process (a page renders it on every view).
_logged: set[tuple[str, str]] = set()


def hello_retail_script(
    *, nonce: str | None = None, customer_id: str | int | None = None, src: str | None = None
) -> Markup:
    """Hello Retail's script and its ``hrq`` init for the current request, as safe HTML.

    *nonce* is your Content-Security-Policy nonce for this response (put on
    both ``<script>`` tags); *customer_id* names the logged-in customer to the
    script (``setCustomerId``; never for a visitor who declined tracking;
    default: the customer ``link_customer()`` named in this request, if any);
    *src* overrides the ``script_url`` option. Every value is escaped for
    where it goes: JSON inside ``<script>`` with ``<``, ``>``, ``&``, ``'``,
    U+2028 and U+2029 as ``\\uXXXX``, attributes HTML-escaped.

    Outside a request that the middleware serves (or one it could not serve)
    it renders an HTML comment saying why, and logs the reason once at WARNING;
    in a request of no website (the ``websites`` option), the same comment,
    logged once at DEBUG. Never raises.
    """
    visit = _serving.current()
    if visit is None:
        _serving.unserved("hello_retail_script() was rendered", "it rendered no script")
        return _not_rendered(NoIdReason.OUTSIDE_REQUEST.explanation)
    engine = visit.engine
    if engine is not None:
        with fail_open:
            settings = engine.settings
            tracking = script_tracking(visit.origin, visit.consent_now, engine.policy.consent(visit.request))
            # Not named here: the customer that link_customer() named in this request, if any.
            customer = _customer(visit.customer_id if customer_id is None else customer_id)
            if tracking is not ScriptTracking.NOT_ASKED or customer is not None:
                # What the page says now depends on the visitor: no shared cache may store it.
                visit.read_id()
            website_uuid = visit.website_uuid  # the request's website (docs/websites.md)
            if website_uuid is None:
                # The shop's own choice ("*": None, a callable's None), logged at DEBUG as the
                # request's missing mint is; a bad answer of the callable was logged at ERROR.
                return _not_rendered(NoIdReason.NO_WEBSITE.explanation, logging.DEBUG)
            commands = hrq_commands(website_uuid, tracking, customer)
            source = settings.script_url if src is None else str(src)
            return Markup(script_html(commands, src=source, nonce=None if nonce is None else str(nonce)))
    return _not_rendered(NoIdReason.INTERNAL_ERROR.explanation)


def install(templates: _Templates) -> _Templates:
    """Make ``{{ hello_retail_script() }}`` available to *templates*: Starlette's (FastAPI's)
    ``Jinja2Templates``, or any ``jinja2.Environment``. Returns *templates*.

    The same as ``templates.env.globals["hello_retail_script"] = hello_retail_script``.
    """
    environment: Any = getattr(templates, "env", templates)
    environment.globals[TEMPLATE_GLOBAL] = hello_retail_script
    return templates


def _customer(customer_id: object) -> str | None:
    """The customer's id as the script takes it (a string), or None; a value of another type is logged and left out."""
    if customer_id is None or customer_id == "":
        return None
    if isinstance(customer_id, str):
        return customer_id
    if isinstance(customer_id, int) and not isinstance(customer_id, bool):
        return str(customer_id)
    _log_once(SCRIPT_CUSTOMER_IGNORED, type(customer_id).__name__)
    return None


def _not_rendered(why: str, level: int = logging.WARNING) -> Markup:
    _log_once(SCRIPT_NOT_RENDERED, why, level)
    return Markup(script_comment(why))


def _log_once(message: str, why: str, level: int = logging.WARNING) -> None:
    if (message, why) not in _logged:
        _logged.add((message, why))
        logger.log(level, message, why)
