"""Misconfiguration is caught at start-up, loudly, and never becomes error pages."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests

from hr_middleware import asgi, wsgi
from hr_middleware._core.settings import Settings

from .drivers import PAGE, plain_wsgi_app, starlette_app
from .ids import UUID
from .servers import ROOT, free_port


@pytest.mark.parametrize(
    ("middleware", "app"),
    [(wsgi.TrackingUserMiddleware, plain_wsgi_app), (asgi.TrackingUserMiddleware, starlette_app())],
    ids=["wsgi", "asgi"],
)
def test_a_misspelt_option_raises_at_construction_with_a_suggestion(middleware: Any, app: Any) -> None:
    with pytest.raises(TypeError, match=r"timout: not an option of hr-middleware; did you mean 'timeout'\?"):
        middleware(app, website_uuid=UUID, timout=0.5)


def test_a_misspelt_flask_key_raises_with_a_suggestion() -> None:
    from flask import Flask

    from hr_middleware.flask import HelloRetail

    app = Flask("typo")
    app.config.update(HELLO_RETAIL_WEBSITE_UUID=UUID, HELLO_RETAIL_TIMOUT=0.5)

    with pytest.raises(ValueError, match=r"HELLO_RETAIL_TIMOUT: unknown .*did you mean 'HELLO_RETAIL_TIMEOUT'\?"):
        HelloRetail(app)


def test_a_misspelt_flask_keyword_raises_with_a_suggestion() -> None:
    from flask import Flask

    from hr_middleware.flask import HelloRetail

    app = Flask("typo")
    app.config.update(HELLO_RETAIL_WEBSITE_UUID=UUID)

    with pytest.raises(TypeError, match=r"timout: not an option of hr-middleware; did you mean 'timeout'\?"):
        HelloRetail(app, timout=0.5)


def test_a_missing_website_uuid_is_named() -> None:
    with pytest.raises(TypeError, match="website_uuid: required"):
        Settings.merge(None, {"timeout": 0.5})


def lifespan_start_up(app: Any) -> list[dict[str, Any]]:
    """What *app* sends when an ASGI server starts its lifespan (as uvicorn does before serving)."""
    sent: list[dict[str, Any]] = []

    async def start() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "lifespan.startup"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    asyncio.run(start())
    return sent


def two_pages(app: Any) -> list[httpx.Response]:
    """Two page navigations to *app* from a server that never ran its lifespan."""

    async def get_twice() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            return [await client.get("/", headers=PAGE) for _ in range(2)]

    return asyncio.run(get_twice())


def _lazily_built_app() -> Any:
    """Starlette with ``add_middleware`` and a misspelt option: built on the first ASGI call."""
    app = starlette_app()
    app.add_middleware(asgi.TrackingUserMiddleware, website_uuid=UUID, timout=0.5)
    return app


def test_a_lazily_built_middleware_refuses_the_lifespan_start_up() -> None:
    app = _lazily_built_app()
    sent = lifespan_start_up(app)

    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "timout: not an option of hr-middleware; did you mean 'timeout'?" in sent[0]["message"]


def test_requests_that_reach_it_all_the_same_are_served_without_ids(hr_log: pytest.LogCaptureFixture) -> None:
    """A server without lifespan: pages are served, an ERROR is logged once, never a 500 from us."""
    app = _lazily_built_app()
    responses = two_pages(app)

    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json()["id"] is None
    assert "set-cookie" not in responses[0].headers
    errors = [r.getMessage() for r in hr_log.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "timout: not an option" in errors[0]


@pytest.mark.parametrize(
    ("argv", "exit_code_says_so"),
    [
        pytest.param(["uvicorn", "tests.misconfigured_app:app"], True, id="uvicorn"),
        # hypercorn stops and prints the reason, but its own exit code stays 0 (as of 0.18).
        pytest.param(["hypercorn", "tests.misconfigured_app:app"], False, id="hypercorn"),
    ],
)
def test_a_real_server_refuses_to_start_with_the_reason(argv: list[str], exit_code_says_so: bool) -> None:
    """uvicorn's default ``--lifespan auto`` used to take the error for "no lifespan" and
    answer 500 to every request; now the server stops at start-up, naming the option.
    (A server that kept serving would make ``subprocess.run`` time out.)"""
    port = free_port()
    bind = ["--port", str(port)] if argv[0] == "uvicorn" else ["--bind", f"127.0.0.1:{port}"]
    done = subprocess.run(
        [sys.executable, "-m", *argv, *bind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode != 0) is exit_code_says_so
    assert "timout: not an option of hr-middleware; did you mean 'timeout'?" in done.stdout + done.stderr


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("from hr_middleware.asgi import TrackingUserMiddleware as M; M(None, website_uuid=U)", id="asgi"),
        pytest.param("from hr_middleware.client import AsyncHelloRetailClient as C; C(website_uuid=U)", id="client"),
    ],
)
def test_without_httpx_the_error_names_the_extra(code: str) -> None:
    """A core-only install: ``sys.modules["httpx"] = None`` makes ``import httpx`` fail as if it were absent."""
    script = f"import sys; sys.modules['httpx'] = None; U = {UUID!r}; {code}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 1
    assert "ImportError" in done.stderr
    assert 'pip install "hr-middleware[asgi]"' in done.stderr


#: A child interpreter where ``import httpx`` fails as if httpx were not installed (a
#: core-only install: no ``[asgi]`` extra); the server then runs in that same process.
_WITHOUT_HTTPX = "import sys; sys.modules['httpx'] = None\n"
#: The servers, in-process (a worker process of their own might be a fresh interpreter,
#: which would find httpx), serving tests/no_httpx_app.py on {port}.
UVICORN = "import uvicorn; uvicorn.run('tests.no_httpx_app:app', port={port}, lifespan={lifespan!r})"
HYPERCORN = (
    "import asyncio; from hypercorn.asyncio import serve; from hypercorn.config import Config; "
    "from tests.no_httpx_app import app; config = Config(); config.bind = ['127.0.0.1:{port}']; "
    "asyncio.run(serve(app, config))"
)


def _server_without_httpx(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WITHOUT_HTTPX + code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _until_serving(process: subprocess.Popen[str]) -> tuple[bool, str]:
    """Read the server's lines until it says it serves (True) or exits (False).

    No clock: the server's own lines say which happened first.
    """
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Uvicorn running on" in line or "Running on http" in line:
            return True, "".join(lines)
    return False, "".join(lines)


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    return process.communicate(timeout=30)[0]


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(UVICORN.replace("{lifespan!r}", "'auto'"), id="uvicorn"),
        pytest.param(HYPERCORN, id="hypercorn"),
    ],
)
def test_without_httpx_a_real_server_refuses_to_start_naming_the_extra(code: str) -> None:
    """``add_middleware`` builds the middleware at the lifespan start-up: without httpx,
    uvicorn took the ImportError for "lifespan unsupported" and answered 500 to every request."""
    process = _server_without_httpx(code.format(port=free_port()))

    serving, output = _until_serving(process)
    if serving:
        output += _stop(process)

    assert not serving, output
    assert process.wait(timeout=30) != 0, output
    assert 'pip install "hr-middleware[asgi]"' in output


def test_without_httpx_and_without_lifespan_pages_are_served_without_ids() -> None:
    """``uvicorn --lifespan off`` cannot be refused: the middleware is built at the first
    request, which is served (no 500) without an id, and the reason is logged once."""
    port = free_port()
    process = _server_without_httpx(UVICORN.format(port=port, lifespan="off"))
    output = ""
    try:
        serving, output = _until_serving(process)
        assert serving, output
        responses = [requests.get(f"http://127.0.0.1:{port}/", headers=PAGE, timeout=30) for _ in range(2)]
    finally:
        output += _stop(process)

    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json() for r in responses] == [{"page": "served"}] * 2
    assert "set-cookie" not in responses[0].headers
    assert output.count('pip install "hr-middleware[asgi]"') == 1, output


# -- the wrong adapter is named when it is built -------------------------------------------------


def _flask_app() -> Any:
    from flask import Flask

    app = Flask("wrong_adapter")
    app.route("/")(lambda: "served")
    return app


def _fastapi_app() -> Any:
    from fastapi import FastAPI

    return FastAPI()


def _django_wsgi() -> Any:
    from django.core.handlers.wsgi import WSGIHandler

    from .django_site import configure

    configure()
    return WSGIHandler()


def _django_asgi() -> Any:
    from django.core.handlers.asgi import ASGIHandler

    from .django_site import configure

    configure()
    return ASGIHandler()


async def _bare_asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app as a plain coroutine function."""


