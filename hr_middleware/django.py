"""Django middleware: one stable Hello Retail trackingUserId per visitor, under WSGI and ASGI.

settings.py::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "hr_middleware.django.TrackingUserMiddleware",
        ...
    ]
    HELLO_RETAIL = {"WEBSITE_UUID": "...", "TIMEOUT": 0.5}

    INSTALLED_APPS = [..., "hr_middleware"]  # optional: `manage.py check` checks HELLO_RETAIL

``HELLO_RETAIL``'s keys are the options of :class:`~hr_middleware.Settings`
in upper case; ``MINT_WHEN`` and ``CONSENT`` may also be dotted paths. The id
is at ``request.tracking_user_id`` and :func:`hr_middleware.get_tracking_user_id`
in sync and async views alike. Under an async stack the mint is awaited
(httpx); under a sync stack it blocks the worker thread (requests), as any
other I/O of a sync view does.

The settings are read when Django builds its middleware chain (once per
handler: at server start, per test ``Client``), and again after
``override_settings`` changes ``HELLO_RETAIL``. A missing or invalid
``HELLO_RETAIL`` stops the start with ``ImproperlyConfigured``, saying what
the system checks (``hr_middleware.E001``...) say; one that becomes invalid
later (``override_settings``) is logged and the site is served without
tracking ids. The checks are registered when this module is imported, so
``manage.py check`` runs them when ``"hr_middleware"`` is in INSTALLED_APPS
(or the module is imported otherwise). See docs/django.md.
"""

from __future__ import annotations

import difflib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.module_loading import import_string

from .context import VISIT_KEY, current_visit, reset_visit, set_visit
from .facts import RequestFacts
from .mint import AsyncMinter, Minter
from .policy import CACHING_HEADERS, FAIL_SAFE_CACHE_CONTROL, FAIL_SAFE_DROPPED, TrackingPolicy, Visit
from .prefetch import AsyncPrefetchingMinter, PrefetchingMinter, make_async_minter, make_minter
from .settings import Settings
from .wsgi import INTERNAL_ERROR

__all__ = [
    "CONFIG_INVALID",
    "MIDDLEWARE_PATH",
    "SETTING",
    "DjangoRequestFacts",
    "TrackingUserMiddleware",
    "check_settings",
    "read_settings",
]

logger = logging.getLogger("hr_middleware")

#: The Django setting holding the options.
SETTING = "HELLO_RETAIL"
#: The dotted path to put in ``MIDDLEWARE``.
MIDDLEWARE_PATH = "hr_middleware.django.TrackingUserMiddleware"
#: Logged (ERROR) when ``HELLO_RETAIL`` cannot be used; requests are then served without ids.
CONFIG_INVALID = "settings.HELLO_RETAIL is invalid (%s); serving requests without tracking ids"

#: The Expires of a deleted cookie (what Django's delete_cookie() sends).
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"
#: Options that may be given as a dotted path to a callable.
_IMPORTABLE = ("MINT_WHEN", "CONSENT")
#: Where the middleware keeps the request's visit (read by ``request.tracking_user_id``).
_VISIT_ATTRIBUTE = "_hello_retail_visit"


class DjangoRequestFacts(RequestFacts):
    """:class:`RequestFacts` read lazily from a Django ``HttpRequest``."""

    __slots__ = ("request",)

    def __init__(self, request: HttpRequest) -> None:
        super().__init__()
        self.request = request

    @property
    def native(self) -> HttpRequest:
        return self.request

    @property
    def cookie_header(self) -> str:
        return self.request.META.get("HTTP_COOKIE", "")  # type: ignore[no-any-return]

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
    def headers(self) -> Mapping[str, str]:
        return self.request.headers


