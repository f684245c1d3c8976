"""Linking at login as docs/customers.md shows it: Flask-Login, Django's ``user_logged_in``, a FastAPI dependency.

Each runs over the framework's own test client (which keeps cookies, as a
browser does) against the fake Hello Retail: one link for repeated logins and
pages, none for a visitor who declined tracking.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request, Response

from hr_middleware.asgi import TrackingUserMiddleware
from hr_middleware.customers import alink_customer, current_customer_id, link_customer
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE, as_config
from .ids import LINK


def declined(request: Any) -> bool:
    return False


CONSENT = [pytest.param({}, 1, id="consenting"), pytest.param({"consent": declined}, 0, id="opted-out")]


# -- Flask-Login -------------------------------------------------------------------------------


def flask_shop(fake: FakeHelloRetail, **options: Any) -> Any:
    from flask import Flask, request
    from flask_login import LoginManager, UserMixin, login_user, user_logged_in

    from hr_middleware.flask import HelloRetail

    app = Flask("flask_login_shop")
    app.secret_key = "flask-login-test-secret"
    app.config.update(as_config(fake.settings(**options), prefix="HELLO_RETAIL_"))
    HelloRetail(app)
    login_manager = LoginManager(app)

    class Customer(UserMixin):
        def __init__(self, customer_id: str) -> None:
            self.id = customer_id

    @login_manager.user_loader
    def load_customer(customer_id: str) -> Customer:
        return Customer(customer_id)

    # As docs/customers.md shows it.
    @user_logged_in.connect_via(app)
    def link_hello_retail_customer(sender: Any, user: Any, **extra: Any) -> None:
        link_customer(user.get_id())

    @app.get("/")
    def page() -> dict[str, Any]:
        return {"customer": current_customer_id()}

    @app.post("/login")
    def login() -> dict[str, Any]:
        login_user(Customer(request.form["customer"]))
        return {"customer": current_customer_id()}

    app.extensions["link_receiver"] = link_hello_retail_customer  # blinker keeps receivers weakly
    return app


@pytest.mark.parametrize(("options", "links"), CONSENT)
def test_flask_login_links_once(
    options: dict[str, Any], links: int, fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    browser = flask_shop(fake_hello_retail, **options).test_client()

    browser.get("/", headers=PAGE)  # the first page view mints
    logins = [browser.post("/login", data={"customer": "53967"}, headers=PAGE) for _ in range(3)]
    pages = [browser.get("/", headers=PAGE) for _ in range(3)]

    assert [r.status_code for r in logins + pages] == [200] * 6
    assert len(fake_hello_retail.customer_links) == links
    if links:
        assert fake_hello_retail.customer_links == [(fake_hello_retail.minted[0], "53967")]
        assert logins[0].json == {"customer": "53967"}
        assert browser.get_cookie(LINK) is not None
    else:
        assert fake_hello_retail.requests == []
        assert logins[0].json == {"customer": None}
        assert browser.get_cookie(LINK) is None
    assert [r.getMessage() for r in hr_log.records if r.levelno >= logging.WARNING] == []  # nothing forgotten


# -- Django's user_logged_in -----------------------------------------------------------------


def django_login(request: Any) -> Any:
    from django.contrib.auth import login
    from django.contrib.auth.models import User
    from django.http import JsonResponse

    login(request, User(pk=int(request.POST["customer"]), username="ann"), backend=MODEL_BACKEND)
    return JsonResponse({"customer": current_customer_id()})


async def django_alogin(request: Any) -> Any:
    """An async view: Django 4.2 has no ``alogin()``; the signal's receivers run in a worker thread either way."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(django_login)(request)


def django_page(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"customer": current_customer_id()})


MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def link_hello_retail_customer(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """The receiver docs/customers.md shows."""
    link_customer(user.pk)


def urls() -> list[Any]:
    from django.urls import path

    return [path("", django_page), path("login", django_login), path("alogin", django_alogin)]


#: This module is the ROOT_URLCONF of the Django tests below.
urlpatterns: list[Any] = []


@pytest.fixture
def django_shop(fake_hello_retail: FakeHelloRetail) -> Any:
    """The tests' Django site with django.contrib.auth, sessions in signed cookies, and the receiver.

    The site has no database: Django's own ``update_last_login`` receiver (which
    saves the user) is disconnected; ``login()`` itself is Django's, untouched.
    """
    from django.test import override_settings

    from .django_site import configure

    configure()

    def with_options(**options: Any) -> Any:
        return override_settings(
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "hr_middleware"],
            MIDDLEWARE=[
                "hr_middleware.django.TrackingUserMiddleware",
                "django.contrib.sessions.middleware.SessionMiddleware",
            ],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            ROOT_URLCONF=__name__,
            HELLO_RETAIL=as_config(fake_hello_retail.settings(**options)),
        )

    urlpatterns[:] = urls()  # made once Django is configured
    return with_options


