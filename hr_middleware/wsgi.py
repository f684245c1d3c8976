"""WSGI middleware: one stable Hello Retail trackingUserId per visitor, for any PEP 3333 app.

Usage::

    from hr_middleware.wsgi import TrackingUserMiddleware

    app = TrackingUserMiddleware(app, website_uuid="...")

The id is returned by :func:`hr_middleware.get_tracking_user_id` while the request
is served, including while each chunk of its response iterable is produced (on
whichever thread the server consumes it) and while it is closed; never after
``__call__`` returns, even under a server that never calls ``close()``. Reading
it there keeps the response out of shared caches. The id is also at
``environ["hello_retail.tracking_user_id"]`` for code outside the request's
context; reading it there is not seen, so a page must not be built from it. See
the README for every option and for what happens when Hello Retail fails (the
page is served).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from werkzeug.datastructures import EnvironHeaders

from ._core.facts import RequestFacts
from ._core.headers import patch_headers
from ._core.interfaces import wrong_adapter
from ._core.returning import environ_reader
from ._core.settings import Settings
from ._hello_retail.mint import Minter
from ._hello_retail.prefetch import PrefetchingMinter, make_minter
from ._serving import VISIT_KEY, ChunksInVisit, Engine, Visit, app_in_visit, in_visit, patched

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ENVIRON_KEY", "TrackingUserMiddleware"]

#: Where the id (or None) is put in the WSGI environ.
ENVIRON_KEY = "hello_retail.tracking_user_id"


class WSGIRequestFacts(RequestFacts):
    """:class:`RequestFacts` of a WSGI environ (its headers through werkzeug's ``EnvironHeaders``)."""

    __slots__ = ("environ", "_make_native", "_native")

    def __init__(self, environ: WSGIEnvironment, make_native: Callable[[WSGIEnvironment], Any] | None = None) -> None:
        super().__init__(environ.get("HTTP_COOKIE", ""))
        self.environ = environ
        self._make_native = make_native
        self._native: Any = None

    @property
    def method(self) -> str:
        return self.environ.get("REQUEST_METHOD", "GET")  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        return self.environ.get("SCRIPT_NAME", "") + self.environ.get("PATH_INFO", "")  # type: ignore[no-any-return]

    @property
    def scheme(self) -> str:
        return self.environ.get("wsgi.url_scheme", "http")  # type: ignore[no-any-return]

    @property
    def host(self) -> str:
        # PEP 3333: HTTP_HOST when the client sent one, else SERVER_NAME.
        return self.environ.get("HTTP_HOST") or self.environ.get("SERVER_NAME", "")  # type: ignore[no-any-return]

    @property
    def headers(self) -> Mapping[str, str]:
        return EnvironHeaders(self.environ)  # type: ignore[return-value]

    @property
    def native(self) -> Any:
        if self._make_native is None:
            return self.environ
        if self._native is None:
            self._native = self._make_native(self.environ)
        return self._native


class TrackingUserMiddleware:
    """WSGI middleware that gives every visitor one stable Hello Retail trackingUserId.

    Args:
        app: the WSGI application to wrap.
        settings: a ready :class:`~hr_middleware.Settings` (or a dict of its
            options); or pass its options as keyword arguments
            (``website_uuid`` is required).
        native_request: builds the framework's request object from the environ
            for hooks (``RequestFacts.native``); default: the environ itself.
        minter: what mints (for tests); default: one of its own (a pooled
            requests session), prefetching when the ``prefetch`` option says so.
        **options: the options of :class:`~hr_middleware.Settings`.

    Raises:
        TypeError: an unknown option (with the one meant), or *app* is an ASGI
            app (naming the middleware it needs; given to Starlette's or
            FastAPI's ``add_middleware``, it refuses the lifespan start-up instead).
        ValueError: an option's value.
    """

    def __new__(cls, app: WSGIApplication, **options: Any) -> TrackingUserMiddleware:
        wrong = wrong_adapter(app, "wsgi")
        if wrong is None:
            return super().__new__(cls)
        # An ASGI app: given to Starlette's or FastAPI's add_middleware, this is built in
        # the lifespan start-up, which is refused (requests still served, without ids).
        from .asgi import refused

        return cast(TrackingUserMiddleware, refused(app, TypeError(wrong)))  # type: ignore[arg-type]

    def __init__(
        self,
        app: WSGIApplication,
        *,
        settings: Settings | Mapping[str, Any] | None = None,
        native_request: Callable[[WSGIEnvironment], Any] | None = None,
        minter: Minter | PrefetchingMinter | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.settings = Settings.merge(settings, options)
        self._minter = minter or make_minter(self.settings)
        native = native_request

        def make_facts(environ: WSGIEnvironment) -> WSGIRequestFacts:
            return WSGIRequestFacts(environ, native)

        self._engine: Engine[WSGIEnvironment, _WSGIVisit] = Engine(
            self.settings, make_facts, returning=environ_reader, minter=self._minter, visit=_WSGIVisit
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if VISIT_KEY in environ:
            # Another instance outside this one has decided already: one visit, one mint.
            return self.app(environ, start_response)
        visit = self._engine.serve(environ)
        environ[ENVIRON_KEY] = visit.tracking_user_id
        if visit.engine is not None:  # a visit this middleware could not serve is not decided
            environ[VISIT_KEY] = True
        visit.downstream = start_response
        # Left current when the call returns: a server may never call close() (uvicorn's
        # --interface wsgi), and its thread would carry this visitor into the next request.
        result = app_in_visit(visit, self.app, environ, visit.start_response)
        if type(result) is list or type(result) is tuple or _is_file_wrapper(result, environ):
            return result  # consuming these runs no app code
        return _ResponseInVisit(result, visit)

    def close(self) -> None:
        """Stop the prefetch thread (if any) and close the connections to Hello Retail."""
        self._engine.close()


def without_ids(app: WSGIApplication) -> WSGIApplication:
    """*app* served as by a middleware that could not serve it: no id anywhere (the
    environ key is None; ``get_tracking_user().reason`` is ``INTERNAL_ERROR``), nothing set."""

    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ[ENVIRON_KEY] = None
        return app_in_visit(Visit.failed(environ), app, environ, start_response)

    return serve


class _WSGIVisit(Visit):
    """A visit served over WSGI; its ``start_response`` is the app's: the server's,
    with the visit's headers added when there are any."""

    downstream: StartResponse

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        """Start the response, with the visit's Set-Cookie and caching headers."""
        if self.cookies or self.accessed:
            headers = patched(self, headers, patch_headers)
        return self.downstream(status, headers, exc_info)


def _is_file_wrapper(result: object, environ: WSGIEnvironment) -> bool:
    # PEP 3333 only promises a callable: uWSGI's is a function, not a class.
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(result, wrapper)


class _ResponseInVisit(ChunksInVisit[bytes]):
    """The app's response iterable: each chunk, and ``close()``, with the visit current
    (on whichever thread the server iterates or closes it), and left after."""

    __slots__ = ()

    def close(self) -> None:
        close = getattr(self._content, "close", None)
        if close is not None:
            in_visit(self._visit, close)
