"""The Django adapter beyond the shared behaviour table: ASGI, concurrency, checks, settings changes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.django_site import configure

configure()

from django.conf import settings  # noqa: E402 - needs configure()
from django.core import checks  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import AsyncClient, Client, RequestFactory, override_settings  # noqa: E402

from hr_middleware import is_valid_id  # noqa: E402
from hr_middleware._core.log import CONFIG_INVALID, INTERNAL_ERROR  # noqa: E402
from hr_middleware.django import TrackingUserMiddleware  # noqa: E402
from hr_middleware.django._checks import MIDDLEWARE_PATH  # noqa: E402
from hr_middleware.testing import FakeHelloRetail  # noqa: E402

from .django_site.shop import SHOP_MIDDLEWARE, STAMPING_MIDDLEWARE  # noqa: E402
from .drivers import PAGE, middleware_in  # noqa: E402
from .ids import SDK, SERVER, UUID, A, B, C, cookie_id, fresh, visitors  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASYNC_URLS = "tests.django_site.async_urls"
RETURNING = {"Cookie": f"helloRetailTrackingUserId={A}; hello_retail_id={A}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Django's ASGI handler and our async transport run on asyncio


@pytest.fixture
def hello_retail(fake_hello_retail: FakeHelloRetail) -> dict[str, Any]:
    """A ``HELLO_RETAIL`` pointing at the fake server."""
    return {"WEBSITE_UUID": fake_hello_retail.website_uuid, "API_URL": fake_hello_retail.url}


@asynccontextmanager
async def asgi_client(config: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of ``get_asgi_application()``, with *config* as ``HELLO_RETAIL``."""
    with override_settings(HELLO_RETAIL=config, ROOT_URLCONF=ASYNC_URLS):
        app = get_asgi_application()
        middleware = ours_in(app)
        assert middleware.is_async, "an ASGI handler with only async-capable middleware is an async stack"
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield client
        await middleware.aclose()


def ours_in(handler: Any) -> TrackingUserMiddleware:
    """Our middleware in a Django *handler*'s chain, wherever ``MIDDLEWARE`` lists it."""
    layer = handler._middleware_chain
    while not isinstance(layer.__wrapped__, TrackingUserMiddleware):
        layer = layer.__wrapped__.get_response
    return layer.__wrapped__  # type: ignore[no-any-return]


# -- through Django's real ASGI handler ----------------------------------------------------


@pytest.mark.anyio
async def test_asgi_handler_mints_once_then_reads_the_cookie(
    fake_hello_retail: FakeHelloRetail, hello_retail: dict[str, Any]
) -> None:
    async with asgi_client(hello_retail) as client:
        first = await client.get("/", headers=PAGE)
        new = fake_hello_retail.minted[0]
        assert first.json() == {"id": new, "native": new, "origin": "minted", "reason": None}
        assert first.headers["vary"] == "Cookie"
        assert first.headers["cache-control"] == "private"
        assert {c.name: cookie_id(c.value) for c in first.cookies.jar} == {
            SERVER: new,
            SDK: new,
        }

        again = await client.get("/sync/", headers=PAGE)  # the client sends the cookies back

    assert again.json() == {"id": new, "native": new, "origin": "cookie", "reason": None}
    assert "set-cookie" not in again.headers
    assert fake_hello_retail.mint_count == 1


# -- both stacks, both kinds of view ---------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "path"),
    [
        pytest.param("django", "/", id="sync-stack-sync-view"),
        pytest.param("django", "/async/", id="sync-stack-async-view"),
        pytest.param("django_async", "/", id="async-stack-async-view"),
        pytest.param("django_async", "/sync/", id="async-stack-sync-view"),
    ],
)
def test_sync_and_async_views_see_the_id(
    make_driver: Any, fake_hello_retail: FakeHelloRetail, adapter: str, path: str
) -> None:
    first = make_driver(adapter).get(path)

    new = fake_hello_retail.minted[0]
    assert first.seen == {"id": new, "native": new, "origin": "minted", "reason": None}
    assert {name: c.value for name, c in first.set_cookies.items()} == {
        SERVER: new,
        SDK: new,
    }