def connected_receiver() -> Any:
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.disconnect(dispatch_uid="update_last_login")
    user_logged_in.connect(link_hello_retail_customer, dispatch_uid="test-link-customer")
    return user_logged_in


@pytest.mark.parametrize(("options", "links"), CONSENT)
def test_django_user_logged_in_links_once(
    options: dict[str, Any],
    links: int,
    django_shop: Any,
    fake_hello_retail: FakeHelloRetail,
    hr_log: pytest.LogCaptureFixture,
) -> None:
    from django.test import Client

    with django_shop(**options):
        signal = connected_receiver()
        try:
            browser = Client(headers=PAGE)
            browser.get("/")
            logins = [browser.post("/login", {"customer": "53967"}) for _ in range(3)]
            pages = [browser.get("/") for _ in range(3)]
        finally:
            signal.disconnect(dispatch_uid="test-link-customer")

    assert [r.status_code for r in logins + pages] == [200] * 6
    assert len(fake_hello_retail.customer_links) == links
    if links:
        assert fake_hello_retail.customer_links == [(fake_hello_retail.minted[0], "53967")]
        assert logins[0].json() == {"customer": "53967"}
    else:
        assert fake_hello_retail.requests == []
        assert logins[0].json() == {"customer": None}
    assert [r.getMessage() for r in hr_log.records if r.levelno >= logging.WARNING] == []  # nothing forgotten


@pytest.mark.parametrize(("options", "links"), CONSENT)
def test_django_async_login_links_once(
    options: dict[str, Any], links: int, django_shop: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    from django.test import AsyncClient

    async def visit() -> list[Any]:
        browser = AsyncClient()  # headers per request: Django 5.2's AsyncClient(headers=) names them HTTP_HTTP_*
        await browser.get("/", headers=PAGE)
        logins = [await browser.post("/alogin", {"customer": "53967"}, headers=PAGE) for _ in range(3)]
        return logins + [await browser.get("/", headers=PAGE) for _ in range(3)]

    with django_shop(**options):
        signal = connected_receiver()
        try:
            responses = asyncio.run(visit())
        finally:
            signal.disconnect(dispatch_uid="test-link-customer")

    assert [r.status_code for r in responses] == [200] * 6
    assert len(fake_hello_retail.customer_links) == links
    assert fake_hello_retail.mint_count == links  # the opted-out visitor mints nothing either
    assert responses[0].json() == {"customer": "53967" if links else None}


# -- a FastAPI dependency ----------------------------------------------------------------------


def logged_in_customer(request: Request) -> str | None:
    """The shop's own authentication, reduced to a cookie for the test."""
    return request.cookies.get("shop_customer")


# As docs/customers.md shows it.
async def hello_retail_customer(customer_id: Annotated[str | None, Depends(logged_in_customer)]) -> str | None:
    """The logged-in customer, linked to the visitor (Hello Retail hears of it once)."""
    if customer_id is not None:
        await alink_customer(customer_id)
    return customer_id


def fastapi_shop(fake: FakeHelloRetail, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TrackingUserMiddleware, settings=fake.settings(**options))

    @app.post("/login")
    async def login(customer: str, response: Response) -> dict[str, Any]:
        response.set_cookie("shop_customer", customer)
        return {"customer": current_customer_id()}

    @app.get("/")
    async def page(customer_id: Annotated[str | None, Depends(hello_retail_customer)]) -> dict[str, Any]:
        return {"customer": current_customer_id()}

    return app


@pytest.mark.parametrize(("options", "links"), CONSENT)
def test_a_fastapi_dependency_links_once(
    options: dict[str, Any], links: int, fake_hello_retail: FakeHelloRetail
) -> None:
    from fastapi.testclient import TestClient

    with TestClient(fastapi_shop(fake_hello_retail, **options), headers=PAGE) as browser:
        first = browser.get("/")
        browser.post("/login", params={"customer": "53967"})
        pages = [browser.get("/") for _ in range(4)]

    assert first.json() == {"customer": None}
    assert [r.status_code for r in pages] == [200] * 4
    assert len(fake_hello_retail.customer_links) == links
    if links:
        assert fake_hello_retail.customer_links == [(fake_hello_retail.minted[0], "53967")]
        assert pages[0].json() == {"customer": "53967"}
    else:
        assert fake_hello_retail.requests == []
        assert pages[0].json() == {"customer": None}
