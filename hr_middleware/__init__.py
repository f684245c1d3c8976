"""hr-middleware: one stable Hello Retail trackingUserId per visitor, on the server.

Add the middleware for your framework (:mod:`hr_middleware.flask`,
:mod:`hr_middleware.django`, :mod:`hr_middleware.asgi` for Starlette and
FastAPI, :mod:`hr_middleware.wsgi`), then call :func:`get_tracking_user_id`
wherever the request is served. :mod:`hr_middleware.client` calls Hello Retail
with that id; :mod:`hr_middleware.consent` reads consent banners and acts on
consent changes; :mod:`hr_middleware.testing` is a fake Hello Retail for tests.
"""

from __future__ import annotations

from ._core.facts import RequestFacts, is_bot, is_page_navigation
from ._core.ids import OPT_OUT_ID, is_valid_id
from ._core.settings import Settings
from ._core.visit import NoIdReason, Origin
from ._hello_retail.errors import APIError, HelloRetailError, InvalidResponseError, RequestTimeoutError, TransportError
from ._serving import TrackingUser, get_tracking_user, get_tracking_user_id, get_website_uuid

__version__ = "0.1.0"

__all__ = [
    "OPT_OUT_ID",
    "APIError",
    "HelloRetailError",
    "InvalidResponseError",
    "NoIdReason",
    "Origin",
    "RequestFacts",
    "RequestTimeoutError",
    "Settings",
    "TrackingUser",
    "TransportError",
    "get_tracking_user",
    "get_tracking_user_id",
    "get_website_uuid",
    "is_bot",
    "is_page_navigation",
    "is_valid_id",
]
