"""Hello Retail's script rendered for the request: what it is told, escaped, through each framework's templates.

Every consent state (not asked, declined, given, granted or revoked on this
response, Global Privacy Control) through real templates and real test
clients: Flask's Jinja global, Starlette's and FastAPI's ``Jinja2Templates``
after ``install()``, Django's ``{% hello_retail_script %}`` tag. Then the
safety of what is rendered (JSON in a ``<script>``, the nonce, outside a
request) and the fake's stand-in script as a server.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jinja2
import pytest
import requests
from fastapi import FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st

from hr_middleware import Origin, Settings
from hr_middleware._core.log import SCRIPT_CUSTOMER_IGNORED, SCRIPT_NOT_RENDERED
from hr_middleware._core.script import DEFAULT_SCRIPT_URL, ScriptTracking, script_json, script_tracking
from hr_middleware.consent import cookie_consent, grant, revoke
from hr_middleware.script import hello_retail_script, install
from hr_middleware.testing import FakeHelloRetail

from .drivers import PAGE, as_config
from .ids import A, fresh

JINJA_PAGE = "<html><head>{{ hello_retail_script(customer_id=customer, nonce=nonce) }}</head><body></body></html>"
#: The demo's kind of consent: a cookie of the shop's banner.
CONSENT = {"consent": cookie_consent("shop_consent", "yes")}
RETURNING = f"helloRetailTrackingUserId={fresh(A)}; hello_retail_id={A}"  # not due a renewal


class Answer(NamedTuple):
    status: int
    text: str
    #: Lower-case names.
    headers: dict[str, str]


#: A shop: (method, path, headers) -> its answer.
Shop = Callable[[str, str, dict[str, str]], Answer]


def page_context(query: Any) -> dict[str, Any]:
    return {"customer": query.get("customer"), "nonce": query.get("nonce")}


def flask_shop(fake: FakeHelloRetail, options: dict[str, Any]) -> Shop:
    from flask import Flask, render_template_string, request

    from hr_middleware.flask import HelloRetail

    app = Flask(__name__)
    app.config.update(as_config(fake.settings(**options), prefix="HELLO_RETAIL_"))
    HelloRetail(app)

    def render() -> str:
        return render_template_string(JINJA_PAGE, **page_context(request.args))

    app.add_url_rule("/", "index", render)
    app.add_url_rule("/grant", "grant", lambda: (grant(), render())[1], methods=["POST"])
    app.add_url_rule("/revoke", "revoke", lambda: (revoke(), render())[1], methods=["POST"])
    client = app.test_client(use_cookies=False)

    def send(method: str, path: str, headers: dict[str, str]) -> Answer:
        response = client.open(path, method=method, headers=headers)
        return Answer(response.status_code, response.text, {k.lower(): v for k, v in response.headers.items()})

    return send


def asgi_shop(fake: FakeHelloRetail, options: dict[str, Any], framework: str) -> Shop:
    from starlette.templating import Jinja2Templates
    from starlette.testclient import TestClient

    from hr_middleware.asgi import TrackingUserMiddleware

    # Autoescaping, as Jinja2Templates(directory=...) sets it up: the helper's Markup is not escaped again.
    environment = jinja2.Environment(loader=jinja2.DictLoader({"page.html": JINJA_PAGE}), autoescape=True)
    templates = install(Jinja2Templates(env=environment))
    settings = fake.settings(**options)
    if framework == "fastapi":
        app: Any = FastAPI()
        app.add_middleware(TrackingUserMiddleware, settings=settings)

        @app.get("/")
        async def index(request: Request) -> Any:
            return templates.TemplateResponse(request, "page.html", page_context(request.query_params))

        @app.post("/grant")
        def granted(request: Request) -> Any:  # sync: grant() from the threadpool
            grant()
            return templates.TemplateResponse(request, "page.html", page_context(request.query_params))

        @app.post("/revoke")
        async def revoked(request: Request) -> Any:
            revoke()
            return templates.TemplateResponse(request, "page.html", page_context(request.query_params))

    else:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.requests import Request as StarletteRequest
        from starlette.routing import Route

        from hr_middleware.consent import agrant

        async def page(request: StarletteRequest) -> Any:
            return templates.TemplateResponse(request, "page.html", page_context(request.query_params))

        async def granting(request: StarletteRequest) -> Any:
            await agrant()
            return await page(request)

        async def revoking(request: StarletteRequest) -> Any:
            revoke()
            return await page(request)

        app = Starlette(
            routes=[
                Route("/", page),
                Route("/grant", granting, methods=["POST"]),
                Route("/revoke", revoking, methods=["POST"]),
            ],
            middleware=[Middleware(TrackingUserMiddleware, settings=settings)],
        )

    def send(method: str, path: str, headers: dict[str, str]) -> Answer:
        with TestClient(app) as client:  # a client per request: no cookie jar between them
            response = client.request(method, path, headers=headers)
        return Answer(response.status_code, response.text, {k.lower(): v for k, v in response.headers.items()})

    return send


def django_shop(fake: FakeHelloRetail, options: dict[str, Any]) -> Shop:
    from .django_site import configure

    configure()
    from django.test import Client, override_settings

    config = as_config(fake.settings(**options))

    def send(method: str, path: str, headers: dict[str, str]) -> Answer:
        extra = {"HTTP_COOKIE": headers.pop("Cookie")} if "Cookie" in headers else {}
        with override_settings(HELLO_RETAIL=config, ROOT_URLCONF="tests.django_site.script_urls"):
            client = Client()
            response = client.generic(method, path, headers=headers, **extra)
        headers = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status_code, response.content.decode(), headers)

    return send


FRAMEWORKS = ["flask", "starlette", "fastapi", "django"]


@pytest.fixture(params=FRAMEWORKS)
def make_shop(request: pytest.FixtureRequest, fake_hello_retail: FakeHelloRetail) -> Callable[..., Shop]:
    """``make_shop(**options)``: a shop of this framework whose page renders the script, pointed at the fake."""
    framework = str(request.param)

    def make(**options: Any) -> Shop:
        if framework == "flask":
            return flask_shop(fake_hello_retail, options)
        if framework == "django":
            return django_shop(fake_hello_retail, options)
        return asgi_shop(fake_hello_retail, options, framework)

    return make


def told(page: str) -> list[Any]:
    """The commands the page pushes to ``hrq``, in order; and the script's tags are in the right order."""
    match = re.search(r'<script(?: nonce="[^"]*")?>window\.hrq = window\.hrq \|\| \[\];(.*?)</script>', page, re.S)
    assert match, f"no hrq init in {page!r}"
    later = page[match.end() :]
    assert re.match(r'\n<script async src="[^"]+"(?: nonce="[^"]*")?></script>', later), "the script after the init"
    commands, decoder = [], json.JSONDecoder()
    for chunk in match.group(1).split("hrq.push(")[1:]:
        command, end = decoder.raw_decode(chunk)
        assert chunk[end:] == ");"
        commands.append(command)
    return commands


