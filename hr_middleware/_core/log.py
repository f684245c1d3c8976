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
    "logger",
]

logger = logging.getLogger("hr_middleware")

#: The signed server cookie failed verification (INFO); the cookie is treated as absent.
BAD_SIGNATURE = "server cookie %s has no valid signature; treated as absent"
#: The ``consent`` option raised (ERROR, with the traceback); consent counts as unknown.
CONSENT_HOOK_FAILED = "consent hook raised; treating consent as unknown"
#: The ``mint_when`` option raised (ERROR, with the traceback); the request does not mint.
MINT_WHEN_FAILED = "mint_when raised; not minting for this request"
#: The middleware itself failed (ERROR, with the traceback); the request goes on without it.
INTERNAL_ERROR = "hr_middleware failed on this request; serving it without a tracking id"
#: Requests reached an ASGI middleware whose options are invalid (ERROR, once).
MISCONFIGURED = "%s; serving requests without tracking ids"
#: Django's ``HELLO_RETAIL`` became invalid while the site runs (ERROR, once per change).
CONFIG_INVALID = "settings.HELLO_RETAIL is invalid (%s); serving requests without tracking ids"
#: Flask's ``HELLO_RETAIL_*`` config changed after ``HelloRetail(app)`` and is invalid (ERROR, once).
FLASK_CONFIG_INVALID = (
    "app.config's HELLO_RETAIL_* changed after HelloRetail(app) and is invalid (%s); "
    "serving requests without tracking ids"
)
#: The id was asked for in a request no middleware of ours served (WARNING, once per app): what, the line to add.
FORGOTTEN_MIDDLEWARE = "%s that no hr-middleware middleware served, so it is None: add %s"
