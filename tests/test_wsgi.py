"""What is particular to WSGI: PEP 3333 conformance, streaming, close(), threads."""

from __future__ import annotations

import contextvars
import functools
import io
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

import pytest
import requests
from werkzeug.test import Client

from hr_middleware import get_tracking_user_id, is_valid_id
from hr_middleware._core.log import INTERNAL_ERROR
from hr_middleware.testing import FakeHelloRetail
from hr_middleware.wsgi import ENVIRON_KEY, TrackingUserMiddleware

from .drivers import PAGE, in_threads, plain_wsgi_app
from .ids import SDK, SERVER, A
from .servers import free_port, running


def browser(app: Any) -> Client:
    return Client(app, use_cookies=True)


@pytest.mark.parametrize("where", ["outer", "inner", "both"])
def test_passes_wsgiref_validate(fake_hello_retail: FakeHelloRetail, where: str) -> None:
    inner = validator(plain_wsgi_app) if where in ("inner", "both") else plain_wsgi_app
    app: Any = TrackingUserMiddleware(inner, settings=fake_hello_retail.settings())
    if where in ("outer", "both"):
        app = validator(app)
    client = browser(app)

    first = client.get("/", headers=PAGE, buffered=True)
    second = client.get("/", headers=PAGE, buffered=True)

    assert first.json is not None
    assert second.json is not None
    assert is_valid_id(first.json["id"])
    assert second.json["id"] == first.json["id"]
    assert fake_hello_retail.mint_count == 1


class Streamed:
    """A response iterable that reads the id while it is consumed and records close()."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(3):
            self.seen.append(get_tracking_user_id())
            yield b"chunk;"

    def close(self) -> None:
        self.seen.append(get_tracking_user_id())
        self.closed = True


def in_fresh_context(test: Callable[[], None]) -> None:
    """Run *test* in an empty context: earlier tests' unclosed responses cannot leak into it."""
    contextvars.Context().run(test)


def test_id_is_available_while_streaming_and_reset_after_close(fake_hello_retail: FakeHelloRetail) -> None:
    in_fresh_context(lambda: check_streaming(fake_hello_retail))


def check_streaming(fake_hello_retail: FakeHelloRetail) -> None:
    body = Streamed()

    def app(environ: dict[str, Any], start_response: Any) -> Streamed:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    response = Client(middleware, use_cookies=False).get(
        "/", headers={**PAGE, "Cookie": f"{SERVER}={A}"}, buffered=True
    )

    assert response.get_data() == b"chunk;chunk;chunk;"
    assert body.seen == [A, A, A, A]
    assert body.closed
    assert get_tracking_user_id() is None


def test_app_exception_propagates_and_context_is_reset(fake_hello_retail: FakeHelloRetail) -> None:
    in_fresh_context(lambda: check_app_exception(fake_hello_retail))


def check_app_exception(fake_hello_retail: FakeHelloRetail) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        assert get_tracking_user_id() == A
        raise KeyError("the app's own bug")

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_COOKIE": f"{SERVER}={A}", "wsgi.url_scheme": "http"}

    with pytest.raises(KeyError, match="the app's own bug"):
        middleware(environ, lambda *a: None)
    assert get_tracking_user_id() is None


def test_the_apps_own_headers_and_cookies_survive(fake_hello_retail: FakeHelloRetail) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(
            "201 Created",
            [("Content-Type", "text/html"), ("Set-Cookie", "session=s1; Path=/"), ("X-Shop", "1")],
        )
        return [b"<html>created</html>"]

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    response = Client(middleware).get("/", headers=PAGE)

    assert response.status_code == 201
    assert response.get_data() == b"<html>created</html>"
    assert response.headers["X-Shop"] == "1"
    cookies = [c.split("=")[0] for c in response.headers.getlist("Set-Cookie")]
    assert cookies == ["session", SERVER, SDK]


def test_file_wrapper_is_passed_through_for_sendfile(fake_hello_retail: FakeHelloRetail) -> None:
    in_fresh_context(lambda: check_file_wrapper(fake_hello_retail))


def check_file_wrapper(fake_hello_retail: FakeHelloRetail) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"file body"))

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.url_scheme": "http",
        "wsgi.file_wrapper": FileWrapper,
        "HTTP_COOKIE": f"{SERVER}={A}",
    }

    result = middleware(environ, lambda *a: None)

    assert isinstance(result, FileWrapper)
    assert get_tracking_user_id() is None


def test_each_thread_sees_only_its_own_id(fake_hello_retail: FakeHelloRetail) -> None:
    visitors = 32
    all_inside = threading.Barrier(visitors, timeout=10)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        before = get_tracking_user_id()
        all_inside.wait()  # every visitor's request is in the app at once, each with its id set
        after = get_tracking_user_id()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{before} {after} {environ[ENVIRON_KEY]}".encode()]

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    ids = [f"{i:024x}" for i in range(1, visitors + 1)]
    mismatches: list[str] = []

    def visitor(tracking_user_id: str) -> None:
        client = Client(middleware, use_cookies=False)
        for _ in range(5):
            body = client.get("/", headers={**PAGE, "Cookie": f"{SERVER}={tracking_user_id}"}).get_data(as_text=True)
            if body != f"{tracking_user_id} {tracking_user_id} {tracking_user_id}":
                mismatches.append(body)

    in_threads([functools.partial(visitor, i) for i in ids])  # a visitor's error fails the test

    assert mismatches == []
    assert fake_hello_retail.mint_attempts == 0