def init(website_uuid: str, **extra: Any) -> list[Any]:
    return ["init", {"websiteUuid": website_uuid, **extra}]


class Case(NamedTuple):
    options: dict[str, Any]
    method: str
    path: str
    cookie: str | None
    headers: dict[str, str]
    #: What the page tells the script (with the website UUID filled in).
    expected: Callable[[str], list[Any]]


CASES = {
    "consent not asked: the script's default": Case({}, "GET", "/", None, {}, lambda w: [init(w)]),
    "declined: opted out inside the init": Case(
        CONSENT, "GET", "/", "shop_consent=no", {}, lambda w: [init(w, setTrackingOptOut=True)]
    ),
    "not answered, counted as declined": Case(
        CONSENT, "GET", "/", None, {}, lambda w: [init(w, setTrackingOptOut=True)]
    ),
    "given: an earlier opt-out lifted": Case(
        CONSENT, "GET", "/", "shop_consent=yes", {}, lambda w: [init(w), ["setTrackingOptOut", False]]
    ),
    "not answered, counted as given": Case(
        {**CONSENT, "consent_unknown": True}, "GET", "/", None, {}, lambda w: [init(w), ["setTrackingOptOut", False]]
    ),
    "granted on this response": Case(
        CONSENT, "POST", "/grant", "shop_consent=no", {}, lambda w: [init(w), ["setTrackingOptOut", False]]
    ),
    "revoked on this response": Case(
        CONSENT, "POST", "/revoke", f"shop_consent=yes; {RETURNING}", {}, lambda w: [init(w, setTrackingOptOut=True)]
    ),
    "revoked without a consent option": Case(
        {}, "POST", "/revoke", RETURNING, {}, lambda w: [init(w, setTrackingOptOut=True)]
    ),
    "Global Privacy Control": Case(
        {"respect_gpc": True}, "GET", "/", RETURNING, {"Sec-GPC": "1"}, lambda w: [init(w, setTrackingOptOut=True)]
    ),
    "customer named, consent given": Case(
        CONSENT,
        "GET",
        "/?customer=c-42",
        "shop_consent=yes",
        {},
        lambda w: [init(w), ["setTrackingOptOut", False], ["setCustomerId", "c-42"]],
    ),
    "customer named, declined: never named to the script": Case(
        CONSENT, "GET", "/?customer=c-42", "shop_consent=no", {}, lambda w: [init(w, setTrackingOptOut=True)]
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_page_tells_the_script_the_consent_decision(
    make_shop: Callable[..., Shop], fake_hello_retail: FakeHelloRetail, case: Case
) -> None:
    shop = make_shop(**case.options)
    headers = {**PAGE, **case.headers, **({"Cookie": case.cookie} if case.cookie else {})}

    answer = shop(case.method, case.path, headers)

    assert answer.status == 200, answer.text
    assert told(answer.text) == case.expected(fake_hello_retail.website_uuid)
    assert f'<script async src="{fake_hello_retail.script_url}"></script>' in answer.text


def test_a_page_that_depends_on_the_visitors_consent_is_kept_out_of_shared_caches(
    make_shop: Callable[..., Shop],
) -> None:
    without_consent = make_shop()(  # the same for every visitor: nothing to keep out
        "GET", "/", {**PAGE, "Cookie": RETURNING}
    )
    with_consent = make_shop(**CONSENT)("GET", "/", {**PAGE, "Cookie": f"shop_consent=yes; {RETURNING}"})

    assert "cookie" not in without_consent.headers.get("vary", "").lower()
    assert "private" not in without_consent.headers.get("cache-control", "")
    assert "cookie" in with_consent.headers["vary"].lower()
    assert "private" in with_consent.headers["cache-control"]


def test_a_shop_set_up_as_documented_is_not_told_it_forgot_the_middleware(
    make_shop: Callable[..., Shop], fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    """The script rendered in a page the middleware serves (a first visit and a returning one)
    logs no WARNING: neither the forgotten-middleware line nor a comment instead of the script."""
    shop = make_shop()

    pages = [shop("GET", "/", dict(PAGE)), shop("GET", "/", {**PAGE, "Cookie": RETURNING})]

    assert [told(page.text)[0] for page in pages] == [init(fake_hello_retail.website_uuid)] * 2
    assert [r.getMessage() for r in hr_log.records if r.levelno >= logging.WARNING] == []


def test_the_nonce_is_on_both_tags_and_escaped(make_shop: Callable[..., Shop]) -> None:
    answer = make_shop()("GET", '/?nonce=r4nd0m"><x', {**PAGE, "Cookie": RETURNING})

    assert answer.text.count(' nonce="r4nd0m&#34;&gt;&lt;x"') + answer.text.count(' nonce="r4nd0m&quot;&gt;&lt;x"') == 2
    assert "<x" not in answer.text


HOSTILE = "</script><script>alert(1)</script><!--&'\u2028\u2029\"\\"


def test_a_hostile_customer_id_stays_a_string_in_the_script(
    make_shop: Callable[..., Shop], fake_hello_retail: FakeHelloRetail
) -> None:
    answer = make_shop()("GET", "/?" + requests.compat.urlencode({"customer": HOSTILE}), {**PAGE, "Cookie": RETURNING})

    assert told(answer.text) == [init(fake_hello_retail.website_uuid), ["setCustomerId", HOSTILE]]
    assert answer.text.count("</script>") == 2  # the two tags' own ends
    assert "\u2028" not in answer.text
    assert "\u2029" not in answer.text


def test_the_django_tag_takes_the_csp_nonce_of_the_context(fake_hello_retail: FakeHelloRetail) -> None:
    shop = django_shop(fake_hello_retail, {})

    page = shop("GET", "/csp", {**PAGE, "Cookie": RETURNING}).text

    assert page.count(' nonce="n0nce"') == 2


# -- what is rendered, without a framework ----------------------------------------------


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner, max_size=4)))
def test_script_json_is_the_same_value_and_cannot_leave_a_script_element(value: Any) -> None:
    text = script_json(value)

    assert json.loads(text) == value
    assert not set(text) & set("<>&'\u2028\u2029")


