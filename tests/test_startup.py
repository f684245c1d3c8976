"""Misconfiguration is caught at start-up, loudly, and never becomes error pages."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from typing import Any

import httpx
import pytest

from hr_middleware import asgi, wsgi
from hr_middleware._core.settings import Settings

from .drivers import PAGE, plain_wsgi_app, starlette_app
from .ids import UUID
from .servers import ROOT, free_port


@pytest.mark.parametrize("middleware", [wsgi.TrackingUserMiddleware, asgi.TrackingUserMiddleware], ids=["wsgi", "asgi"])
def test_a_misspelt_option_raises_at_construction_with_a_suggestion(middleware: Any) -> None:
    with pytest.raises(TypeError, match=r"timout: not an option of hr-middleware; did you mean 'timeout'\?"):
        middleware(plain_wsgi_app, website_uuid=UUID, timout=0.5)


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


def _lazily_built_app() -> Any:
    """Starlette with ``add_middleware`` and a misspelt option: built on the first ASGI call."""
    app = starlette_app()
    app.add_middleware(asgi.TrackingUserMiddleware, website_uuid=UUID, timout=0.5)
    return app


def test_a_lazily_built_middleware_refuses_the_lifespan_start_up() -> None:
    app = _lazily_built_app()
    sent: list[dict[str, Any]] = []

    async def start() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "lifespan.startup"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    asyncio.run(start())

    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "timout: not an option of hr-middleware; did you mean 'timeout'?" in sent[0]["message"]


def test_requests_that_reach_it_all_the_same_are_served_without_ids(hr_log: pytest.LogCaptureFixture) -> None:
    """A server without lifespan: pages are served, an ERROR is logged once, never a 500 from us."""
    app = _lazily_built_app()

    async def get_twice() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            return [await client.get("/", headers=PAGE) for _ in range(2)]

    responses = asyncio.run(get_twice())

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