class _TrackingUserIdAttribute:
    """``request.tracking_user_id``: the visit's id, a plain ``str`` or None.

    A descriptor on ``HttpRequest`` so that reading it marks the visit accessed
    (the response then gets ``Vary: Cookie``), exactly as
    :func:`~hr_middleware.get_tracking_user_id` does. Assigning to it stores
    that value instead (handy with ``RequestFactory`` in unit tests).
    """

    def __get__(self, request: HttpRequest | None, owner: type | None = None) -> Any:
        if request is None:
            return self
        state = request.__dict__
        if "tracking_user_id" in state:
            return state["tracking_user_id"]
        visit: Visit | None = state.get(_VISIT_ATTRIBUTE)
        return None if visit is None else visit.read_id()

    def __set__(self, request: HttpRequest, value: str | None) -> None:
        request.__dict__["tracking_user_id"] = value


if not hasattr(HttpRequest, "tracking_user_id"):
    HttpRequest.tracking_user_id = _TrackingUserIdAttribute()  # type: ignore[attr-defined]


# -- settings -------------------------------------------------------------------


def _import_callables(config: Mapping[str, Any]) -> dict[str, Any]:
    """*config* with dotted paths of ``MINT_WHEN`` / ``CONSENT`` imported (ImportError if not found)."""
    return {
        key: import_string(value) if key in _IMPORTABLE and isinstance(value, str) else value
        for key, value in config.items()
    }


_UNSET = object()


def read_settings(config: object = _UNSET) -> Settings:
    """The :class:`~hr_middleware.Settings` of ``settings.HELLO_RETAIL`` (or of *config*).

    Dotted paths of ``MINT_WHEN`` / ``CONSENT`` are imported. Use it to build a
    client with the middleware's options:
    ``HelloRetailClient.from_settings(read_settings())``. Raises ``ValueError``
    or ``TypeError`` (what ``manage.py check`` reports) when they are invalid.
    """
    if config is _UNSET:
        config = getattr(django_settings, SETTING, None)
    if config is None:
        raise ValueError("settings.HELLO_RETAIL is missing")
    if not isinstance(config, Mapping):
        raise TypeError(f"settings.HELLO_RETAIL must be a dict, not {type(config).__name__}")
    return Settings.from_config(_import_callables(config))


class _Generation:
    """Bumped whenever ``override_settings`` changes ``HELLO_RETAIL``; middlewares then re-read it."""

    value = 0


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        _Generation.value += 1


setting_changed.connect(_on_setting_changed, dispatch_uid="hr_middleware.django.setting_changed")


class _Configuration:
    """One reading of ``HELLO_RETAIL``: its policy and minter, or nothing when invalid."""

    __slots__ = ("source", "generation", "settings", "policy", "minter", "aminter", "error")

    def __init__(self, source: object, generation: int, *, is_async: bool) -> None:
        self.source = source
        self.generation = generation
        self.settings: Settings | None = None
        self.policy: TrackingPolicy | None = None
        self.minter: Minter | PrefetchingMinter | None = None
        self.aminter: AsyncMinter | AsyncPrefetchingMinter | None = None
        #: Why ``HELLO_RETAIL`` cannot be used (None when it can).
        self.error: Exception | None = None
        try:
            settings = read_settings(source)
            # Under an async stack the mint must not block the loop: httpx.
            if is_async:
                self.aminter = make_async_minter(settings)
            else:
                self.minter = make_minter(settings)
        except Exception as exc:
            self.error = exc
            return
        self.settings = settings
        self.policy = TrackingPolicy(settings)

    def resolve(self, request: HttpRequest) -> Visit | None:
        """The request's visit, minting with the blocking minter; None when off or failed."""
        if self.policy is None or self.minter is None:
            return None
        try:
            return self.policy.resolve(DjangoRequestFacts(request), self.minter.mint)
        except Exception:
            logger.exception(INTERNAL_ERROR)
            return None

    async def aresolve(self, request: HttpRequest) -> Visit | None:
        """The request's visit, minting without blocking the loop; None when off or failed."""
        if self.policy is None or self.aminter is None:
            return None
        try:
            return await self.policy.aresolve(DjangoRequestFacts(request), self.aminter.amint)
        except Exception:
            logger.exception(INTERNAL_ERROR)
            return None

    def finish(self, visit: Visit | None, response: HttpResponseBase) -> HttpResponseBase:
        """Write what the core decided onto *response*; keep the visit readable while it streams."""
        if visit is None:
            return response
        if visit.needs_response_patch:
            self._patch(visit, response)
        try:
            if isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
                # A FileResponse runs no app code while it streams; wrapping it
                # would lose wsgi.file_wrapper (sendfile).
                _stream_in_visit(response, visit)
        except Exception:
            logger.exception(INTERNAL_ERROR)
        visit.detach()  # the request refers to the visit: no cycle left behind
        return response

    def _patch(self, visit: Visit, response: HttpResponseBase) -> None:
        policy = cast(TrackingPolicy, self.policy)
        headers = response.headers
        try:
            current = {name: headers.get(name) for name in CACHING_HEADERS}
            for name, value in policy.cache_headers(visit, current).items():
                headers[name] = value
            for cookie in policy.cookies_to_set(visit, response.cookies):
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
        except Exception:
            logger.exception(INTERNAL_ERROR)
            try:
                for name in FAIL_SAFE_DROPPED:
                    headers.pop(name, None)
                headers["Cache-Control"] = FAIL_SAFE_CACHE_CONTROL
            except Exception:
                logger.exception(INTERNAL_ERROR)

    def close(self) -> None:
        if self.minter is not None:
            self.minter.close()

    async def aclose(self) -> None:
        self.close()
        if self.aminter is not None:
            await self.aminter.aclose()


