"""WSGI middleware: one stable Hello Retail trackingUserId per visitor, for any PEP 3333 app.

Usage::

    from hr_middleware.wsgi import TrackingUserMiddleware

    app = TrackingUserMiddleware(app, website_uuid="...")

The id is at ``environ["hello_retail.tracking_user_id"]`` and
:func:`hr_middleware.get_tracking_user_id` while the request is served,
including while its response iterable is consumed. See the README for every
option and for what happens when Hello Retail fails (the page is served).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import Token
from typing import TYPE_CHECKING, Any

from .context import VISIT_KEY, reset_visit, set_visit
from .facts import RequestFacts
from .mint import Minter
from .policy import INTERNAL_ERROR, TrackingPolicy, Visit
from .prefetch import PrefetchingMinter, make_minter
from .settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ENVIRON_KEY", "INTERNAL_ERROR", "TrackingUserMiddleware", "WSGIRequestFacts"]

logger = logging.getLogger("hr_middleware")

#: Where the id (or None) is put in the WSGI environ.
ENVIRON_KEY = "hello_retail.tracking_user_id"


class WSGIRequestFacts(RequestFacts):
    """:class:`RequestFacts` read lazily from a WSGI environ."""

    __slots__ = ("environ", "_make_native", "_native")

    def __init__(self, environ: WSGIEnvironment, make_native: Callable[[WSGIEnvironment], Any] | None = None) -> None:
        # RequestFacts.__init__ inlined: this runs on every request.
        self._cookies = None
        self.environ = environ
        self._make_native = make_native
        self._native: Any = None

    @property
    def cookie_header(self) -> str:
        return self.environ.get("HTTP_COOKIE", "")  # type: ignore[no-any-return]

    @property
    def cookie_bytes(self) -> bytes:
        # RequestFacts.cookie_bytes without the cookie_header call: every request reads it.
        return self.environ.get("HTTP_COOKIE", "").encode("latin-1", "replace")  # type: ignore[no-any-return]

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
    def headers(self) -> Mapping[str, str]:
        return EnvironHeaderMap(self.environ)

    @property
    def native(self) -> Any:
        if self._make_native is None:
            return self.environ
        if self._native is None:
            self._native = self._make_native(self.environ)
        return self._native


class EnvironHeaderMap(Mapping[str, str]):
    """The request headers of a WSGI environ as a case-insensitive, read-only mapping."""

    __slots__ = ("_environ",)

    def __init__(self, environ: WSGIEnvironment) -> None:
        self._environ = environ

    @staticmethod
    def _key(name: str) -> str:
        key = name.upper().replace("-", "_")
        return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key

    def __getitem__(self, name: str) -> str:
        return self._environ[self._key(name)]  # type: ignore[no-any-return]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._environ

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and self._environ[key]:
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


class TrackingUserMiddleware:
    """WSGI middleware that gives every visitor one stable Hello Retail trackingUserId.

    Args:
        app: the WSGI application to wrap.
        settings: a ready :class:`~hr_middleware.Settings`; or pass its
            options as keyword arguments (``website_uuid`` is required).
        native_request: builds the framework's request object from the environ
            for hooks (``RequestFacts.native``); default: the environ itself.
        minter: what mints: a :class:`~hr_middleware.mint.Minter` or a
            :class:`~hr_middleware.prefetch.PrefetchingMinter`; default: one of
            its own (a pooled requests session), prefetching when the
            ``prefetch`` option says so.
        **options: the options of :class:`~hr_middleware.Settings`.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        settings: Settings | None = None,
        native_request: Callable[[WSGIEnvironment], Any] | None = None,
        minter: Minter | PrefetchingMinter | None = None,
        **options: Any,
    ) -> None:
        self.app = app
        self.settings = Settings.merge(settings, options)
        self.policy = TrackingPolicy(self.settings)
        self.minter = minter or make_minter(self.settings)
        self._mint = self.minter.mint
        self._native_request = native_request

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if VISIT_KEY in environ:
            # Another instance outside this one has decided already: one visit, one mint.
            return self.app(environ, start_response)
        visit: Visit | None
        try:
            visit = self.policy.resolve(WSGIRequestFacts(environ, self._native_request), self._mint)
        except Exception:
            logger.exception(INTERNAL_ERROR)
            visit = None
        if visit is None:
            # Outside the except block, so the app's own errors are not chained to ours.
            return self.app(environ, start_response)
        environ[ENVIRON_KEY] = visit.tracking_user_id
        environ[VISIT_KEY] = True
        token = set_visit(visit)
        try:
            result = self.app(environ, self._start_response(visit, start_response))
        except BaseException:
            reset_visit(token)
            raise
        if type(result) is list or type(result) is tuple or _is_file_wrapper(result, environ):
            # Consuming these runs no app code: the request is over already.
            reset_visit(token)
            return result
        return _ResponseInVisit(result, token)

    def _start_response(self, visit: Visit, start_response: StartResponse) -> StartResponse:
        policy = self.policy

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
            if visit.needs_response_patch:
                headers = policy.patch_headers(visit, headers)  # never raises
            return start_response(status, headers, exc_info)

        return start

    def close(self) -> None:
        """Stop the prefetch thread (if any) and close the connections to Hello Retail."""
        self.minter.close()


def _is_file_wrapper(result: object, environ: WSGIEnvironment) -> bool:
    # PEP 3333 only promises a callable: uWSGI's is a function, not a class.
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(result, wrapper)


class _ResponseInVisit:
    """The app's response iterable, with the visit's context kept until ``close()``."""

    __slots__ = ("_result", "_token")

    def __init__(self, result: Iterable[bytes], token: Token[Visit | None]) -> None:
        self._result = result
        self._token = token

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            try:
                reset_visit(self._token)
            except (ValueError, RuntimeError):
                # Closed from another context, or twice: nothing of ours to undo.
                pass