WSGI_APPS = [
    pytest.param(lambda: plain_wsgi_app, id="function"),
    pytest.param(_flask_app, id="flask"),
    pytest.param(lambda: _flask_app().wsgi_app, id="flask.wsgi_app"),
    pytest.param(_django_wsgi, id="django-wsgi"),
]
ASGI_APPS = [
    pytest.param(lambda: _bare_asgi_app, id="function"),
    pytest.param(starlette_app, id="starlette"),
    pytest.param(_fastapi_app, id="fastapi"),
    pytest.param(_django_asgi, id="django-asgi"),
]


@pytest.mark.parametrize("make_app", WSGI_APPS)
def test_the_asgi_middleware_around_a_wsgi_app_names_the_wsgi_one(make_app: Callable[[], Any]) -> None:
    """It failed at request time, with "__call__() missing 1 required positional argument: 'send'"."""
    with pytest.raises(TypeError, match=r"is a WSGI app .*: use hr_middleware\.wsgi\.TrackingUserMiddleware") as caught:
        asgi.TrackingUserMiddleware(make_app(), website_uuid=UUID)

    assert "HelloRetail(app)" in str(caught.value)


@pytest.mark.parametrize("make_app", ASGI_APPS)
def test_the_wsgi_middleware_around_an_asgi_app_names_the_asgi_one(make_app: Callable[[], Any]) -> None:
    """It failed at request time, with "takes 3 positional arguments but 4 were given"."""
    with pytest.raises(TypeError, match=r"is an ASGI app \(it is async\): use hr_middleware\.asgi\.TrackingUser"):
        wsgi.TrackingUserMiddleware(make_app(), website_uuid=UUID)


