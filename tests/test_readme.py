"""The README cannot drift from the code: its code runs, its lists match the code, its links resolve.

The README is what a user reads first (under 20 KB); the list of public names is
docs/api.md and the table of options docs/options.md, and the tests follow them
there. Every fenced ``python`` block of README.md and docs/options.md is preceded
by a marker saying how it runs: ``<!-- run: KIND -->`` (a context below, against the fake Hello Retail on
127.0.0.1) or ``<!-- example -->`` (the client example, which tests/test_docs.py
runs inside a visitor's request). A block without a marker fails the test.
"""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
import tarfile
import typing
from collections.abc import Callable, Iterator
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from types import ModuleType, NoneType, UnionType
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import Client as WSGIClient

from hr_middleware import OPT_OUT_ID, Settings, get_tracking_user_id
from hr_middleware.testing import BROWSER_HEADERS, FakeHelloRetail

from . import test_docs
from .ids import A, cookie_id

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")
#: The public names, by module (the README links to it).
API_DOC = (ROOT / "docs" / "api.md").read_text("utf-8")
#: Every option (the README links to it).
OPTIONS_DOC = (ROOT / "docs" / "options.md").read_text("utf-8")
#: The pages the README's content moved to, whose code and links are checked as the README's.
MOVED_TO = ("docs/api.md", "docs/options.md", "docs/privacy.md", "docs/faq.md")
BROWSER = BROWSER_HEADERS
RETURNING = {**BROWSER, "Cookie": f"helloRetailTrackingUserId={A}; hello_retail_id={A}"}

#: The user-facing modules; docs/api.md lists their ``__all__``.
PUBLIC_MODULES = (
    "hr_middleware",
    "hr_middleware.wsgi",
    "hr_middleware.asgi",
    "hr_middleware.flask",
    "hr_middleware.fastapi",
    "hr_middleware.django",
    "hr_middleware.client",
    "hr_middleware.consent",
    "hr_middleware.customers",
    "hr_middleware.testing",
    "hr_middleware.script",
)

#: Files the README links to that other branches add. Once one exists, the test says to drop
#: it from here (the integrator does, once the branch that writes it is merged).
PENDING: set[str] = set()


@dataclass
class Block:
    """A fenced code block of the README (or of a page its content moved to)."""

    lang: str
    code: str
    line: int
    marker: str | None  # "run: KIND", "example" or None
    source: str = "README.md"

    @property
    def kind(self) -> str | None:
        if self.marker is None:
            return None
        return self.marker.removeprefix("run: ")


FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
MARKER = re.compile(r"<!-- (run: [\w-]+|example) -->\n\Z")


def blocks(text: str = README, source: str = "README.md") -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        marker = MARKER.search(before)
        line = before.count("\n") + 1
        found.append(Block(match.group(1), match.group(2), line, marker.group(1) if marker else None, source))
    return found


def section(title: str, text: str = README) -> str:
    """The ``## title`` section of *text* (the README), up to the next ``## ``."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


PYTHON = [
    b
    for source in ("README.md", *MOVED_TO)
    for b in blocks((ROOT / source).read_text("utf-8"), source)
    if b.lang == "python"
]


# -- every python block runs ----------------------------------------------------------


@pytest.fixture
def django_site() -> None:
    from .django_site import configure

    configure()


def run(block: Block, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(block.code, f"{block.source}:{block.line}", "exec"), namespace)
    return namespace


def hello_app() -> Flask:
    """A page that shows the visitor's id."""
    app = Flask("shop")

    @app.get("/")
    def home() -> str:
        return get_tracking_user_id() or ""

    return app


