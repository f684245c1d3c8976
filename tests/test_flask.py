"""The Flask extension: configuration, init_app, accessors, templates."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, render_template_string, request

from hr_middleware import OPT_OUT_ID, Settings, get_tracking_user_id, is_valid_id
from hr_middleware.client import HelloRetailClient
from hr_middleware.flask import HelloRetail
from hr_middleware.testing import FakeHelloRetail
from hr_middleware.wsgi import ENVIRON_KEY, TrackingUserMiddleware

from .drivers import PAGE, in_threads
from .ids import UUID


def make_app(fake: FakeHelloRetail, **config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(HELLO_RETAIL_WEBSITE_UUID=fake.website_uuid, HELLO_RETAIL_API_URL=fake.url, **config)

    @app.get("/")
    def index() -> dict[str, object]:
        return {"id": get_tracking_user_id(), "environ": request.environ[ENVIRON_KEY]}

    @app.get("/template")
    def template() -> str:
        return render_template_string("id={{ get_tracking_user_id() }}")

    return app


def test_one_line_setup_reads_app_config(fake_hello_retail: FakeHelloRetail) -> None:
    app = make_app(fake_hello_retail, HELLO_RETAIL_TIMEOUT=0.5, HELLO_RETAIL_SHARE_WITH_SDK=False)
    HelloRetail(app)

    response = app.test_client().get("/", headers=PAGE, buffered=True)

    assert response.json is not None
    assert is_valid_id(response.json["id"])
    assert response.json["environ"] == response.json["id"]
    assert [c.split("=")[0] for c in response.headers.getlist("Set-Cookie")] == ["helloRetailTrackingUserId"]
    settings = HelloRetail.settings(app)
    assert (settings.timeout, settings.share_with_sdk) == (0.5, False)


def test_application_factory_with_init_app(fake_hello_retail: FakeHelloRetail) -> None:
    hello_retail = HelloRetail(timeout=0.25)
    apps = [make_app(fake_hello_retail), make_app(fake_hello_retail, HELLO_RETAIL_COOKIE_NAME="hrid")]
    for app in apps:
        hello_retail.init_app(app)

    assert isinstance(HelloRetail.middleware(apps[0]), TrackingUserMiddleware)
    with apps[1].app_context():
        assert HelloRetail.settings().cookie_name == "hrid"
        assert HelloRetail.settings().timeout == 0.25  # keyword arguments win over config
    cookie_names = [
        c.split("=")[0]
        for c in apps[1].test_client().get("/", headers=PAGE, buffered=True).headers.getlist("Set-Cookie")
    ]
    assert cookie_names == ["hrid", "hello_retail_id"]


def test_returning_visitor_keeps_one_id_across_visits(fake_hello_retail: FakeHelloRetail) -> None:
    app = make_app(fake_hello_retail)
    HelloRetail(app)
    client = app.test_client()  # keeps cookies like a browser

    ids = {client.get("/", headers=PAGE, buffered=True).json["id"] for _ in range(4)}  # type: ignore[index]

    assert len(ids) == 1
    assert fake_hello_retail.mint_count == 1


def test_id_in_templates(fake_hello_retail: FakeHelloRetail) -> None:
    app = make_app(fake_hello_retail)
    HelloRetail(app)

    body = app.test_client().get("/template", headers=PAGE, buffered=True).get_data(as_text=True)

    assert body == f"id={fake_hello_retail.minted[0]}"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({}, "HELLO_RETAIL_WEBSITE_UUID: required", id="missing-uuid"),
        pytest.param({"HELLO_RETAIL_WEBSITE_UUID": "shop"}, "website_uuid", id="bad-uuid"),
        pytest.param(
            {"HELLO_RETAIL_WEBSITE_UUID": UUID, "HELLO_RETAIL_TIMOUT": 1},
            "HELLO_RETAIL_TIMOUT: unknown",
            id="typo",
        ),
    ],
)
def test_misconfiguration_fails_at_init_app(config: dict[str, object], message: str) -> None:
    app = Flask(__name__)
    app.config.update(config)

    with pytest.raises(ValueError, match=message):
        HelloRetail(app)


def test_accessor_without_extension_says_so() -> None:
    with pytest.raises(RuntimeError, match="not initialised"):
        HelloRetail.settings(Flask(__name__))


def test_native_request_for_hooks_is_a_flask_request(fake_hello_retail: FakeHelloRetail) -> None:
    seen: list[object] = []

    def mint_when(facts: object) -> bool:
        seen.append(facts.native)  # type: ignore[attr-defined]
        return True

    app = make_app(fake_hello_retail)
    HelloRetail(app, mint_when=mint_when)
    app.test_client().get("/?q=shoes", headers=PAGE, buffered=True)

    assert isinstance(seen[0], app.request_class)
    assert seen[0].args["q"] == "shoes"  # type: ignore[attr-defined]
    assert isinstance(HelloRetail.settings(app), Settings)


# -- app.config changed after HelloRetail(app): read again at the first request ----------------

#: Port 9 (discard): a config that was not read again would mint there and fail fast.
UNREAD_API_URL = "http://127.0.0.1:9"


def test_a_config_set_after_init_app_is_read_at_the_first_request(fake_hello_retail: FakeHelloRetail) -> None:
    """A test fixture or a factory that sets ``app.config`` after ``HelloRetail(app)``: it used
    to be ignored (the real Hello Retail was tried, the fake saw no mint)."""
    app = make_app(fake_hello_retail)
    app.config["HELLO_RETAIL_API_URL"] = UNREAD_API_URL
    HelloRetail(app)
    app.config.update(HELLO_RETAIL_API_URL=fake_hello_retail.url, HELLO_RETAIL_COOKIE_NAME="hrid")

    response = app.test_client().get("/", headers=PAGE, buffered=True)

    assert fake_hello_retail.mint_count == 1
    assert response.headers["Set-Cookie"].startswith(f"hrid={fake_hello_retail.minted[0]}")
    assert HelloRetail.settings(app).api_url == fake_hello_retail.url
    assert app.wsgi_app is HelloRetail.middleware(app)  # later requests go straight to the middleware


def test_first_requests_at_once_read_the_config_again_once(fake_hello_retail: FakeHelloRetail) -> None:
    """A threaded server's first requests may arrive together: one middleware serves them all."""
    app = make_app(fake_hello_retail)
    app.config["HELLO_RETAIL_API_URL"] = UNREAD_API_URL
    HelloRetail(app)
    app.config["HELLO_RETAIL_API_URL"] = fake_hello_retail.url

    responses = in_threads([lambda: app.test_client().get("/", headers=PAGE, buffered=True)] * 8)

    assert [r.status_code for r in responses] == [200] * 8
    assert fake_hello_retail.mint_count == 8
    assert sorted(r.json["id"] for r in responses) == sorted(fake_hello_retail.minted)  # type: ignore[index]
    assert app.wsgi_app is HelloRetail.middleware(app)


