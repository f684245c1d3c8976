"""A user's first tests: the browser headers that make a first visit mint, and why nothing minted when it did not.

Each framework's own test client, as a user's test drives it: without browser
headers nothing mints (by design: only a person's page navigation does); with
``hr_middleware.testing.BROWSER_HEADERS`` (or the ``browser_headers`` fixture)
a first visit mints once. When a test reads an id the fake never minted, the
error says why instead of a bare ``IndexError``, and the ``hr_middleware``
logger says at DEBUG why the request did not mint.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import requests
from flask import Flask

from hr_middleware import RequestFacts, get_tracking_user_id, is_bot, is_page_navigation
from hr_middleware.fastapi import TrackingUserId  # at module level: the endpoint's annotation is a string
from hr_middleware.testing import BROWSER_HEADERS, DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode
from hr_middleware.testing._minted import NothingMintedError

from .django_site import configure
from .servers import ROOT

#: The fake over a real socket, as users get it.
pytestmark = pytest.mark.loopback

pytest_plugins = ["pytester"]

#: A first visit: one test client's GET / with *headers*; returns the id the page shows.
FirstVisit = Callable[[FakeHelloRetail, Mapping[str, str]], str]


def flask_visit(fake: FakeHelloRetail, headers: Mapping[str, str]) -> str:
    from hr_middleware.flask import HelloRetail

    app = Flask("shop")
    HelloRetail(app, website_uuid=fake.website_uuid, api_url=fake.url)
    app.get("/")(lambda: get_tracking_user_id() or "")
    return app.test_client().get("/", headers=headers, buffered=True).text


def django_visit(fake: FakeHelloRetail, headers: Mapping[str, str]) -> str:
    configure()
    from django.test import Client, override_settings

    with override_settings(HELLO_RETAIL={"WEBSITE_UUID": fake.website_uuid, "API_URL": fake.url}):
        return Client().get("/visitor", headers=headers).json()["id"] or ""


def starlette_visit(fake: FakeHelloRetail, headers: Mapping[str, str]) -> str:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from hr_middleware.asgi import TrackingUserMiddleware

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(get_tracking_user_id() or "")

    app = Starlette(
        routes=[Route("/", home)], middleware=[Middleware(TrackingUserMiddleware, settings=fake.settings())]
    )
    with TestClient(app) as client:
        return client.get("/", headers=dict(headers)).text


def fastapi_visit(fake: FakeHelloRetail, headers: Mapping[str, str]) -> str:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from hr_middleware.asgi import TrackingUserMiddleware

    app = FastAPI()
    app.add_middleware(TrackingUserMiddleware, settings=fake.settings())

    @app.get("/")
    async def home(tracking_user_id: TrackingUserId) -> str:
        return tracking_user_id or ""

    with TestClient(app) as client:
        return str(client.get("/", headers=dict(headers)).json())


def wsgi_visit(fake: FakeHelloRetail, headers: Mapping[str, str]) -> str:
    from werkzeug.test import Client

    from hr_middleware.wsgi import TrackingUserMiddleware

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [(get_tracking_user_id() or "").encode()]

    wrapped = TrackingUserMiddleware(application, settings=fake.settings())
    return Client(wrapped).get("/", headers=dict(headers), buffered=True).text


VISITS = [
    pytest.param(flask_visit, id="flask"),
    pytest.param(django_visit, id="django"),
    pytest.param(starlette_visit, id="starlette"),
    pytest.param(fastapi_visit, id="fastapi"),
    pytest.param(wsgi_visit, id="wsgi"),
]


def test_the_browser_headers_are_a_page_navigation_by_a_person(fake_hello_retail: FakeHelloRetail) -> None:
    seen: list[bool] = []

    def mint_when(request: RequestFacts) -> bool:
        seen.append(is_page_navigation(request))
        return False

    from werkzeug.test import Client

    from hr_middleware.wsgi import TrackingUserMiddleware

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    app = TrackingUserMiddleware(application, settings=fake_hello_retail.settings(mint_when=mint_when))
    Client(app).get("/", headers=dict(BROWSER_HEADERS)).close()

    assert seen == [True]
    assert not is_bot(BROWSER_HEADERS["User-Agent"])
    assert BROWSER_HEADERS["Sec-Fetch-Mode"] == "navigate"
    assert BROWSER_HEADERS["Sec-Fetch-Dest"] == "document"
    assert BROWSER_HEADERS["Accept"].startswith("text/html")


@pytest.mark.parametrize("visit", VISITS)
def test_a_first_visit_with_the_browser_headers_mints_once(
    visit: FirstVisit, fake_hello_retail: FakeHelloRetail
) -> None:
    shown = visit(fake_hello_retail, BROWSER_HEADERS)

    assert fake_hello_retail.mint_count == 1
    assert shown == fake_hello_retail.minted[0]


@pytest.mark.parametrize("visit", VISITS)
def test_a_test_clients_own_headers_mint_nothing_and_the_fake_says_why(
    visit: FirstVisit, fake_hello_retail: FakeHelloRetail, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="hr_middleware"):
        shown = visit(fake_hello_retail, {})

    assert (shown, fake_hello_retail.mint_count) == ("", 0)
    with pytest.raises(NothingMintedError, match=r"pass headers=hr_middleware\.testing\.BROWSER_HEADERS") as raised:
        fake_hello_retail.minted[0]
    assert isinstance(raised.value, AssertionError)  # pytest reports a failed expectation, with the message
    assert isinstance(raised.value, IndexError)  # what code that catches a short list's error expects
    (said,) = [r for r in caplog.records if r.msg.startswith("no id minted")]
    assert said.levelno == logging.DEBUG
    assert said.getMessage().startswith("no id minted for GET '/")
    assert said.getMessage().endswith(
        "a test client sends no browser headers: pass hr_middleware.testing.BROWSER_HEADERS"
    )


def test_a_page_navigation_logs_no_reason(fake_hello_retail: FakeHelloRetail, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="hr_middleware"):
        wsgi_visit(fake_hello_retail, BROWSER_HEADERS)

    assert fake_hello_retail.mint_count == 1
    assert [r.getMessage() for r in caplog.records if r.msg.startswith("no id minted")] == []


def test_a_shops_own_mint_when_is_named_without_the_test_client_hint(
    fake_hello_retail: FakeHelloRetail, caplog: pytest.LogCaptureFixture
) -> None:
    from werkzeug.test import Client

    from hr_middleware.wsgi import TrackingUserMiddleware

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    wrapped = TrackingUserMiddleware(application, settings=fake_hello_retail.settings(mint_when=lambda r: False))
    with caplog.at_level(logging.DEBUG, logger="hr_middleware"):
        Client(wrapped).get("/shop", headers=dict(BROWSER_HEADERS)).close()

    assert [r.getMessage() for r in caplog.records if r.msg.startswith("no id minted")] == [
        "no id minted for GET '/shop': the shop's mint_when option said not to mint for this request"
    ]


def test_mints_that_failed_are_named_as_such(fake_hello_retail: FakeHelloRetail) -> None:
    fake_hello_retail.mode = Mode.SERVER_ERROR
    wsgi_visit(fake_hello_retail, BROWSER_HEADERS)

    with pytest.raises(AssertionError, match=r"1 of the 1 mint request\(s\) that reached it failed as told"):
        fake_hello_retail.minted[0]


def test_minted_is_still_a_list_of_the_ids(fake_hello_retail: FakeHelloRetail) -> None:
    first, second = fake_hello_retail.new_id(), fake_hello_retail.new_id()

    assert fake_hello_retail.minted == [first, second]
    assert fake_hello_retail.minted[-1] == second
    assert fake_hello_retail.minted[:1] == [first]
    assert list(fake_hello_retail.minted) == [first, second]
    with pytest.raises(AssertionError, match=r"minted\[2\]: the fake minted 2 id\(s\)"):
        fake_hello_retail.minted[2]


USERS_TESTS = """
from flask import Flask
from hr_middleware import get_tracking_user_id
from hr_middleware.flask import HelloRetail