@pytest.mark.parametrize(
    ("middleware", "make_app"),
    [*[pytest.param(wsgi.TrackingUserMiddleware, *p.values, id=f"wsgi-{p.id}") for p in WSGI_APPS]]
    + [pytest.param(asgi.TrackingUserMiddleware, *p.values, id=f"asgi-{p.id}") for p in ASGI_APPS],
)
def test_the_right_adapter_is_built(middleware: Any, make_app: Callable[[], Any]) -> None:
    assert isinstance(middleware(make_app(), website_uuid=UUID), middleware)


def _starlette_with_the_wsgi_middleware() -> Any:
    app = starlette_app()
    app.add_middleware(wsgi.TrackingUserMiddleware, website_uuid=UUID)  # type: ignore[arg-type]
    return app


def test_the_wsgi_middleware_in_add_middleware_refuses_the_lifespan_start_up() -> None:
    app = _starlette_with_the_wsgi_middleware()
    sent = lifespan_start_up(app)

    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "use hr_middleware.asgi.TrackingUserMiddleware" in sent[0]["message"]


def test_the_wsgi_middleware_in_add_middleware_without_lifespan_serves_pages(
    hr_log: pytest.LogCaptureFixture,
) -> None:
    """Without a lifespan the pages are served without ids, the reason logged once; no 500s."""
    app = _starlette_with_the_wsgi_middleware()
    responses = two_pages(app)

    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json()["id"] is None
    errors = [r.getMessage() for r in hr_log.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "use hr_middleware.asgi.TrackingUserMiddleware" in errors[0]


# -- settings= given a dict --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("middleware", "app"),
    [(wsgi.TrackingUserMiddleware, plain_wsgi_app), (asgi.TrackingUserMiddleware, starlette_app())],
    ids=["wsgi", "asgi"],
)
def test_settings_given_as_a_dict_are_taken_as_keyword_options(middleware: Any, app: Any) -> None:
    """It was ``AttributeError: 'dict' object has no attribute 'mint_url'``; keyword options still win."""
    built = middleware(app, settings={"website_uuid": UUID, "timeout": 0.5, "max_age": 60}, max_age=120)

    assert (built.settings.website_uuid, built.settings.timeout, built.settings.max_age) == (UUID, 0.5, 120)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"WEBSITE_UUID": UUID},
            "WEBSITE_UUID: not an option of hr-middleware; did you mean 'website_uuid'?",
            id="upper-case-keys",
        ),
        pytest.param(
            "12345678-90ab-4cde-8f01-234567890abc",
            "settings: expected a Settings or a dict of options, got str",
            id="a-string",
        ),
    ],
)
@pytest.mark.parametrize(
    ("middleware", "app"),
    [(wsgi.TrackingUserMiddleware, plain_wsgi_app), (asgi.TrackingUserMiddleware, starlette_app())],
    ids=["wsgi", "asgi"],
)
def test_settings_that_are_no_settings_are_named(middleware: Any, app: Any, settings: Any, message: str) -> None:
    with pytest.raises(TypeError) as caught:
        middleware(app, settings=settings)

    assert str(caught.value) == message