def id_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A bare WSGI app answering with the id the middleware put in the environ."""
    from hr_middleware.wsgi import ENVIRON_KEY

    start_response("200 OK", [("Content-Type", "text/plain")])
    return [(environ.get(ENVIRON_KEY) or "").encode()]


def run_plain(block: Block, fake: FakeHelloRetail) -> None:
    """Runs as is, inside a returning visitor's request; an id it reads is that visitor's."""
    from hr_middleware.wsgi import TrackingUserMiddleware

    namespaces: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        namespaces.append(run(block, {}))
        start_response("200 OK", [])
        return [b""]

    WSGIClient(TrackingUserMiddleware(app, settings=fake.settings()), use_cookies=False).get(
        "/", headers=RETURNING
    ).close()
    (namespace,) = namespaces
    assert namespace.get("tracking_user_id", A) == A
    for settings in [v for v in namespace.values() if isinstance(v, Settings)]:
        assert settings.website_uuid  # built, hence valid
    assert fake.mint_count == 0


def run_flask_setup(block: Block, fake: FakeHelloRetail) -> None:
    """``app`` is a Flask app pointed at the fake; after the block, a first page view gets an id."""
    app = hello_app()
    app.config["HELLO_RETAIL_API_URL"] = fake.url
    run(block, {"app": app})
    response = app.test_client().get("/", headers=BROWSER, buffered=True)
    assert response.text == fake.minted[0]


def run_django_settings(block: Block, fake: FakeHelloRetail, django_site: None) -> None:
    """A settings.py excerpt: with its MIDDLEWARE and HELLO_RETAIL (pointed at the fake), a first page view
    gets an id, ``manage.py check`` is content, and the app is installed."""
    from django.test import Client, override_settings

    from hr_middleware.django._checks import check_settings

    namespace = run(block, {"INSTALLED_APPS": []})
    assert "hr_middleware" in namespace["INSTALLED_APPS"]
    hello_retail = {**namespace["HELLO_RETAIL"], "API_URL": fake.url}
    with override_settings(MIDDLEWARE=namespace["MIDDLEWARE"], HELLO_RETAIL=hello_retail):
        assert check_settings() == []
        response = Client().get("/", headers=BROWSER)
    assert cookie_id(response.cookies["helloRetailTrackingUserId"].value) == fake.minted[0]


def run_asgi_app(block: Block, fake: FakeHelloRetail) -> None:
    """``app`` is a Starlette app; after the block, a returning visitor's id reaches it without a call."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(get_tracking_user_id() or "")

    app = Starlette(routes=[Route("/", home)])
    run(block, {"app": app})
    with TestClient(app) as client:
        response = client.get("/", headers=RETURNING)
    assert response.text == A
    assert response.headers["Vary"] == "Cookie"


def run_fastapi_app(block: Block, fake: FakeHelloRetail) -> None:
    """``app`` is a FastAPI app with the middleware (pointed at the fake); the block's endpoint gets the id."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from hr_middleware.asgi import TrackingUserMiddleware

    app = FastAPI()
    app.add_middleware(TrackingUserMiddleware, settings=fake.settings())
    run(block, {"app": app})
    with TestClient(app) as client:
        response = client.get("/", headers=BROWSER)
    assert response.json() == {"trackingUserId": fake.minted[0]}


def run_wsgi_app(block: Block, fake: FakeHelloRetail) -> None:
    """``application`` is a WSGI app answering with the id; the block wraps it. A returning visitor keeps
    their id (OPT_OUT_ID with a consent hook and no consent given); a client it makes is closed."""
    from hr_middleware.client import HelloRetailClient
    from hr_middleware.wsgi import TrackingUserMiddleware

    namespace = run(block, {"application": id_app})
    application = namespace["application"]
    assert isinstance(application, TrackingUserMiddleware)
    response = WSGIClient(application, use_cookies=False).get("/", headers=RETURNING, buffered=True)
    if application.settings.consent is None:
        assert response.text == A
    else:
        assert response.text == OPT_OUT_ID
        deleted = response.headers.getlist("Set-Cookie")
        assert sorted(c.split("=")[0] for c in deleted) == ["helloRetailTrackingUserId", "hello_retail_id"]
        assert all("Max-Age=0" in c for c in deleted)
    client = namespace.get("client")
    if client is not None:
        assert isinstance(client, HelloRetailClient)
        client.close()
    assert fake.mint_count == 0


def run_flask_consent(block: Block, fake: FakeHelloRetail) -> None:
    """``app`` has HelloRetail (pointed at the fake); the block's POST /consent grants and revokes."""
    from hr_middleware.flask import HelloRetail

    app = hello_app()
    app.config.update(HELLO_RETAIL_WEBSITE_UUID=fake.website_uuid, HELLO_RETAIL_API_URL=fake.url)
    HelloRetail(app)
    run(block, {"app": app})
    client = app.test_client(use_cookies=False)  # the Cookie header as sent, not a cookie jar's

    granted = client.post("/consent", data={"tracking": "yes"}, buffered=True)
    assert granted.status_code == 204
    assert fake.mint_count == 1  # a form post never mints by itself: grant() did
    assert f"helloRetailTrackingUserId={fake.minted[0]}." in granted.headers.getlist("Set-Cookie")[0]

    revoked = client.post("/consent", data={"tracking": "no"}, headers={"Cookie": RETURNING["Cookie"]}, buffered=True)
    assert revoked.status_code == 204
    assert all("Max-Age=0" in c for c in revoked.headers.getlist("Set-Cookie"))
    deleted = {c.split("=", 1)[0] for c in revoked.headers.getlist("Set-Cookie")}
    assert deleted == {"helloRetailTrackingUserId", "hello_retail_id", "helloRetailTrackingUserId_link"}


