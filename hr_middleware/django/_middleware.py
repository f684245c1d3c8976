"""The Django middleware: the engine's visit around ``get_response``, and the response patched with Django's API."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from functools import partial
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase

from hr_middleware._core.facts import RequestFacts
from hr_middleware._core.headers import (
    cache_headers,
    cookies_to_set,
    keep_out_of_shared_caches,
    set_cookie_name,
)
from hr_middleware._core.log import CONFIG_INVALID, logger
from hr_middleware._core.returning import environ_reader
from hr_middleware._core.settings import Settings
from hr_middleware._hello_retail.mint import AsyncMinter, Minter
from hr_middleware._hello_retail.prefetch import (
    AsyncPrefetchingMinter,
    PrefetchingMinter,
    make_async_minter,
    make_minter,
)
from hr_middleware._serving import (
    VISIT_KEY,
    AsyncChunksInVisit,
    ChunksInVisit,
    Engine,
    Visit,
    ain_visit,
    current,
    fail_open,
    in_visit,
)

from ._cache import not_for_the_cache
from ._checks import check_report
from ._config import SETTING, Generation, read_settings

__all__ = ["DjangoRequestFacts", "TrackingUserMiddleware"]

#: The Expires of a deleted cookie (what Django's delete_cookie() sends).
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"


class DjangoRequestFacts(RequestFacts):
    """:class:`RequestFacts` read lazily from a Django ``HttpRequest``."""

    __slots__ = ("request",)

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.META.get("HTTP_COOKIE", ""))
        self.request = request

    @property
    def native(self) -> HttpRequest:
        return self.request

    @property
    def method(self) -> str:
        return self.request.method or "GET"

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def scheme(self) -> str:
        return self.request.scheme or "http"

    @property
    def is_secure(self) -> bool:
        # Honours SECURE_PROXY_SSL_HEADER, like the rest of the Django project.
        return self.request.is_secure()

    @property
    def host(self) -> str:
        # Django's reading (USE_X_FORWARDED_HOST), checked against ALLOWED_HOSTS: a host
        # Django refuses names no website here.
        try:
            return self.request.get_host()
        except DisallowedHost:
            return ""

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers


def _meta_reader(
    server_name: str, sdk_name: str, renew_after: int | None, clock: Callable[[], float]
) -> Callable[[HttpRequest], str | None]:
    """The hot path's reader (:mod:`hr_middleware._core.returning`), on a Django request's ``META``."""
    read = environ_reader(server_name, sdk_name, renew_after, clock)
    return lambda request: read(request.META)


# -- request.tracking_user_id --------------------------------------------------------------


class _TrackingUserIdAttribute:
    """``request.tracking_user_id``: the request's visit's id, a plain ``str`` or None.

    Reading it marks the visit read (the response then gets ``Vary: Cookie``
    and Django's cache does not store it), exactly as
    :func:`~hr_middleware.get_tracking_user_id` does; once the request is
    over it reads the plain id, and Django's cache still does not store the
    page. Assigning to it stores that value instead (handy with
    ``RequestFactory`` in unit tests).
    """

    def __get__(self, request: HttpRequest | None, owner: type | None = None) -> Any:
        if request is None:
            return self
        state = request.__dict__
        if "tracking_user_id" in state:
            # Read once the request is over (say by a middleware listed before ours, in its
            # response phase): too late for Vary: Cookie, not for Django's cache.
            not_for_the_cache(request)
            return state["tracking_user_id"]
        visit: Visit | None = state.get(_VISIT_ATTRIBUTE)
        return None if visit is None else visit.read_id()

    def __set__(self, request: HttpRequest, value: str | None) -> None:
        request.__dict__["tracking_user_id"] = value


#: Where a request keeps its visit while the middleware serves it (then its plain id).
_VISIT_ATTRIBUTE = "_hello_retail_visit"


def _install_request_attribute() -> None:
    """Give Django's requests ``tracking_user_id``: done when the middleware is
    loaded (not when this module is imported), once."""
    if not isinstance(HttpRequest.__dict__.get("tracking_user_id"), _TrackingUserIdAttribute):
        HttpRequest.tracking_user_id = _TrackingUserIdAttribute()  # type: ignore[attr-defined]


# -- the middleware ------------------------------------------------------------------------------

_GetResponse = Callable[[HttpRequest], Any]


class _Configuration:
    """One reading of ``HELLO_RETAIL``: its engine, or the reason it cannot be used."""

    __slots__ = ("source", "generation", "engine", "error")

    def __init__(self, source: object, generation: int, *, is_async: bool) -> None:
        self.source = source
        self.generation = generation
        self.engine: Engine[HttpRequest, Visit] | None = None
        #: Why ``HELLO_RETAIL`` cannot be used (None when it can).
        self.error: Exception | None = None
        try:
            settings = read_settings(source)
            # Under an async stack the mint must not block the loop: httpx.
            self.engine = Engine(
                settings,
                DjangoRequestFacts,
                returning=_meta_reader,
                minter=None if is_async else make_minter(settings),
                aminter=make_async_minter(settings) if is_async else None,
                visit=Visit,
            )
        except (ValueError, TypeError, ImportError) as exc:  # what read_settings and the minters raise
            self.error = exc


class TrackingUserMiddleware:
    """Django middleware giving every visitor one stable Hello Retail trackingUserId.

    Sync and async capable: Django hands it a sync or an async ``get_response``
    and it follows, minting with ``requests`` or ``httpx`` respectively. Options
    come from ``settings.HELLO_RETAIL``; see :mod:`hr_middleware.django`.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: _GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self._lock = threading.Lock()
        _install_request_attribute()
        configuration = _Configuration(
            getattr(django_settings, SETTING, None), Generation.value, is_async=self.is_async
        )
        if configuration.error is not None:
            # Django loads middleware when the application starts: refuse to
            # start, with what `manage.py check` says.
            raise ImproperlyConfigured(check_report() or f"settings.HELLO_RETAIL: {configuration.error}")
        self._configuration = configuration

    def _read(self, current: _Configuration) -> _Configuration:
        """The configuration for the settings now; *current* again if ``HELLO_RETAIL`` is unchanged."""
        generation = Generation.value
        source = getattr(django_settings, SETTING, None)
        if current.source == source:
            current.generation = generation  # same options: keep the pool and the breaker's state
            return current
        configuration = _Configuration(source, generation, is_async=self.is_async)
        if configuration.error is not None:
            # Changed while the site runs (override_settings): serve on without ids.
            logger.error(CONFIG_INVALID, configuration.error)
        return configuration

    def _engine(self) -> tuple[Engine[HttpRequest, Visit] | None, Engine[HttpRequest, Visit] | None]:
        """This request's engine (None while the settings are invalid), and a replaced one to close."""
        configuration = self._configuration
        if configuration.generation == Generation.value:
            return configuration.engine, None
        with self._lock:
            old = self._configuration
            self._configuration = self._read(old)
            replaced = None if self._configuration is old else old.engine
            return self._configuration.engine, replaced

    @property
    def settings(self) -> Settings | None:
        """The settings in use (None while ``HELLO_RETAIL`` is invalid)."""
        engine = self._configuration.engine
        return None if engine is None else engine.settings

    @property
    def _minter(self) -> Minter | PrefetchingMinter | AsyncMinter | AsyncPrefetchingMinter | None:
        """What mints for this stack (requests when sync, httpx when async; None while invalid)."""
        engine = self._configuration.engine
        return None if engine is None else engine.minter or engine.aminter

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        if _decided_outside(request):
            return _served_outside(request, self.get_response)
        engine, replaced = self._engine()
        if replaced is not None:
            replaced.close()  # the engine of settings that changed; never raises
        visit = Visit.failed(request) if engine is None else engine.serve(request)
        _hold(request, visit)
        return _finish(request, visit, in_visit(visit, self.get_response, request))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if _decided_outside(request):
            return await _aserved_outside(request, self.get_response)
        engine, replaced = self._engine()
        if replaced is not None:
            await replaced.aclose()
        visit = Visit.failed(request) if engine is None else engine.serve(request)
        if engine is not None and visit.must_mint:
            visit = await engine.amint(visit)
        _hold(request, visit)
        return _finish(request, visit, await ain_visit(visit, self.get_response, request))

    def close(self) -> None:
        """Close the pooled connections to Hello Retail (sync stack)."""
        engine = self._configuration.engine
        if engine is not None:
            engine.close()

    async def aclose(self) -> None:
        """Close the pooled connections to Hello Retail (either stack)."""
        engine = self._configuration.engine
        if engine is not None:
            await engine.aclose()


def _hold(request: HttpRequest, visit: Visit | None) -> None:
    """Let *request* read *visit*'s id, and Django's cache hear when it is read."""
    request.__dict__[_VISIT_ATTRIBUTE] = visit
    if visit is not None:
        visit.on_read = partial(not_for_the_cache, request)


def _let_go(request: HttpRequest, visit: Visit | None) -> None:
    """The request is over: it keeps the plain id (no cycle through the visit), the visit forgets it."""
    request.__dict__[_VISIT_ATTRIBUTE] = None
    if "tracking_user_id" not in request.__dict__:
        # For code that reads it once the request is over (a test's response.wsgi_request).
        request.__dict__["tracking_user_id"] = None if visit is None else visit.tracking_user_id
    if visit is not None:
        visit.on_read = None


def _decided_outside(request: HttpRequest) -> bool:
    """Did hr_middleware's WSGI or ASGI middleware, wrapped around Django, decide this
    request already? Then its visit is the request's: one visit, one mint."""
    # vars(): a WSGIRequest has no scope.
    return VISIT_KEY in request.META or VISIT_KEY in vars(request).get("scope", ())


def _served_outside(request: HttpRequest, get_response: _GetResponse) -> Any:
    visit = current()
    _hold(request, visit)
    try:
        return get_response(request)
    finally:
        _let_go(request, visit)  # the outer visit outlives this request's Django part


async def _aserved_outside(request: HttpRequest, get_response: _GetResponse) -> HttpResponseBase:
    visit = current()
    _hold(request, visit)
    try:
        return await get_response(request)  # type: ignore[no-any-return]
    finally:
        _let_go(request, visit)


def _finish(request: HttpRequest, visit: Visit, response: HttpResponseBase) -> HttpResponseBase:
    """Write what the core decided onto *response*; keep the visit readable while it streams."""
    _let_go(request, visit)
    if visit.cookies or visit.accessed:
        _patch(visit, response)
    with fail_open:
        if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
            # A FileResponse runs no app code while it streams; wrapping it
            # would lose wsgi.file_wrapper (sendfile).
            _stream_in_visit(response, visit)
    return response


def _patch(visit: Visit, response: HttpResponseBase) -> None:
    headers = response.headers
    with fail_open:
        for name, value in cache_headers(visit, dict(headers.items())).items():
            headers[name] = value
        # The app's cookies: response.cookies, and a Set-Cookie it wrote as a header itself.
        raw = headers.get("Set-Cookie")
        set_by_app = [*response.cookies, *([] if raw is None else [set_cookie_name(raw)])]
        for cookie in cookies_to_set(visit, set_by_app):
            # set_cookie for deletions too: delete_cookie() would drop Secure and HttpOnly.
            response.set_cookie(
                cookie.name,
                cookie.value or "",
                max_age=0 if cookie.deletes else cookie.max_age,
                expires=_EXPIRED if cookie.deletes else None,
                path=cookie.path,
                domain=cookie.domain,
                secure=cookie.secure,
                httponly=cookie.httponly,
                samesite=cookie.samesite,
            )
        return
    with fail_open:  # headers that cannot even be changed: sent as they are
        keep_out_of_shared_caches(headers)


def _stream_in_visit(response: StreamingHttpResponse, visit: Visit) -> None:
    """Keep *visit* current while *response*'s content is produced, after the middleware returned."""
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = AsyncChunksInVisit(cast(AsyncIterator[bytes], content), visit)
    else:
        response.streaming_content = ChunksInVisit(cast(Iterator[bytes], content), visit)
