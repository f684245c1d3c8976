"""Flask extension: ``HelloRetail(app)`` or ``HelloRetail().init_app(app)``.

Options come from ``app.config["HELLO_RETAIL_<OPTION>"]`` (for example
``HELLO_RETAIL_WEBSITE_UUID``, ``HELLO_RETAIL_API_URL``,
``HELLO_RETAIL_TIMEOUT``) and from keyword arguments, which win. The
extension wraps ``app.wsgi_app`` with :class:`hr_middleware.wsgi.TrackingUserMiddleware`,
so the id is available in views, in streamed responses, in templates
(``{{ get_tracking_user_id() }}``; Hello Retail's script with
``{{ hello_retail_script() }}``, see :mod:`hr_middleware.script`) and at
``request.environ["hello_retail.tracking_user_id"]``.

As Flask's extensions do, the config is read (and validated: a bad option
raises there) at ``init_app``, and the state is kept in
``app.extensions["hello_retail"]``. Flask's setup phase lasts until the app
serves its first request, so the ``HELLO_RETAIL_*`` keys are read once more
then, if they changed: a test fixture or a factory that sets them after
``HelloRetail(app)`` is honoured (an invalid change is logged at ERROR and
the pages are served without ids). After the first request the config is not
read again: Flask's rule is that it does not change once the app serves.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from ._core.log import FLASK_CONFIG_INVALID, logger
from ._core.settings import Settings
from ._serving import fail_open, get_tracking_user_id
from .script import TEMPLATE_GLOBAL, hello_retail_script
from .wsgi import TrackingUserMiddleware, without_ids

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

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
        app.wsgi_app = _UntilTheFirstRequest(app, middleware, self.options)  # type: ignore[method-assign]
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


def _our_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if isinstance(key, str) and key.startswith(CONFIG_PREFIX)}


class _UntilTheFirstRequest:
    """``app.wsgi_app`` until the first request: reads the ``HELLO_RETAIL_*`` config again
    if it changed since ``init_app``, then steps aside (later requests call the middleware
    itself, unless another layer wrapped this one meanwhile: then it passes them on)."""

    def __init__(self, app: Flask, middleware: TrackingUserMiddleware, options: Mapping[str, Any]) -> None:
        self._app = app
        self._middleware = middleware
        self._options = options
        self._read = _our_config(app.config)
        self._ready: WSGIApplication | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        ready = self._ready
        if ready is None:
            with self._lock:  # threaded servers: the first requests may come at once
                ready = self._ready or self._settle()
        return ready(environ, start_response)

    def _settle(self) -> WSGIApplication:
        app = self._app
        ready: WSGIApplication = self._middleware
        with fail_open:  # whatever fails here, the pages are served (by the middleware read at init_app)
            ready = self._read_again()
        if app.wsgi_app is self:
            app.wsgi_app = ready  # type: ignore[method-assign,assignment]
        self._ready = ready
        return ready

    def _read_again(self) -> WSGIApplication:
        """The middleware for the config now: the one built at init_app if it is unchanged."""
        app, middleware = self._app, self._middleware
        if _our_config(app.config) == self._read:
            return middleware
        try:
            settings = Settings.from_config(app.config, prefix=CONFIG_PREFIX, **self._options)
        except (TypeError, ValueError) as exc:
            logger.error(FLASK_CONFIG_INVALID, exc)
            return without_ids(middleware.app)
        middleware.close()  # nothing it opened is used again (it never served a request)
        rebuilt = TrackingUserMiddleware(middleware.app, settings=settings, native_request=app.request_class)
        app.extensions[EXTENSION_KEY] = rebuilt
        return rebuilt