def create_flask_app(config: dict[str, Any]) -> Flask:
    """The shop's application factory the Flask testing snippet calls."""
    from hr_middleware.flask import HelloRetail

    app = hello_app()
    app.config.update(config)
    HelloRetail(app)
    return app


def run_tests(namespace: dict[str, Any], fake: FakeHelloRetail) -> None:
    """Call every ``test_*`` function the block defined, with the plugin's fixtures it names."""
    fixtures = {"fake_hello_retail": fake, "browser_headers": dict(BROWSER_HEADERS)}
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests, "the block defines no test"
    for test in tests:
        fake.reset()
        test(**{name: fixtures[name] for name in test.__code__.co_varnames[: test.__code__.co_argcount]})
        assert fake.mint_count == 1  # each documented test is about a first visit


def run_pytest_flask(block: Block, fake: FakeHelloRetail, monkeypatch: pytest.MonkeyPatch) -> None:
    """Test functions, as written: they import ``create_app`` from the shop's module ``shop``."""
    shop = ModuleType("shop")
    shop.create_app = create_flask_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shop", shop)
    run_tests(run(block, {}), fake)


def run_pytest_django(block: Block, fake: FakeHelloRetail, django_site: None) -> None:
    """Test functions, as written, in a Django project whose MIDDLEWARE has ours (configured as
    pytest-django configures it from ``DJANGO_SETTINGS_MODULE``)."""
    run_tests(run(block, {}), fake)


def run_pytest_asgi(block: Block, fake: FakeHelloRetail) -> None:
    """Self-contained test functions, as written."""
    run_tests(run(block, {}), fake)


RUNNERS: dict[str, Callable[..., None]] = {
    "plain": run_plain,
    "flask-setup": run_flask_setup,
    "django-settings": run_django_settings,
    "asgi-app": run_asgi_app,
    "fastapi-app": run_fastapi_app,
    "wsgi-app": run_wsgi_app,
    "flask-consent": run_flask_consent,
    "pytest-flask": run_pytest_flask,
    "pytest-django": run_pytest_django,
    "pytest-asgi": run_pytest_asgi,
}


def test_every_python_block_says_how_it_runs() -> None:
    unmarked = [f"{b.source}:{b.line}" for b in PYTHON if b.kind is None]
    unknown = [f"{b.source}:{b.line} ({b.kind})" for b in PYTHON if b.kind not in (None, "example", *RUNNERS)]
    assert not unmarked, f"python blocks without <!-- run: KIND --> (KIND one of {sorted(RUNNERS)}): {unmarked}"
    assert not unknown, f"python blocks with an unknown kind: {unknown}"
    # The <!-- example --> blocks are the ones tests/test_docs.py runs.
    assert len([b for b in PYTHON if b.kind == "example"]) == len(test_docs.README)


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=f"{b.source}:{b.line}-{b.kind}") for b in PYTHON if b.kind in RUNNERS]
)
def test_the_block_runs(block: Block, fake_hello_retail: FakeHelloRetail, request: pytest.FixtureRequest) -> None:
    runner = RUNNERS[block.kind or ""]
    wanted = runner.__code__.co_varnames[2 : runner.__code__.co_argcount]  # the fixtures it takes after the fake
    runner(block, fake_hello_retail, **{name: request.getfixturevalue(name) for name in wanted})


def test_every_runner_is_used() -> None:
    assert {b.kind for b in PYTHON} - {"example"} == set(RUNNERS)


# -- docs/api.md lists every public name ---------------------------------------------


def documented_api() -> dict[str, set[str]]:
    """``{module: names}`` from docs/api.md: a line `` `module` `` and then ``- `name`: ...`` lines."""
    listed: dict[str, set[str]] = {}
    module = None
    for line in section("Every public name", API_DOC).splitlines():
        if m := re.fullmatch(r"`(hr_middleware[\w.]*)`", line):
            module = m.group(1)
            listed[module] = set()
        elif m := re.match(r"- `(\w+)`: \S", line):
            assert module is not None, f"docs/api.md: {line!r} before any module"
            listed[module].add(m.group(1))
    return listed