# -- the middleware ------------------------------------------------------------------

_GetResponse = Callable[[HttpRequest], Any]


class TrackingUserMiddleware:
    """Django middleware giving every visitor one stable Hello Retail trackingUserId.

    Sync and async capable: Django hands it a sync or an async ``get_response``
    and it follows, minting with ``requests`` or ``httpx`` respectively. Options
    come from ``settings.HELLO_RETAIL``; see the module docstring.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: _GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self._lock = threading.Lock()
        configuration = _Configuration(
            getattr(django_settings, SETTING, None), _Generation.value, is_async=self.is_async
        )
        if configuration.error is not None:
            # Django loads middleware when the application starts: refuse to
            # start, with what `manage.py check` says.
            raise ImproperlyConfigured(_check_report() or f"settings.HELLO_RETAIL: {configuration.error}")
        self._configuration = configuration

    def _read(self, current: _Configuration) -> _Configuration:
        """The configuration for the settings now; *current* again if ``HELLO_RETAIL`` is unchanged."""
        generation = _Generation.value
        source = getattr(django_settings, SETTING, None)
        if current.source == source:
            current.generation = generation  # same options: keep the pool and the breaker's state
            return current
        configuration = _Configuration(source, generation, is_async=self.is_async)
        if configuration.error is not None:
            # Changed while the site runs (override_settings): serve on without ids.
            logger.error(CONFIG_INVALID, configuration.error)
        return configuration

    def _current(self) -> tuple[_Configuration, _Configuration | None]:
        """This request's configuration, and the replaced one to close, if the settings changed."""
        configuration = self._configuration
        if configuration.generation == _Generation.value:
            return configuration, None
        with self._lock:
            old = self._configuration
            self._configuration = self._read(old)
            return self._configuration, (None if self._configuration is old else old)

    @property
    def settings(self) -> Settings | None:
        """The settings in use (None while ``HELLO_RETAIL`` is invalid)."""
        return self._configuration.settings

    @property
    def policy(self) -> TrackingPolicy | None:
        """The core policy in use (None while ``HELLO_RETAIL`` is invalid)."""
        return self._configuration.policy

    @property
    def minter(self) -> Minter | PrefetchingMinter | AsyncMinter | AsyncPrefetchingMinter | None:
        """What mints for this stack (requests when sync, httpx when async)."""
        configuration = self._configuration
        return configuration.minter or configuration.aminter

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        if _decided_outside(request):
            try:
                return self.get_response(request)
            finally:
                _done_outside(request)
        configuration, replaced = self._current()
        if replaced is not None:
            replaced.close()
        visit = configuration.resolve(request)
        token = _expose(request, visit)
        try:
            response = self.get_response(request)
        finally:
            reset_visit(token)
        return configuration.finish(visit, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if _decided_outside(request):
            try:
                return await self.get_response(request)  # type: ignore[no-any-return]
            finally:
                _done_outside(request)
        configuration, replaced = self._current()
        if replaced is not None:
            await replaced.aclose()
        visit = await configuration.aresolve(request)
        token = _expose(request, visit)
        try:
            response = await self.get_response(request)
        finally:
            reset_visit(token)
        return configuration.finish(visit, response)

    def close(self) -> None:
        """Close the pooled connections to Hello Retail (sync stack)."""
        self._configuration.close()

    async def aclose(self) -> None:
        """Close the pooled connections to Hello Retail (either stack)."""
        await self._configuration.aclose()


def _decided_outside(request: HttpRequest) -> bool:
    """Did hr_middleware's WSGI or ASGI middleware, wrapped around Django, decide this
    request already? Then its visit is the request's: one visit, one mint."""
    # vars(): a WSGIRequest has no scope, and getattr's AttributeError costs ~1 us.
    if VISIT_KEY not in request.META and VISIT_KEY not in vars(request).get("scope", ()):
        return False
    visit = current_visit()
    request.__dict__[_VISIT_ATTRIBUTE] = visit
    if visit is not None:
        visit.on_read = partial(_not_for_the_cache, request)
    return True


def _done_outside(request: HttpRequest) -> None:
    """The outer middleware's visit outlives this request's Django part: let go of the request."""
    visit = request.__dict__.get(_VISIT_ATTRIBUTE)
    if visit is not None:
        visit.on_read = None


def _expose(request: HttpRequest, visit: Visit | None) -> Any:
    request.__dict__[_VISIT_ATTRIBUTE] = visit
    if visit is not None:
        visit.on_read = partial(_not_for_the_cache, request)
    return set_visit(visit)


def _not_for_the_cache(request: HttpRequest) -> None:
    """The page read the visitor's id: Django's cache framework must not store it.

    ``@cache_page`` and the site-wide cache middleware store the view's response
    before this middleware adds ``Vary: Cookie`` (or when it stands outside
    them), under a key that ignores the visitor's cookie: every later visitor
    would get this one's id and recommendations. Both ask this flag, which
    they set when the request begins (so a read in the view comes after).
    """
    request._cache_update_cache = False  # type: ignore[attr-defined]


_END: Any = object()


def _stream_in_visit(response: StreamingHttpResponse, visit: Visit) -> None:
    """Keep *visit* current while *response*'s content is produced, after the middleware returned."""
    if response.is_async:
        response.streaming_content = _achunks(cast(AsyncIterator[bytes], response.streaming_content), visit)
    else:
        response.streaming_content = _chunks(cast(Iterator[bytes], response.streaming_content), visit)


def _chunks(content: Iterable[bytes], visit: Visit) -> Iterator[bytes]:
    iterator = iter(content)
    while True:
        token = set_visit(visit)
        try:
            chunk = next(iterator, _END)
        finally:
            reset_visit(token)
        if chunk is _END:
            return
        yield chunk


async def _achunks(content: AsyncIterator[bytes], visit: Visit) -> AsyncIterator[bytes]:
    while True:
        token = set_visit(visit)
        try:
            chunk = await anext(content, _END)
        finally:
            reset_visit(token)
        if chunk is _END:
            return
        yield chunk


# -- system checks ----------------------------------------------------------------------


def _check_report() -> str:
    """The errors ``manage.py check`` reports for ``HELLO_RETAIL``, as it prints them."""
    return "\n".join(str(message) for message in check_settings() if message.is_serious())


def _middleware_installed() -> bool:
    for path in getattr(django_settings, "MIDDLEWARE", None) or ():
        if path == MIDDLEWARE_PATH:
            return True
        try:
            if issubclass(import_string(path), TrackingUserMiddleware):
                return True
        except Exception:  # not ours to report; Django's own checks and start-up do
            continue
    return False


_UUID_HINT = "Find the website UUID in Hello Retail's dashboard (Settings > Website)."
_UUID_SHAPE = "A website UUID looks like '12345678-90ab-4cde-8f01-234567890abc' (a string)."


def _reason(exc: Exception, name: str) -> str:
    """*exc*'s message without the leading ``option:`` the core puts there."""
    return str(exc).removeprefix(f"{name}: ")


def _option_hint(key: str) -> str:
    return f"See {key} in the option table of docs/django.md."


@checks.register("hr_middleware")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check``: report every problem of ``settings.HELLO_RETAIL`` (ids in docs/django.md)."""
    installed = _middleware_installed()
    config = getattr(django_settings, SETTING, None)
    if config is None:
        if not installed:
            return []
        return [
            checks.Error(
                "settings.HELLO_RETAIL is missing.",
                hint='Add HELLO_RETAIL = {"WEBSITE_UUID": "<your website UUID>"} to your settings.',
                id="hr_middleware.E001",
            )
        ]
    if not isinstance(config, Mapping):
        return [
            checks.Error(
                f"settings.HELLO_RETAIL must be a dict, not {type(config).__name__}.",
                hint='HELLO_RETAIL = {"WEBSITE_UUID": "<your website UUID>", ...}',
                id="hr_middleware.E002",
            )
        ]
    errors = _check_options(config)
    if not errors:
        try:
            read_settings(config)
        except (TypeError, ValueError) as exc:  # options that conflict with each other
            errors.append(
                checks.Error(f"HELLO_RETAIL: {exc}.", hint="These options conflict.", id="hr_middleware.E007")
            )
    if not installed:
        errors.append(
            checks.Warning(
                f"settings.HELLO_RETAIL is set but {MIDDLEWARE_PATH} is not in MIDDLEWARE.",
                hint=f'Add "{MIDDLEWARE_PATH}" to MIDDLEWARE.',
                id="hr_middleware.W001",
            )
        )
    return errors


def _check_options(config: Mapping[Any, Any]) -> list[checks.CheckMessage]:
    """One message per bad key of *config*, each option validated on its own."""
    known = {name.upper(): name for name in Settings.option_names()}
    errors: list[checks.CheckMessage] = []
    if "WEBSITE_UUID" not in config:
        errors.append(
            checks.Error("HELLO_RETAIL['WEBSITE_UUID'] is missing.", hint=_UUID_HINT, id="hr_middleware.E003")
        )
    else:
        try:
            Settings(website_uuid=config["WEBSITE_UUID"])
        except (TypeError, ValueError) as exc:
            message = f"HELLO_RETAIL['WEBSITE_UUID']: {_reason(exc, 'website_uuid')}."
            errors.append(checks.Error(message, hint=_UUID_SHAPE, id="hr_middleware.E004"))
    valid_uuid = "00000000-0000-4000-8000-000000000000"
    for key, value in config.items():
        if key == "WEBSITE_UUID":
            continue
        name = known.get(key) if isinstance(key, str) else None
        if name is None:
            close = difflib.get_close_matches(str(key).upper(), known, n=1)
            errors.append(
                checks.Error(
                    f"HELLO_RETAIL[{key!r}] is not an option.",
                    hint=f"Did you mean {close[0]!r}?" if close else f"Options: {', '.join(known)}.",
                    id="hr_middleware.E005",
                )
            )
            continue
        try:
            option = _import_callables({key: value})[key]
        except ImportError as exc:
            errors.append(
                checks.Error(
                    f"HELLO_RETAIL[{key!r}]: cannot import {value!r} ({exc}).",
                    hint="Give the callable itself or its dotted path, e.g. 'shop.tracking.consent'.",
                    id="hr_middleware.E008",
                )
            )
            continue
        try:
            Settings(website_uuid=valid_uuid, **{name: option})
        except TypeError as exc:
            message = f"HELLO_RETAIL[{key!r}]: {_reason(exc, name)}."
            errors.append(checks.Error(message, hint=_option_hint(key), id="hr_middleware.E006"))
        except ValueError as exc:
            message = f"HELLO_RETAIL[{key!r}]: {_reason(exc, name)}."
            errors.append(checks.Error(message, hint=_option_hint(key), id="hr_middleware.E007"))
    return errors
