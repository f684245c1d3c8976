"""Which server interface an app speaks (WSGI or ASGI), told once from its signature, so that
an adapter given the other kind says so when it is built rather than failing every request."""

from __future__ import annotations

import inspect
from typing import Literal

__all__ = ["wrong_adapter"]

Interface = Literal["wsgi", "asgi"]

#: What each adapter is, and how to install the other one.
_ADAPTERS: dict[Interface, str] = {
    "wsgi": (
        "hr_middleware.wsgi.TrackingUserMiddleware (`app.wsgi_app = TrackingUserMiddleware(app.wsgi_app, ...)`; "
        "for Flask: `HelloRetail(app)` from hr_middleware.flask; for Django: "
        "'hr_middleware.django.TrackingUserMiddleware' in settings.MIDDLEWARE)"
    ),
    "asgi": (
        "hr_middleware.asgi.TrackingUserMiddleware (Starlette and FastAPI: "
        "`app.add_middleware(TrackingUserMiddleware, website_uuid=...)` after "
        "`from hr_middleware.asgi import TrackingUserMiddleware`; any other ASGI app: "
        "`app = TrackingUserMiddleware(app, website_uuid=...)`)"
    ),
}


def interface_of(app: object, *, wsgi_too: bool = True) -> Interface | None:
    """``"asgi"`` for an async callable, ``"wsgi"`` for a sync one that takes exactly two
    positional arguments (environ, start_response); None when the signature does not tell.

    Only clear evidence counts: an app this cannot read is taken as it is.
    Without *wsgi_too* only ASGI is told (the signature is not read: the WSGI
    middleware asks only that, and is built more cheaply so).
    """
    if not callable(app):
        return None
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__):
        return "asgi"  # a WSGI app returns its body's iterable: it is never a coroutine function
    if not wsgi_too:
        return None
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):  # a builtin, a C extension's callable
        return None
    try:
        signature.bind(None, None)
    except TypeError:
        return None
    try:
        signature.bind(None, None, None)
    except TypeError:
        return "wsgi"
    return None


def wrong_adapter(app: object, adapter: Interface) -> str | None:
    """Why *app* cannot be wrapped by the *adapter* middleware, naming the one it needs; None when it can."""
    spoken = interface_of(app, wsgi_too=adapter == "asgi")
    if spoken is None or spoken == adapter:
        return None
    what = "a WSGI app (it takes (environ, start_response))" if spoken == "wsgi" else "an ASGI app (it is async)"
    return (
        f"hr_middleware.{adapter}.TrackingUserMiddleware wraps {adapter.upper()} apps, and {_name(app)} is "
        f"{what}: use {_ADAPTERS[spoken]}"
    )


def _name(app: object) -> str:
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return f"{name!r}"