def test_outside_a_request_it_renders_a_comment_saying_why_and_logs_it_once(caplog: pytest.LogCaptureFixture) -> None:
    from hr_middleware import script

    script._logged.clear()  # another test may have logged it already in this process
    with caplog.at_level(logging.WARNING, logger="hr_middleware"):
        first, second = hello_retail_script(), hello_retail_script(nonce="n")

    why = "this code does not run inside a request that the middleware serves"
    assert first == second == f"<!-- hr-middleware: Hello Retail's script is not rendered: {why} -->"
    assert [r.getMessage() for r in caplog.records] == [SCRIPT_NOT_RENDERED % why]


def test_a_customer_id_of_another_type_is_left_out_and_logged(
    fake_hello_retail: FakeHelloRetail, caplog: pytest.LogCaptureFixture
) -> None:
    from flask import Flask

    from hr_middleware import script
    from hr_middleware.flask import HelloRetail

    script._logged.clear()
    app = Flask(__name__)
    app.config.update(as_config(fake_hello_retail.settings(), prefix="HELLO_RETAIL_"))
    HelloRetail(app)
    app.add_url_rule("/", "index", lambda: hello_retail_script(customer_id={"id": 1}))  # type: ignore[arg-type]
    app.add_url_rule("/number", "number", lambda: hello_retail_script(customer_id=7))
    client = app.test_client(use_cookies=False)

    with caplog.at_level(logging.WARNING, logger="hr_middleware"):
        pages = [client.get(path, headers={**PAGE, "Cookie": RETURNING}).text for path in ("/", "/", "/number")]

    assert told(pages[0]) == told(pages[1]) == [init(fake_hello_retail.website_uuid)]
    assert told(pages[2]) == [init(fake_hello_retail.website_uuid), ["setCustomerId", "7"]]
    assert [r.getMessage() for r in caplog.records] == [SCRIPT_CUSTOMER_IGNORED % "dict"]


