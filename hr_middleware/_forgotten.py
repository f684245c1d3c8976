"""A forgotten middleware: the id asked for in a request that no middleware of ours served.

Asked only when there is no current visit (never on the path of a request we
serve), and only where a framework lets us tell that a request is being served
all the same: a FastAPI dependency, Flask's request context, Django's request
handler on the stack. Said once (per app; for Django, per ``MIDDLEWARE``), at
WARNING, with the line to add.
"""

from __future__ import annotations

import sys
import threading
import weakref
from types import CodeType, FrameType
from typing import Any

from ._core.log import FORGOTTEN_MIDDLEWARE, logger

__all__ = ["FASTAPI_LINE", "say_once", "unserved_request"]

#: What a FastAPI app without the ASGI middleware should add.
FASTAPI_LINE = (
    "`app.add_middleware(TrackingUserMiddleware, website_uuid=...)` "
    "(`from hr_middleware.asgi import TrackingUserMiddleware`)"
)
_FLASK_LINE = "`HelloRetail(app)` (`from hr_middleware.flask import HelloRetail`)"

_said: weakref.WeakSet[Any] = weakref.WeakSet()
_said_for_django: set[tuple[str, ...]] = set()
_lock = threading.Lock()


def say_once(key: Any, what: str, line: str, outcome: str = "it is None") -> None:
    """Log :data:`~hr_middleware._core.log.FORGOTTEN_MIDDLEWARE` once per *key* (an app;
    None or an object that cannot be weakly referred to: once for all such). Never raises."""
    try:
        with _lock:
            if key in _said:
                return
            _said.add(key)
    except TypeError:  # not weakly referable
        key = say_once
        with _lock:
            if key in _said:
                return
            _said.add(key)
    logger.warning(FORGOTTEN_MIDDLEWARE, what, outcome, line)


def unserved_request(what: str = "get_tracking_user_id() was called", outcome: str = "it is None") -> None:
    """No visit is current: if a Flask or Django request is being served all the same, say so once.

    *what* the app did (``link_customer() was called``) and *outcome*, what came
    of it, go into the line. Cheap when neither framework is loaded (two dict
    lookups): a bare app that reads the id without any middleware pays about
    that per read.
    """
    modules = sys.modules
    flask = modules.get("flask")
    if flask is not None and flask.has_request_context():
        app = flask.current_app._get_current_object()
        if "hello_retail" not in app.extensions:
            say_once(app, f"{what} in a Flask request", _FLASK_LINE, outcome)
        return
    if "django.core.handlers.base" in modules and _in_a_django_request():
        _django_without_middleware(what, outcome)


#: The code of Django's request entry points (sync and async), found once.
_django_entries: tuple[CodeType, ...] = ()


def _in_a_django_request() -> bool:
    """Is Django's handler on the stack (a sync view, or an async one on the handler's own loop)?"""
    global _django_entries  # noqa: PLW0603 - found once, then read
    if not _django_entries:
        from django.core.handlers.base import BaseHandler

        _django_entries = (BaseHandler.get_response.__code__, BaseHandler.get_response_async.__code__)
    entries = _django_entries
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        if frame.f_code in entries:
            return True
        frame = frame.f_back
    return False


def _django_without_middleware(what: str, outcome: str) -> None:
    from django.conf import settings

    from .django._checks import MIDDLEWARE_PATH, middleware_installed

    if middleware_installed():
        return  # ours is installed: this request did not reach it (a middleware before ours answered)
    key = tuple(getattr(settings, "MIDDLEWARE", None) or ())
    with _lock:
        if key in _said_for_django:
            return
        _said_for_django.add(key)
    logger.warning(
        FORGOTTEN_MIDDLEWARE, f"{what} in a Django request", outcome, f"{MIDDLEWARE_PATH!r} to settings.MIDDLEWARE"
    )
