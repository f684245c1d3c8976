"""Flask extension: ``HelloRetail(app)`` or ``HelloRetail().init_app(app)``.

Options come from ``app.config["HELLO_RETAIL_<OPTION>"]`` (for example
``HELLO_RETAIL_WEBSITE_UUID``, ``HELLO_RETAIL_API_URL``,
``HELLO_RETAIL_TIMEOUT``) and from keyword arguments, which win. The
extension wraps ``app.wsgi_app`` with :class:`hr_middleware.wsgi.TrackingUserMiddleware`,
so the id is available in views, in streamed responses, in templates
(``{{ get_tracking_user_id() }}``; Hello Retail's script with
``{{ hello_retail_script() }}``, see :mod:`hr_middleware.script`) and at
``request.environ["hello_retail.tracking_user_id"]``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from ._core.settings import Settings
from ._serving import get_tracking_user_id
from .script import TEMPLATE_GLOBAL, hello_retail_script
from .wsgi import TrackingUserMiddleware

__all__ = ["HelloRetail"]

CONFIG_PREFIX = "HELLO_RETAIL_"
#: Where the middleware is kept in ``app.extensions``.
EXTENSION_KEY = "hello_retail"


class HelloRetail:
    """The Flask extension. ``HelloRetail(app)``, or ``ext = HelloRetail()`` then
    ``ext.init_app(app)`` in an application factory.

    Keyword arguments are options of :class:`~hr_middleware.Settings` and win
    over ``app.config``.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:
        self.options = options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read the app's config, validate it, and install the middleware on *app*."""
        settings = Settings.from_config(app.config, prefix=CONFIG_PREFIX, **self.options)
        middleware = TrackingUserMiddleware(app.wsgi_app, settings=settings, native_request=app.request_class)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions[EXTENSION_KEY] = middleware
        app.jinja_env.globals.setdefault("get_tracking_user_id", get_tracking_user_id)
        app.jinja_env.globals.setdefault(TEMPLATE_GLOBAL, hello_retail_script)

    @staticmethod
    def middleware(app: Flask | None = None) -> TrackingUserMiddleware:
        """The middleware installed on *app* (default: the current app)."""
        target = app if app is not None else current_app
        try:
            return target.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]
        except KeyError:
            raise RuntimeError("HelloRetail is not initialised on this Flask app") from None

    @classmethod
    def settings(cls, app: Flask | None = None) -> Settings:
        """The validated settings of *app* (default: the current app)."""
        return cls.middleware(app).settings