def test_docs_api_lists_the_public_names_of_every_public_module(django_site: None) -> None:
    import importlib

    listed = documented_api()
    problems = []
    for module in sorted(set(PUBLIC_MODULES) | set(listed)):
        if module not in PUBLIC_MODULES:
            problems.append(f"{module}: listed, but not a public module")
            continue
        public = set(importlib.import_module(module).__all__)
        missing, extra = sorted(public - listed.get(module, set())), sorted(listed.get(module, set()) - public)
        if missing:
            problems.append(f"{module}: in __all__ but not in docs/api.md: {', '.join(missing)}")
        if extra:
            problems.append(f"{module}: in docs/api.md but not in __all__: {', '.join(extra)}")
    assert not problems, "docs/api.md out of date:\n" + "\n".join(problems)


# -- docs/options.md's table is Settings -------------------------------------------------------


def render(hint: Any) -> list[str]:
    """A type hint as the members of its union, written as the README writes types."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is NoneType or hint is None:
        return ["None"]
    if origin in (typing.Union, UnionType):
        return [member for arg in args for member in render(arg)]
    if origin is typing.Literal:
        return ["None" if a is None else f'"{a}"' for a in args]
    if origin is not None and getattr(origin, "__name__", "") == "Callable":
        params, result = args
        return [f"Callable[[{', '.join(' | '.join(render(p)) for p in params)}], {' | '.join(render(result))}]"]
    if origin is not None:
        return [f"{origin.__name__}[{', '.join(' | '.join(render(a)) for a in args)}]"]
    return [hint.__name__]


def split_union(text: str) -> list[str]:
    """``a | b[c | d]`` -> ``["a", "b[c | d]"]``: split on the ``|`` outside brackets."""
    members, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            members.append(current.strip())
            current = ""
        else:
            current += char
    return [*members, current.strip()]


def options_table() -> dict[str, tuple[str, str]]:
    """``{option: (type, default)}`` from docs/options.md's table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in section("Every option", OPTIONS_DOC).splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and (m := re.fullmatch(r"`(\w+)`", cells[0])):
            assert m.group(1) not in rows, f"{m.group(1)}: two rows"
            rows[m.group(1)] = (cells[1].replace("\\|", "|"), cells[2])
    return rows


def test_docs_options_is_every_option_of_settings_with_its_type_and_default() -> None:
    rows = options_table()
    hints = typing.get_type_hints(Settings)
    options = {f.name: f for f in fields(Settings) if f.init}
    assert list(rows) == list(options), "the table's options, in Settings' order"
    for name, (type_cell, default_cell) in rows.items():
        written = re.match(r"`([^`]+)`", type_cell)
        assert written, f"{name}: no type"
        assert sorted(split_union(written.group(1))) == sorted(render(hints[name])), f"{name}: type"
        default = options[name].default
        if default is MISSING:
            assert default_cell == "required", name
            continue
        shown = re.fullmatch(r"`([^`]+)`", default_cell)
        assert shown, f"{name}: default {default_cell!r}"
        if callable(default):
            assert shown.group(1) == default.__name__, name
        else:
            value = ast.literal_eval(shown.group(1))
            assert (value, type(value)) == (default, type(default)), f"{name}: default"


# -- links, the sdist, make targets -----------------------------------------------------------


def project_url() -> str:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config["metadata"]["url"]


LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """The ``#anchor`` of each heading of *text*, as GitHub makes them."""
    return {
        "#" + re.sub(r"[^\w -]", "", h).strip().lower().replace(" ", "-") for h in re.findall(r"^#+ (.*)", text, re.M)
    }


def relative_links(source: str) -> list[tuple[str, str]]:
    """``(path from the root, #anchor or "")`` of each relative link of *source* (a README or docs page)."""
    found = []
    for target in LINK.findall((ROOT / source).read_text("utf-8")):
        if target.startswith(("https://", "http://")):
            continue
        path, _, anchor = target.partition("#")
        where = (ROOT / source).parent / path if path else ROOT / source
        found.append((where.resolve().relative_to(ROOT).as_posix(), "#" + anchor if anchor else ""))
    return found


def repository_paths() -> set[str]:
    """The repository files the README links to: its relative links (which work in a checkout and in the sdist)."""
    return {path for path, _ in relative_links("README.md")}