def test_options_may_be_given_next_to_settings(fake_hello_retail: FakeHelloRetail) -> None:
    middleware = TrackingUserMiddleware(plain_wsgi_app, settings=fake_hello_retail.settings(), share_with_sdk=False)

    assert middleware.settings.share_with_sdk is False
    assert middleware.settings.api_url == fake_hello_retail.url


def test_bad_option_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="website_uuid"):
        TrackingUserMiddleware(plain_wsgi_app, website_uuid="not-a-uuid")


def test_a_file_wrapper_that_is_a_function_is_fine(fake_hello_retail: FakeHelloRetail) -> None:
    """uWSGI's wsgi.file_wrapper is a built-in function, not a class (PEP 3333 allows it)."""

    def uwsgi_sendfile(filelike: Any, blksize: int = 8192) -> Any:
        return iter([filelike.read()])

    body = Streamed()

    def app(environ: dict[str, Any], start_response: Any) -> Streamed:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    middleware = TrackingUserMiddleware(app, settings=fake_hello_retail.settings())
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.url_scheme": "http",
        "wsgi.file_wrapper": uwsgi_sendfile,
        "HTTP_COOKIE": f"{SERVER}={A}",
    }

    result = middleware(environ, lambda *a: None)
    assert b"".join(result) == b"chunk;chunk;chunk;"
    result.close()  # type: ignore[attr-defined]
    assert body.closed


class _PoolFailingToClose:
    """A minter whose connection pool fails to close."""

    def mint(self) -> str | None:
        return None

    def close(self) -> None:
        raise RuntimeError("the pool is in a bad state")


def test_close_logs_a_pool_that_fails_to_close_and_returns(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    middleware = TrackingUserMiddleware(
        plain_wsgi_app,
        settings=fake_hello_retail.settings(),
        minter=_PoolFailingToClose(),  # type: ignore[arg-type]
    )

    middleware.close()  # a server's shutdown hook goes on

    assert [r.msg for r in hr_log.records if r.levelno >= 40] == [INTERNAL_ERROR]


# -- a server that never calls close(), or iterates the body on another thread ------------------------


def returning_environ(tracking_user_id: str) -> dict[str, Any]:
    """A returning visitor's page request, as a server hands it over."""
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.url_scheme": "http",
        "HTTP_COOKIE": f"{SERVER}={tracking_user_id}",
    }


def test_no_visit_is_current_once_the_middleware_returns_a_streamed_body(fake_hello_retail: FakeHelloRetail) -> None:
    body = Streamed()
    middleware = TrackingUserMiddleware(lambda environ, start_response: body, settings=fake_hello_retail.settings())

    result = middleware(returning_environ(A), lambda *a: None)

    assert get_tracking_user_id() is None  # the server may never call close(): nothing may linger till then
    assert b"".join(result) == b"chunk;chunk;chunk;"
    assert get_tracking_user_id() is None
    result.close()  # type: ignore[attr-defined]
    assert body.seen == [A, A, A, A]  # each chunk and close() still saw the visitor's id
    assert body.closed


def test_a_body_iterated_and_closed_on_another_thread_sees_the_id_in_each_chunk(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    body = Streamed()
    middleware = TrackingUserMiddleware(lambda environ, start_response: body, settings=fake_hello_retail.settings())
    result = middleware(returning_environ(A), lambda *a: None)
    consumed: list[bytes] = []

    def server_thread() -> None:  # a server that hands the body to another thread
        consumed.extend(result)
        result.close()  # type: ignore[attr-defined]
        consumed.append(b"closed" if get_tracking_user_id() is None else b"visit left behind")

    in_threads([server_thread])

    assert consumed == [b"chunk;", b"chunk;", b"chunk;", b"closed"]
    assert body.seen == [A, A, A, A]
    assert body.closed


def test_under_uvicorn_which_never_calls_close_the_next_request_on_the_thread_sees_no_id() -> None:
    """uvicorn's ``--interface wsgi`` iterates the body on a worker thread of its pool and never
    calls ``close()``: visitor A's id must not stay current on that thread for the next request,
    here one to another app of the same process (whose client calls would carry A's id)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "tests.unclosed_app:app"]
    rounds = []
    with running(argv, port=port) as url:
        for _ in range(3):
            streamed = requests.get(url + "/streamed", headers={**PAGE, "Cookie": f"{SERVER}={A}"}, timeout=10)
            other = requests.get(url + "/other", headers=PAGE, timeout=10).json()
            rounds.append(([json.loads(line) for line in streamed.text.splitlines()], other))

    for chunks, other in rounds:
        assert [chunk["id"] for chunk in chunks] == [A, A, A]
        assert other["thread"] == chunks[0]["thread"]  # the same worker thread: where A's visit would linger
        assert other["id"] is None