def make_client(fake):
    app = Flask("shop")
    HelloRetail(app, website_uuid=fake.website_uuid, api_url=fake.url)
    app.get("/")(lambda: get_tracking_user_id() or "")
    return app.test_client()


def test_with_the_fixture(fake_hello_retail, browser_headers):
    browser_headers["X-Mine"] = "changed: a copy for this test"
    assert make_client(fake_hello_retail).get("/", headers=browser_headers).text == fake_hello_retail.minted[0]


def test_with_the_fixture_again(fake_hello_retail, browser_headers):
    assert "X-Mine" not in browser_headers


def test_forgot_the_headers(fake_hello_retail):
    assert make_client(fake_hello_retail).get("/").text == fake_hello_retail.minted[0]
"""


def test_a_users_test_gets_the_browser_headers_fixture_and_a_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USERS_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["E *NothingMintedError: FakeHelloRetail.minted[[]0]: the fake minted 0 id(s)*"])
    result.stdout.no_fnmatch_line("*def __getitem__*")  # the user's line, not the fake's insides
    result.stdout.fnmatch_lines(["*pass headers=hr_middleware.testing.BROWSER_HEADERS*"])
    result.stdout.no_fnmatch_line("*IndexError: list index out of range*")


# -- python -m hr_middleware.testing -------------------------------------------------------------------


def test_the_fakes_front_page_says_what_it_is_and_what_it_answers(fake_hello_retail: FakeHelloRetail) -> None:
    import requests

    fake_hello_retail.new_id()
    page = requests.get(fake_hello_retail.url + "/", timeout=5)

    assert (page.status_code, page.headers["Content-Type"]) == (200, "text/plain; charset=utf-8")
    assert page.text.startswith(
        f"hr-middleware's fake Hello Retail (hr_middleware.testing.FakeHelloRetail) at {fake_hello_retail.url}\n"
    )
    assert f'api_url="{fake_hello_retail.url}", website_uuid="{fake_hello_retail.website_uuid}"' in page.text
    for path in ("/serve/trackingUser ", "/serve/recoms ", "/serve/search ", "/serve/pages/<key> ", "GET /images/"):
        assert path in page.text
    # What issues 22 and 23 added: the customer endpoints, the script's stand-in and the product pages.
    for path in ("/serve/collect/customerId ", "/serve/customer/bias ", "GET /helloretail.js", "GET /products/"):
        assert path in page.text
    assert f'script_url="{fake_hello_retail.script_url}"' in page.text
    assert "So far: 1 id(s) minted, 0 other call(s)." in page.text
    assert fake_hello_retail.requests == []  # looking at it is not a call to Hello Retail


def test_the_command_line_fake_logs_each_mint_and_call() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "hr_middleware.testing"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # the first line is the URL alone, as before
        uuid = {"websiteUuid": DEFAULT_WEBSITE_UUID}
        minted = requests.post(url + "/serve/trackingUser", json=uuid, timeout=5).json()["id"]
        recoms = {**uuid, "trackingUserId": minted, "requests": [{"key": "k", "format": "json"}]}
        assert requests.post(url + "/serve/recoms", json=recoms, timeout=5).status_code == 200
        assert requests.get(url + "/", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)  # bounded only so that a fake that never stops cannot hang the suite

    assert process.returncode == 0
    logged = [line.split(" ", 2)[2] for line in err.splitlines()]  # without the time stamp
    assert logged == [
        f"POST /serve/trackingUser 200 minted {minted}",
        f"POST /serve/recoms 200 trackingUserId={minted!r}",
        "GET / 200",
    ], err
    assert json.dumps(minted) not in out  # the log is on stderr; stdout is the URL and one line of help