@pytest.mark.parametrize(
    ("origin", "consent_now", "consent", "expected"),
    [
        (Origin.COOKIE, None, None, ScriptTracking.NOT_ASKED),
        (None, None, None, ScriptTracking.NOT_ASKED),  # no id (a bot, Hello Retail down): the script decides
        (Origin.OPT_OUT, None, False, ScriptTracking.OPTED_OUT),
        (Origin.COOKIE, None, True, ScriptTracking.CONSENTED),
        (Origin.MINTED, True, False, ScriptTracking.CONSENTED),  # grant(): the consent cookie comes later
        (Origin.OPT_OUT, False, True, ScriptTracking.OPTED_OUT),  # revoke() after the banner said yes
        (Origin.COOKIE, False, None, ScriptTracking.OPTED_OUT),  # revoke() without a consent option
        (Origin.COOKIE, None, False, ScriptTracking.OPTED_OUT),  # declined, whatever the id's origin says
    ],
)
def test_what_the_script_is_told_about_tracking(
    origin: Origin | None, consent_now: bool | None, consent: bool | None, expected: ScriptTracking
) -> None:
    assert script_tracking(origin, consent_now, consent) is expected


@pytest.mark.parametrize(
    "url",
    [
        "//helloretailcdn.com/helloretail.js",
        "ftp://x/helloretail.js",
        "https:///x.js",
        "https://cdn.example/a b.js",
        "http://[::1",
    ],
)
def test_a_script_url_that_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"^script_url: "):
        Settings(website_uuid="12345678-90ab-4cde-8f01-234567890abc", script_url=url)


def test_the_default_script_is_hello_retails_own() -> None:
    assert Settings(website_uuid="12345678-90ab-4cde-8f01-234567890abc").script_url == DEFAULT_SCRIPT_URL
    assert DEFAULT_SCRIPT_URL == "https://helloretailcdn.com/helloretail.js"


# -- the fake's stand-in, as a server ------------------------------------------------------


@pytest.mark.loopback
def test_the_fake_serves_a_stand_in_for_the_script_and_keeps_its_reports_apart(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    script = requests.get(fake_hello_retail.script_url, timeout=5)
    report = {"kind": "command", "name": "init", "args": [{}], "page": "p", "seq": 0, "trackingUserId": A}
    recorded = requests.post(fake_hello_retail.url + "/serve/_script/events", data=json.dumps(report), timeout=5)
    refused = requests.post(fake_hello_retail.url + "/serve/_script/events", data=b"[1]", timeout=5)

    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert b"window.hrq" in script.content
    assert recorded.status_code == 204
    assert recorded.headers["Access-Control-Allow-Origin"] == "*"
    assert refused.status_code == 400
    assert [(e.kind, e.name, e.tracking_user_id) for e in fake_hello_retail.script.events] == [("command", "init", A)]
    assert fake_hello_retail.requests == []  # neither the script nor its reports are calls to Hello Retail
    assert fake_hello_retail.settings().script_url == fake_hello_retail.script_url


def test_the_customer_linked_in_this_request_is_named_to_the_script(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    from flask import Flask, render_template_string

    from hr_middleware.customers import link_customer
    from hr_middleware.flask import HelloRetail

    app = Flask(__name__)
    app.config.update(as_config(fake_hello_retail.settings(), prefix="HELLO_RETAIL_"))
    HelloRetail(app)

    def log_in() -> str:
        link_customer("c-7")
        return render_template_string("<head>{{ hello_retail_script() }}</head>")

    app.add_url_rule("/login", "login", log_in, methods=["POST"])
    response = app.test_client(use_cookies=False).post("/login", headers={**PAGE, "Cookie": RETURNING})

    assert response.status_code == 200
    assert told(response.text) == [init(fake_hello_retail.website_uuid), ["setCustomerId", "c-7"]]
    assert fake_hello_retail.customer_links == [(A, "c-7")]
    assert [r.getMessage() for r in hr_log.records if r.levelno >= logging.WARNING] == []  # nothing forgotten