@pytest.mark.parametrize("adapter", ["django", "django_async"])
def test_streamed_content_sees_the_id(make_driver: Any, fake_hello_retail: FakeHelloRetail, adapter: str) -> None:
    result = make_driver(adapter).get("/stream")

    new = fake_hello_retail.minted[0]
    assert result.body == f"{new}\n{new}\n".encode()
    assert result.set_cookies


def test_template_reading_request_tracking_user_id_marks_the_response_vary_cookie(make_driver: Any) -> None:
    result = make_driver("django").get("/page", cookies={SERVER: A, SDK: A})

    assert result.body == f"<p>{A}</p>".encode()
    assert result.set_cookies == {}
    assert result.header("vary") == "Cookie"


def test_request_tracking_user_id_is_a_plain_value() -> None:
    request = RequestFactory().get("/")

    request.tracking_user_id = A  # type: ignore[attr-defined]
    assert request.tracking_user_id == A  # type: ignore[attr-defined]
    assert json.dumps(request.tracking_user_id) == f'"{A}"'  # type: ignore[attr-defined]


def test_importing_the_django_adapter_patches_nothing() -> None:
    code = (
        "import django; from django.conf import settings; settings.configure(); django.setup(); "
        "import hr_middleware.django; from django.http import HttpRequest; "
        "assert not hasattr(HttpRequest, 'tracking_user_id'), 'patched at import'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_building_the_wsgi_or_asgi_middleware_never_imports_django() -> None:
    """They ready Django's cache for a Django project they wrap, but only where Django is loaded already."""
    code = (
        "import sys; from hr_middleware import asgi, wsgi; "
        "from hr_middleware.testing import DEFAULT_WEBSITE_UUID as uuid; "
        "wsgi.TrackingUserMiddleware(lambda e, s: [], website_uuid=uuid); "
        "asgi.TrackingUserMiddleware(lambda scope, receive, send: None, website_uuid=uuid); "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'Django imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_the_cache_flag_stays_djangos_plain_attribute_until_the_id_is_read(hello_retail: dict[str, Any]) -> None:
    """Django's cache asks ``hasattr(request, "_cache_update_cache")`` first: unset must stay unset."""
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen["unset"] = hasattr(request, "_cache_update_cache")
        request._cache_update_cache = True  # type: ignore[attr-defined]  # as a cache lookup that missed
        seen["before the read"] = request._cache_update_cache  # type: ignore[attr-defined]
        del request._cache_update_cache  # type: ignore[attr-defined]
        seen["deleted"] = hasattr(request, "_cache_update_cache")
        assert request.tracking_user_id == A  # type: ignore[attr-defined]
        request._cache_update_cache = True  # type: ignore[attr-defined]  # a lookup after the read
        return HttpResponse("ok")

    with override_settings(HELLO_RETAIL=hello_retail):
        middleware = TrackingUserMiddleware(view)
        request = RequestFactory().get("/", HTTP_COOKIE=f"{SERVER}={A}; {SDK}={A}")
        middleware(request)
        middleware.close()

    assert seen == {"unset": False, "before the read": True, "deleted": False}
    assert request._cache_update_cache is False  # type: ignore[attr-defined]  # also once the request is over


def test_the_id_is_the_requests_own_in_any_thread_and_after_the_request(
    fake_hello_retail: FakeHelloRetail, hello_retail: dict[str, Any]
) -> None:
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        with ThreadPoolExecutor(1) as pool:  # a view handing the request to a worker thread
            seen["in_a_thread"] = pool.submit(lambda: request.tracking_user_id).result()  # type: ignore[attr-defined]
        return HttpResponse("ok")

    with override_settings(HELLO_RETAIL=hello_retail):
        middleware = TrackingUserMiddleware(view)
        request = RequestFactory().get("/", HTTP_COOKIE=f"{SERVER}={A}; {SDK}={A}")
        response = middleware(request)

    assert seen["in_a_thread"] == A
    assert response.headers["Vary"] == "Cookie"  # read in the thread: the page varies on the visitor
    assert request.tracking_user_id == A  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(request)).tracking_user_id == A  # the request class is Django's own


# -- settings: when they are read ------------------------------------------------------------------


def client_for(config: dict[str, Any]) -> tuple[Client, TrackingUserMiddleware]:
    with override_settings(HELLO_RETAIL=config):
        client = Client()
        client.handler.load_middleware()
    return client, middleware_in(client.handler)


def first_visit(client: Client) -> Any:
    client.cookies.clear()
    return client.get("/", headers=PAGE)


def test_override_settings_applies_to_a_middleware_already_built(
    fake_hello_retail: FakeHelloRetail, hello_retail: dict[str, Any]
) -> None:
    client, middleware = client_for(hello_retail)
    try:
        with override_settings(HELLO_RETAIL=hello_retail):
            assert set(first_visit(client).cookies) == {SERVER, SDK}
            with override_settings(HELLO_RETAIL={**hello_retail, "SHARE_WITH_SDK": False}):
                assert set(first_visit(client).cookies) == {SERVER}
                assert middleware.settings is not None
                assert middleware.settings.share_with_sdk is False
            assert set(first_visit(client).cookies) == {SERVER, SDK}
    finally:
        middleware.close()
    assert fake_hello_retail.mint_count == 3


def test_the_same_options_again_keep_the_pool_and_the_breaker(hello_retail: dict[str, Any]) -> None:
    client, middleware = client_for(hello_retail)
    try:
        configuration = middleware._configuration
        with override_settings(HELLO_RETAIL=dict(hello_retail)):
            first_visit(client)
        assert middleware._configuration is configuration
    finally:
        middleware.close()


def test_invalid_settings_serve_the_site_without_ids(
    fake_hello_retail: FakeHelloRetail, hello_retail: dict[str, Any], hr_log: pytest.LogCaptureFixture
) -> None:
    client, middleware = client_for(hello_retail)
    try:
        with override_settings(HELLO_RETAIL=hello_retail):
            with override_settings(HELLO_RETAIL={**hello_retail, "TIMEOUT": "soon"}):
                response = first_visit(client)
                assert response.status_code == 200
                assert response.json() == {"id": None, "native": None, "origin": None, "reason": "internal_error"}
                assert not response.cookies
                first_visit(client)  # logged once per reading of the settings, not per request
            errors = [r for r in hr_log.records if r.levelno == logging.ERROR]
            assert [r.msg for r in errors] == [CONFIG_INVALID]
            assert "timeout: expected a number of seconds, got str" in errors[0].getMessage()
            assert is_valid_id(first_visit(client).json()["id"])  # valid again after the override
    finally:
        middleware.close()
    assert fake_hello_retail.mint_count == 1


def test_a_response_that_refuses_the_cookies_goes_out_kept_out_of_shared_caches(
    hello_retail: dict[str, Any], hr_log: pytest.LogCaptureFixture
) -> None:
    # The page's Cache-Control cannot say "private" through a failed set_cookie, so no
    # cache may keep it: it would hand one visitor's id to the next.
    client, middleware = client_for(hello_retail)
    try:
        with override_settings(HELLO_RETAIL=hello_retail):
            response = client.get("/cookieless", headers=PAGE)
    finally:
        middleware.close()
    assert response.status_code == 200
    assert response.content == b"cookieless"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "CDN-Cache-Control" not in response.headers
    assert not response.cookies
    assert [r.msg for r in hr_log.records if r.levelno == logging.ERROR] == [INTERNAL_ERROR]


@pytest.mark.parametrize(
    ("config", "reported"),
    [
        pytest.param(None, "(hr_middleware.E001) settings.HELLO_RETAIL is missing.", id="missing"),
        pytest.param(
            {"WEBSITE_UUID": "shop-1"},
            "(hr_middleware.E004) HELLO_RETAIL['WEBSITE_UUID']: 'shop-1' is not a UUID",
            id="bad-uuid",
        ),
        pytest.param(
            {"WEBSITE_UUID": UUID, "TIMOUT": 1},
            "(hr_middleware.E005) HELLO_RETAIL['TIMOUT'] is not an option.\n\tHINT: Did you mean 'TIMEOUT'?",
            id="typo",
        ),
    ],
)
@pytest.mark.parametrize("stack", ["sync", "async"])
def test_a_missing_or_invalid_setting_stops_the_start_as_the_checks_say(
    config: Any, reported: str, stack: str, hr_log: pytest.LogCaptureFixture
) -> None:
    """Django loads middleware when the application starts: it refuses to start, saying what
    ``manage.py check`` says, with or without "hr_middleware" in INSTALLED_APPS."""
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(
        INSTALLED_APPS=[], ROOT_URLCONF=ASYNC_URLS if stack == "async" else "tests.django_site.urls"
    ):
        if config is None:
            del settings.HELLO_RETAIL
        else:
            settings.HELLO_RETAIL = config
        start = (lambda: Client().get("/", headers=PAGE)) if stack == "sync" else get_asgi_application
        with pytest.raises(ImproperlyConfigured) as raised:
            start()

    assert reported in str(raised.value)


@pytest.mark.anyio
async def test_override_settings_under_the_asgi_handler(
    fake_hello_retail: FakeHelloRetail, hello_retail: dict[str, Any]
) -> None:
    async with asgi_client(hello_retail) as client:
        both = await client.get("/", headers=PAGE)
        client.cookies.clear()
        with override_settings(HELLO_RETAIL={**hello_retail, "SHARE_WITH_SDK": False}):
            one = await client.get("/", headers=PAGE)

    assert {c.name for c in both.cookies.jar} == {SERVER, SDK}
    assert {c.name for c in one.cookies.jar} == {SERVER}
    assert fake_hello_retail.mint_count == 2


# -- system checks -----------------------------------------------------------------------------

MISSING = object()
OURS = ["hr_middleware.django.TrackingUserMiddleware"]


def consent_granted(request: Any) -> bool:
    return True


CHECKS = [
    pytest.param({"WEBSITE_UUID": UUID}, OURS, [], id="valid"),
    pytest.param(
        {"WEBSITE_UUID": UUID, "TIMEOUT": 0.5, "CONSENT": "tests.test_django.consent_granted"},
        OURS,
        [],
        id="valid-with-dotted-path",
    ),
    pytest.param(MISSING, OURS, ["hr_middleware.E001"], id="setting-missing"),
    pytest.param(MISSING, [], [], id="not-used-at-all"),
    pytest.param(UUID, OURS, ["hr_middleware.E002"], id="not-a-dict"),
    pytest.param({}, OURS, ["hr_middleware.E003"], id="uuid-missing"),
    pytest.param({"WEBSITE_UUID": "shop-1"}, OURS, ["hr_middleware.E004"], id="uuid-malformed"),
    pytest.param({"WEBSITE_UUID": 42}, OURS, ["hr_middleware.E004"], id="uuid-not-a-string"),
    pytest.param({"WEBSITE_UUID": UUID, "TIMEOUTT": 1}, OURS, ["hr_middleware.E005"], id="unknown-key"),
    pytest.param({"WEBSITE_UUID": UUID, "timeout": 1}, OURS, ["hr_middleware.E005"], id="lower-case-key"),
    pytest.param({"WEBSITE_UUID": UUID, "TIMEOUT": "1"}, OURS, ["hr_middleware.E006"], id="wrong-type"),
    pytest.param({"WEBSITE_UUID": UUID, "SECURE": "yes"}, OURS, ["hr_middleware.E006"], id="wrong-type-secure"),
    pytest.param({"WEBSITE_UUID": UUID, "TIMEOUT": 120}, OURS, ["hr_middleware.E007"], id="out-of-range"),
    pytest.param({"WEBSITE_UUID": UUID, "API_URL": "core.helloretail.com"}, OURS, ["hr_middleware.E007"], id="bad-url"),
    pytest.param({"WEBSITE_UUID": UUID, "COOKIE_NAME": SDK}, OURS, ["hr_middleware.E007"], id="conflicting"),
    pytest.param(
        {"WEBSITE_UUID": UUID, "SAMESITE": "None", "SECURE": False}, OURS, ["hr_middleware.E007"], id="samesite-none"
    ),
    pytest.param({"WEBSITE_UUID": UUID, "CONSENT": "shop.nowhere.consent"}, OURS, ["hr_middleware.E008"], id="import"),
    pytest.param(
        {"WEBSITE_UUID": "shop-1", "TIMEOUTT": 1, "MAX_AGE": "1"},
        OURS,
        ["hr_middleware.E004", "hr_middleware.E005", "hr_middleware.E006"],
        id="every-problem-at-once",
    ),
    pytest.param({"WEBSITE_UUID": UUID}, [], ["hr_middleware.W001"], id="middleware-not-installed"),
]


@pytest.mark.parametrize(("config", "middleware", "expected"), CHECKS)
def test_system_checks(config: Any, middleware: list[str], expected: list[str]) -> None:
    with override_settings(MIDDLEWARE=middleware):
        if config is MISSING:
            del settings.HELLO_RETAIL
        else:
            settings.HELLO_RETAIL = config
        messages = checks.run_checks(tags=["hr_middleware"])

    assert [m.id for m in messages] == expected
    assert all(m.hint for m in messages)


def test_unknown_key_hint_names_the_closest_option() -> None:
    with override_settings(HELLO_RETAIL={"WEBSITE_UUID": UUID, "timout": 1}):
        (message,) = checks.run_checks(tags=["hr_middleware"])

    assert message.hint == "Did you mean 'TIMEOUT'?"


def test_manage_py_check_reports_the_error_ids() -> None:
    """The optional app registers the checks before ``manage.py check`` runs."""
    manage = ROOT / "examples" / "django_app" / "manage.py"
    env = {**os.environ, "HELLO_RETAIL_WEBSITE_UUID": "shop-1"}

    done = subprocess.run(
        [sys.executable, str(manage), "check"], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 1
    assert "(hr_middleware.E004) HELLO_RETAIL['WEBSITE_UUID']: 'shop-1' is not a UUID" in done.stderr


@pytest.fixture(autouse=True)
def _no_stray_visit() -> Iterator[None]:
    yield
    import hr_middleware

    assert hr_middleware.get_tracking_user_id() is None  # every visit was reset


@pytest.mark.anyio
async def test_grant_in_a_sync_view_under_the_asgi_handler(
    hello_retail: dict[str, Any], fake_hello_retail: FakeHelloRetail
) -> None:
    """A sync view runs in sync_to_async's thread: grant() mints on the request's loop."""
    async with asgi_client(hello_retail) as client:
        response = await client.post("/sync-grant/", headers={"User-Agent": "Mozilla/5.0"})

    assert response.status_code == 200
    assert response.json()["id"] == fake_hello_retail.minted[0]
    assert set(response.cookies) == {SERVER, SDK}


# -- Django's cache framework ----------------------------------------------------------------

VISITORS = [A, B, C]


@pytest.mark.parametrize("adapter", ["django", "django_async"])
def test_cache_page_never_serves_one_visitors_page_to_another(
    make_driver: Any, adapter: str, fake_hello_retail: FakeHelloRetail
) -> None:
    """``@cache_page`` stores the view's response before the middleware adds ``Vary: Cookie``."""
    from django.core.cache import cache

    cache.clear()
    driver = make_driver(adapter)

    seen = [driver.get("/cached", cookies={SERVER: v, SDK: v}).app_id for v in VISITORS]
    first_visits = [driver.get("/cached") for _ in range(2)]

    assert seen == VISITORS
    assert [r.app_id for r in first_visits] == fake_hello_retail.minted
    assert len(set(fake_hello_retail.minted)) == 2
    assert "max-age" not in (first_visits[0].header("cache-control") or "")
    # The cache is at work for a page that does not read the id.
    assert "max-age=60" in (
        driver.get("/cached-silent", cookies={SERVER: VISITORS[0], SDK: VISITORS[0]}).header("cache-control") or ""
    )


UPDATE_CACHE = "django.middleware.cache.UpdateCacheMiddleware"
FETCH_FROM_CACHE = "django.middleware.cache.FetchFromCacheMiddleware"


@pytest.mark.parametrize(
    "middleware",
    [
        pytest.param([MIDDLEWARE_PATH, UPDATE_CACHE, FETCH_FROM_CACHE], id="ours-outside"),
        pytest.param([UPDATE_CACHE, MIDDLEWARE_PATH, FETCH_FROM_CACHE], id="ours-between"),
        pytest.param([UPDATE_CACHE, FETCH_FROM_CACHE, MIDDLEWARE_PATH], id="ours-inside"),
    ],
)
def test_the_site_wide_cache_in_any_order_never_serves_one_visitors_page_to_another(
    hello_retail: dict[str, Any], fake_hello_retail: FakeHelloRetail, middleware: list[str]
) -> None:
    from django.core.cache import cache

    cache.clear()
    with override_settings(HELLO_RETAIL=hello_retail, MIDDLEWARE=middleware, CACHE_MIDDLEWARE_SECONDS=60):
        client = Client()
        seen = []
        for visitor in VISITORS:
            client.cookies.clear()
            response = client.get("/", headers=visitor_headers(visitor))
            seen.append(response.json()["id"])
        minted = []
        for _ in range(2):
            client.cookies.clear()
            minted.append(client.get("/", headers=PAGE).json()["id"])
        client.cookies.clear()
        silent = client.get("/silent", headers=visitor_headers(VISITORS[0]))

    assert seen == VISITORS
    assert minted == fake_hello_retail.minted
    assert len(set(minted)) == 2
    assert "max-age=60" in silent.headers.get("Cache-Control", "")  # the cache is at work


def test_cache_page_under_our_wsgi_middleware_never_serves_one_visitors_page_to_another(
    hello_retail: dict[str, Any], fake_hello_retail: FakeHelloRetail
) -> None:
    """The outer WSGI middleware decides; reading the id in the view still keeps the page out of Django's cache."""
    from django.core.cache import cache
    from django.core.wsgi import get_wsgi_application
    from werkzeug.test import Client as WerkzeugClient

    from hr_middleware.wsgi import TrackingUserMiddleware as WSGIMiddleware

    cache.clear()
    with override_settings(HELLO_RETAIL=hello_retail, ROOT_URLCONF="tests.django_site.urls"):
        app = WSGIMiddleware(get_wsgi_application(), settings=fake_hello_retail.settings())
        client = WerkzeugClient(app, use_cookies=False)
        seen = []
        for visitor in VISITORS:
            cookie = f"{SERVER}={visitor}; {SDK}={visitor}"
            response = client.get("/cached", headers={**PAGE, "Cookie": cookie}, buffered=True)
            assert response.json is not None
            seen.append(response.json["id"])
        app.close()

    assert seen == VISITORS


# -- Django's cache: a shop middleware that reads the id first; a project wrapped by our WSGI/ASGI middleware

#: Returning visitors with distinct id cookies, then first visits (None): each page must show its own id.
MANY = [*visitors(60), None, None, None]


def visitor_headers(visitor: str | None) -> dict[str, str]:
    return {**PAGE, "Cookie": f"{SERVER}={fresh(visitor)}; {SDK}={visitor}"} if visitor else dict(PAGE)


def assert_every_page_shows_its_own_visitor(sent: list[str | None], seen: list[Any], minted: list[str]) -> None:
    """The page of visitor ``sent[i]`` showed ``seen[i]``: their own id, or for a first visit
    (None) the id minted for it (first visits are sent one after another)."""
    assert len(minted) == sent.count(None)
    new = iter(minted)
    expected = [visitor or next(new) for visitor in sent]
    wrong = [(own, shown) for own, shown in zip(expected, seen, strict=True) if own != shown]
    assert not wrong, f"{len(wrong)} of {len(sent)} pages showed another visitor's id, e.g. {wrong[:2]}"


def pages_through_django(stack: str, config: dict[str, Any], paths: list[tuple[str, str | None]]) -> list[Any]:
    """Each (path, visitor) sent through Django's test client (sync stack) or its ASGI handler
    (async stack): the responses' JSON body (None when not JSON) and Cache-Control."""
    if stack == "sync":
        client = Client()
        answers = []
        for path, visitor in paths:
            client.cookies.clear()
            response = client.get(path, headers=visitor_headers(visitor))
            json_body = response.json() if response["Content-Type"] == "application/json" else None
            answers.append((json_body, response.get("Cache-Control")))
        return answers

    async def through_asgi() -> list[Any]:
        answers = []
        async with asgi_client(config) as client:
            for path, visitor in paths:
                client.cookies.clear()
                response = await client.get(path, headers=visitor_headers(visitor))
                json_body = response.json() if response.headers["content-type"] == "application/json" else None
                answers.append((json_body, response.headers.get("cache-control")))
        return answers

    return asyncio.run(through_asgi())


@pytest.mark.parametrize("stack", ["sync", "async"])
@pytest.mark.parametrize(
    ("middleware", "page", "silent"),
    [
        pytest.param([MIDDLEWARE_PATH, SHOP_MIDDLEWARE], "/cached-shop-visitor", "/cached-silent", id="cache_page"),
        pytest.param(
            [MIDDLEWARE_PATH, SHOP_MIDDLEWARE, UPDATE_CACHE, FETCH_FROM_CACHE],
            "/shop-visitor",
            "/silent",
            id="site-cache-after-the-shop",
        ),
        pytest.param(
            [MIDDLEWARE_PATH, UPDATE_CACHE, SHOP_MIDDLEWARE, FETCH_FROM_CACHE],
            "/shop-visitor",
            "/silent",
            id="site-cache-around-the-shop",
        ),
        pytest.param(
            [UPDATE_CACHE, STAMPING_MIDDLEWARE, MIDDLEWARE_PATH, FETCH_FROM_CACHE],
            "/stamped",
            "/silent",
            id="site-cache-outside-a-middleware-that-reads-once-ours-returned",
        ),
    ],
)
def test_a_shop_middleware_that_reads_the_id_never_gets_a_page_shared(
    hello_retail: dict[str, Any],
    fake_hello_retail: FakeHelloRetail,
    stack: str,
    middleware: list[str],
    page: str,
    silent: str,
) -> None:
    """The shop's middleware reads the id, then the cache's lookup (``@cache_page``'s or
    ``FetchFromCacheMiddleware``'s) runs and would have the page stored, before ours adds ``Vary: Cookie``;
    or it reads the id once ours has returned (too late for ``Vary: Cookie``), inside the site cache."""
    from django.core.cache import cache

    cache.clear()
    paths = [(page, visitor) for visitor in MANY] + [(silent, MANY[0])]
    with override_settings(
        HELLO_RETAIL=hello_retail,
        MIDDLEWARE=middleware,
        CACHE_MIDDLEWARE_SECONDS=60,
        ROOT_URLCONF=ASYNC_URLS if stack == "async" else "tests.django_site.urls",
    ):
        *pages, (_, silent_cache_control) = pages_through_django(stack, hello_retail, paths)

    assert_every_page_shows_its_own_visitor(MANY, [body["id"] for body, _ in pages], fake_hello_retail.minted)
    assert "max-age=60" in (silent_cache_control or "")  # the cache is at work for a page without the id


@pytest.mark.loopback
@pytest.mark.parametrize("setup", ["cache_page", "site_cache"])
@pytest.mark.parametrize("adapter", ["wsgi", "asgi"])
def test_a_django_project_wrapped_only_by_our_wsgi_or_asgi_middleware_never_shares_a_page(
    fake_hello_retail: FakeHelloRetail, adapter: str, setup: str
) -> None:
    """No Django middleware of ours: the views read ``get_tracking_user_id()``; ``@cache_page`` or the
    site-wide cache store the page inside Django, before our WSGI/ASGI middleware adds ``Vary: Cookie``.

    In a process of its own: there, nothing but building our middleware around Django's
    application can have readied Django's cache for it."""
    argv = [sys.executable, "-m", "tests.django_site.wrapped", adapter, setup]
    new = MANY.count(None)
    argv += [fake_hello_retail.url, fake_hello_retail.website_uuid, str(len(MANY) - new), str(new)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr

    *pages, silent = json.loads(done.stdout)
    assert [page["sent"] for page in pages] == MANY
    seen = [json.loads(page["body"])["id"] for page in pages]
    assert_every_page_shows_its_own_visitor(MANY, seen, fake_hello_retail.minted)
    assert "max-age=60" in (silent["cache_control"] or "")  # the cache is at work for a page without the id


# -- a forgotten middleware ----------------------------------------------------------------------

FORGOTTEN = (
    "get_tracking_user_id() was called in a Django request that no hr-middleware middleware served, so it "
    "is None: add 'hr_middleware.django.TrackingUserMiddleware' to settings.MIDDLEWARE"
)


@pytest.mark.parametrize("installed", [True, False])
def test_get_tracking_user_id_without_the_middleware_says_so_once(
    fake_hello_retail: FakeHelloRetail, installed: bool, hr_log: pytest.LogCaptureFixture
) -> None:
    """Without the app in INSTALLED_APPS no system check warns: a view got None silently."""
    # Said once per MIDDLEWARE: a list no other test uses.
    middleware = [MIDDLEWARE_PATH] if installed else ["django.middleware.common.CommonMiddleware"]
    hello_retail = {"WEBSITE_UUID": fake_hello_retail.website_uuid, "API_URL": fake_hello_retail.url}
    with override_settings(MIDDLEWARE=middleware, HELLO_RETAIL=hello_retail):
        client = Client()
        responses = [client.get("/visitor", headers=PAGE) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3
    warnings = [r.getMessage() for r in hr_log.records if r.levelno == logging.WARNING]
    assert warnings == ([] if installed else [FORGOTTEN])


@pytest.mark.anyio
async def test_an_async_view_without_the_middleware_says_so_once(hr_log: pytest.LogCaptureFixture) -> None:
    # Said once per MIDDLEWARE: a list no other test uses.
    middleware = ["django.middleware.http.ConditionalGetMiddleware"]
    with override_settings(MIDDLEWARE=middleware, ROOT_URLCONF="tests.django_site.async_urls"):
        client = AsyncClient()
        responses = [await client.get("/visitor", headers=PAGE) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3
    assert [r.getMessage() for r in hr_log.records if r.levelno == logging.WARNING] == [FORGOTTEN]


def test_the_script_tag_without_the_middleware_says_so_once(hr_log: pytest.LogCaptureFixture) -> None:
    """``{% hello_retail_script %}`` said only that it ran outside a request; now it names the line to add."""
    from hr_middleware import script
    from hr_middleware._core.log import SCRIPT_NOT_RENDERED

    script._logged.clear()  # another test may have logged the comment's reason already
    # Said once per MIDDLEWARE: a list no other test uses.
    middleware = ["django.middleware.clickjacking.XFrameOptionsMiddleware"]
    with override_settings(MIDDLEWARE=middleware, ROOT_URLCONF="tests.django_site.script_urls"):
        client = Client()
        responses = [client.get("/", headers=PAGE) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3
    assert all(b"<!-- hr-middleware: Hello Retail's script is not rendered" in r.content for r in responses)
    assert [r.getMessage() for r in hr_log.records if r.levelno == logging.WARNING] == [
        "hello_retail_script() was rendered in a Django request that no hr-middleware middleware served, so it "
        "rendered no script: add 'hr_middleware.django.TrackingUserMiddleware' to settings.MIDDLEWARE",
        SCRIPT_NOT_RENDERED % "this code does not run inside a request that the middleware serves",
    ]


def test_settings_values_as_people_write_them(fake_hello_retail: FakeHelloRetail) -> None:
    """A UUID with the newline of the file it came from, SameSite in lower case: both were refused."""
    hello_retail = {
        "WEBSITE_UUID": f" {fake_hello_retail.website_uuid}\n",
        "API_URL": fake_hello_retail.url,
        "SAMESITE": "strict",
    }
    with override_settings(HELLO_RETAIL=hello_retail):
        response = Client().get("/", headers=PAGE)

    assert fake_hello_retail.mint_count == 1
    assert response.cookies["helloRetailTrackingUserId"]["samesite"] == "Strict"
    assert checks.run_checks(tags=["hr_middleware"]) == []