def test_links_are_relative_so_they_work_in_a_checkout_and_in_the_sdist() -> None:
    for source in ("README.md", *MOVED_TO):
        text = (ROOT / source).read_text("utf-8")
        into_the_repository = [t for t in LINK.findall(text) if t.startswith(project_url())]
        assert not into_the_repository, (
            f"{source}: absolute links into the unpublished repository: {into_the_repository}"
        )
    assert repository_paths() >= {"docs/django.md", "docs/client.md", "docs/reliability.md", "docs/performance.md"}
    assert repository_paths() >= {"docs/api.md", "docs/options.md", "docs/demo.png", "CHANGELOG.md"}
    assert f'git+{project_url()}"' in README  # the install line names this repository


def test_every_linked_file_and_anchor_exists() -> None:
    for source in ("README.md", *MOVED_TO):
        for path, anchor in relative_links(source):
            if path in PENDING:
                assert not (ROOT / path).exists(), f"{path} exists now: remove it from PENDING in tests/test_readme.py"
                continue
            assert (ROOT / path).is_file(), f"{source} links to {path}, which does not exist"
            if anchor:
                assert anchor in anchors((ROOT / path).read_text("utf-8")), (
                    f"{source} links to {path}{anchor}: no such heading"
                )


def test_the_readme_is_what_a_user_reads_first() -> None:
    assert len(README.encode()) < 20 * 1024, "over 20 KB: move the details to a docs/ page and link it"
    titles = re.findall(r"^## (.*)", README, re.M)
    assert titles[:4] == ["Quick start", "Install", "Set up", "How the id reaches your code"]
    assert "More" in titles  # the list of docs pages


@pytest.fixture(scope="module")
def sdist_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check", "--outdir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (archive,) = out.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        yield {name.partition("/")[2] for name in tar.getnames()}


def test_the_sdist_holds_what_the_readme_and_the_django_checks_name(sdist_names: set[str]) -> None:
    named = repository_paths() - PENDING
    named |= set(re.findall(r"\b((?:docs|examples)/[\w./-]+\.\w+)", README)) - PENDING
    named |= {"Makefile", "CHANGELOG.md", "LICENSE"}
    hints = {
        p for f in (ROOT / "hr_middleware").rglob("*.py") for p in re.findall(r"\bdocs/[\w./-]+\.\w+", f.read_text())
    }
    assert "docs/django.md" in hints
    missing = sorted(p for p in named | hints if p not in sdist_names)
    assert not missing, f"missing from the sdist (MANIFEST.in): {missing}"


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))


def test_every_make_target_named_exists_and_development_lists_them_all() -> None:
    named = set(re.findall(r"(?:`|^)make ([\w-]+)", README, re.M))
    assert named <= makefile_targets(), f"no such make target: {sorted(named - makefile_targets())}"
    phony = set(re.search(r"^\.PHONY: (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split())  # type: ignore[union-attr]
    (development,) = [b.code for b in blocks(section("Development")) if b.lang == "sh"]
    listed = set(re.findall(r"^make ([\w-]+)", development, re.M))
    assert listed == phony, f"Development: missing {sorted(phony - listed)}, extra {sorted(listed - phony)}"


def test_the_quick_start_is_make_demo_and_make_test() -> None:
    (quick,) = [b.code for b in blocks(section("Quick start"))]
    assert [line.split("#")[0].strip() for line in quick.splitlines()] == ["make demo", "make test"]


# -- the install table is setup.cfg's extras ----------------------------------------------------------


def test_the_install_table_names_every_users_extra_and_what_it_adds() -> None:
    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = {
        name: sorted({Requirement(r).name.lower() for r in value.splitlines() if r and not r.startswith("#")})
        for name, value in config["options.extras_require"].items()
        if name != "dev"
    }
    rows: dict[str, list[str]] = {}
    for line in section("Install").splitlines():
        if m := re.fullmatch(r"\| [^|]+ \| `pip install -e (?:\"\.\[(\w+)\]\"|\.)` \| ([^|]+) \|", line):
            adds = re.sub(r"\([^)]*\)", "", m.group(2))
            rows[m.group(1) or ""] = sorted(n.strip() for n in adds.split(",") if n.strip() not in ("", "nothing"))
    assert rows.pop("") == []  # any WSGI app: the core alone
    assert rows == extras
    assert "testing" in extras  # the pytest plugin has an extra of its own
