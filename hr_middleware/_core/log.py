"""The one logger, and every message it logs, so that tests (ours and yours) can assert them exactly."""

from __future__ import annotations

import logging

__all__ = [
    "BAD_SIGNATURE",
    "CONFIG_INVALID",
    "CONSENT_HOOK_FAILED",
    "FLASK_CONFIG_INVALID",
    "FORGOTTEN_MIDDLEWARE",
    "INTERNAL_ERROR",
    "MINT_WHEN_FAILED",
    "MISCONFIGURED",
    "NOT_MINTED",
    "SCRIPT_CUSTOMER_IGNORED",
    "SCRIPT_NOT_RENDERED",
    "TEST_CLIENT_HINT",
    "WEBSITE_ANSWER_INVALID",
    "WEBSITE_HOOK_FAILED",
    "WEBSITE_NONE",
    "logger",
]

logger = logging.getLogger("hr_middleware")

#: The signed server cookie failed verification (INFO); the cookie is treated as absent.
BAD_SIGNATURE = "server cookie %s has no valid signature; treated as absent"
#: The ``consent`` option raised (ERROR, with the traceback); consent counts as unknown.
CONSENT_HOOK_FAILED = "consent hook raised; treating consent as unknown"
#: The ``mint_when`` option raised (ERROR, with the traceback); the request does not mint.
MINT_WHEN_FAILED = "mint_when raised; not minting for this request"
#: A request without an id that does not mint (DEBUG): its method, path and the reason in words,
#: then :data:`TEST_CLIENT_HINT` when the default rule said no (else "").
NOT_MINTED = "no id minted for %s %r: %s%s"
#: What a test that expected a mint should send.
TEST_CLIENT_HINT = "; a test client sends no browser headers: pass hr_middleware.testing.BROWSER_HEADERS"
#: The middleware itself failed (ERROR, with the traceback); the request goes on without it.
INTERNAL_ERROR = "hr_middleware failed on this request; serving it without a tracking id"
#: Requests reached an ASGI middleware whose options are invalid (ERROR, once).
MISCONFIGURED = "%s; serving requests without tracking ids"
#: Django's ``HELLO_RETAIL`` became invalid while the site runs (ERROR, once per change).
CONFIG_INVALID = "settings.HELLO_RETAIL is invalid (%s); serving requests without tracking ids"
#: ``hello_retail_script()`` rendered a comment instead of the script (WARNING, once per reason;
#: DEBUG in a request of no website).
SCRIPT_NOT_RENDERED = "hello_retail_script() rendered no script: %s"
#: ``hello_retail_script(customer_id=...)`` got neither a string nor an integer (WARNING, once per type).
SCRIPT_CUSTOMER_IGNORED = "hello_retail_script(): customer_id must be a string or an integer, got %s; no setCustomerId"
#: A request with no Hello Retail website (DEBUG): the ``websites`` option names none for it; no mint.
WEBSITE_NONE = "no Hello Retail website for this request (%s); not minting"
#: The ``websites`` callable raised (ERROR, with the traceback); no website, no mint.
WEBSITE_HOOK_FAILED = "websites callable raised; no Hello Retail website for this request, not minting"
#: The ``websites`` callable answered something that is not a website UUID (ERROR); no website, no mint.
WEBSITE_ANSWER_INVALID = "websites callable answered %s, not a website UUID; not minting for this request"
#: Flask's ``HELLO_RETAIL_*`` config changed after ``HelloRetail(app)`` and is invalid (ERROR, once).
FLASK_CONFIG_INVALID = (
    "app.config's HELLO_RETAIL_* changed after HelloRetail(app) and is invalid (%s); "
    "serving requests without tracking ids"
)
#: The id was asked for in a request no middleware of ours served (WARNING, once per app): what,
#: what came of it (``it is None`` for the id), the line to add.
FORGOTTEN_MIDDLEWARE = "%s that no hr-middleware middleware served, so %s: add %s"