def test_keyword_arguments_still_win_over_a_config_read_again(fake_hello_retail: FakeHelloRetail) -> None:
    app = make_app(fake_hello_retail)
    app.config["HELLO_RETAIL_API_URL"] = UNREAD_API_URL
    HelloRetail(app, cookie_name="kept")
    app.config.update(HELLO_RETAIL_API_URL=fake_hello_retail.url, HELLO_RETAIL_COOKIE_NAME="hrid")

    response = app.test_client().get("/", headers=PAGE, buffered=True)

    assert response.headers["Set-Cookie"].startswith(f"kept={fake_hello_retail.minted[0]}")


def test_a_config_made_invalid_after_init_app_serves_pages_without_ids_and_says_so(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    app = make_app(fake_hello_retail)
    HelloRetail(app)
    app.config["HELLO_RETAIL_TIMEOUT"] = "soon"
    client = app.test_client()

    responses = [client.get("/", headers=PAGE, buffered=True) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json["id"] for r in responses] == [None, None]  # type: ignore[index]
    assert fake_hello_retail.mint_count == 0
    errors = [r.getMessage() for r in hr_log.records if r.levelno >= logging.ERROR]
    assert errors == [
        "app.config's HELLO_RETAIL_* changed after HelloRetail(app) and is invalid "
        "(timeout: expected a number of seconds, got str); serving requests without tracking ids"
    ]


def test_an_unchanged_config_keeps_the_middleware_built_at_init_app(fake_hello_retail: FakeHelloRetail) -> None:
    app = make_app(fake_hello_retail)
    HelloRetail(app)
    built = HelloRetail.middleware(app)

    app.test_client().get("/", headers=PAGE, buffered=True)

    assert HelloRetail.middleware(app) is built
    assert app.wsgi_app is built


def test_a_layer_wrapped_around_it_after_init_app_passes_requests_to_the_middleware_read_again(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    """``app.wsgi_app = ProxyFix(app.wsgi_app)`` after ``HelloRetail(app)`` (the usual order): the
    first request cannot put the middleware in our place, so every request passes through it."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = make_app(fake_hello_retail)
    app.config["HELLO_RETAIL_API_URL"] = UNREAD_API_URL
    HelloRetail(app)
    app.wsgi_app = ProxyFix(app.wsgi_app)  # type: ignore[method-assign]
    proxy = app.wsgi_app
    app.config["HELLO_RETAIL_API_URL"] = fake_hello_retail.url
    client = app.test_client(use_cookies=False)  # two first visits: each mints

    responses = [client.get("/", headers=PAGE, buffered=True) for _ in range(2)]

    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json["id"] for r in responses] == fake_hello_retail.minted  # type: ignore[index]
    assert fake_hello_retail.mint_count == 2  # both by the middleware read again
    assert app.wsgi_app is proxy  # the shop's layer stays where the shop put it


# -- a forgotten HelloRetail(app) ---------------------------------------------------------------


@pytest.mark.parametrize("installed", [True, False])
def test_get_tracking_user_id_without_the_extension_says_so_once(
    fake_hello_retail: FakeHelloRetail, installed: bool, hr_log: pytest.LogCaptureFixture
) -> None:
    """A forgotten ``HelloRetail(app)`` gave None silently; now one WARNING names the line to add."""
    app = Flask(__name__)
    app.config.update(
        HELLO_RETAIL_WEBSITE_UUID=fake_hello_retail.website_uuid, HELLO_RETAIL_API_URL=fake_hello_retail.url
    )
    app.get("/")(lambda: {"id": get_tracking_user_id()})
    if installed:
        HelloRetail(app)
    client = app.test_client()

    responses = [client.get("/", headers=PAGE, buffered=True) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3
    warnings = [r.getMessage() for r in hr_log.records if r.levelno == logging.WARNING]
    if installed:
        assert warnings == []
    else:
        assert warnings == [
            "get_tracking_user_id() was called in a Flask request that no hr-middleware middleware served, so it "
            "is None: add `HelloRetail(app)` (`from hr_middleware.flask import HelloRetail`)"
        ]


def test_a_client_call_without_the_extension_says_so_once_as_the_id_it_read(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    """The client reads the website and the id of the request: one warning, about the id it sent."""
    app = Flask(__name__)
    hello_retail = HelloRetailClient.from_settings(fake_hello_retail.settings())
    app.get("/")(lambda: {"success": hello_retail.search("key", "*")["success"]})

    response = app.test_client().get("/", headers=PAGE, buffered=True)

    assert response.json == {"success": True}
    (request,) = fake_hello_retail.api_requests("/serve/search")
    assert request.json["trackingUserId"] == OPT_OUT_ID
    warnings = [r.getMessage() for r in hr_log.records if r.levelno == logging.WARNING]
    assert [w.split(" in a Flask request")[0] for w in warnings] == ["get_tracking_user_id() was called"]


@pytest.mark.parametrize(
    ("call", "said"),
    [
        pytest.param(
            "link",
            "link_customer() was called in a Flask request that no hr-middleware middleware served, so "
            "nothing was linked",
            id="link_customer",
        ),
        pytest.param(
            "website",
            "get_website_uuid() was called in a Flask request that no hr-middleware middleware served, so it is None",
            id="get_website_uuid",
        ),
    ],
)
def test_the_new_entry_points_without_the_extension_say_so_once(
    call: str, said: str, hr_log: pytest.LogCaptureFixture
) -> None:
    """link_customer() answered OUTSIDE_REQUEST and get_website_uuid() None, silently, where the
    extension was forgotten: they say it as get_tracking_user_id() does."""
    from hr_middleware import get_website_uuid
    from hr_middleware.customers import link_customer

    app = Flask(__name__)
    app.get("/")(lambda: {"outcome": str(link_customer(7) if call == "link" else get_website_uuid())})
    client = app.test_client()

    responses = [client.get("/", headers=PAGE) for _ in range(3)]

    assert [r.json for r in responses] == [{"outcome": "outside_request" if call == "link" else "None"}] * 3
    warnings = [r.getMessage() for r in hr_log.records if r.levelno == logging.WARNING]
    assert warnings == [f"{said}: add `HelloRetail(app)` (`from hr_middleware.flask import HelloRetail`)"]


def test_config_values_as_people_write_them(fake_hello_retail: FakeHelloRetail) -> None:
    """A UUID with the newline of the file it came from, SameSite in lower case: both were refused."""
    app = make_app(fake_hello_retail)
    app.config.update(HELLO_RETAIL_WEBSITE_UUID=f" {fake_hello_retail.website_uuid}\n", HELLO_RETAIL_SAMESITE="strict")
    HelloRetail(app)

    response = app.test_client().get("/", headers=PAGE, buffered=True)

    assert fake_hello_retail.mint_count == 1
    assert "SameSite=Strict" in response.headers["Set-Cookie"]
