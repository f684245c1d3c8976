"""The demo shop, run the way ``make demo`` runs it: a real server on loopback."""

from __future__ import annotations

import configparser
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from examples.response_headers import headers_html

from .drivers import PAGE
from .ids import cookie_id
from .servers import ROOT, demo_argv, free_port, running

ASGI_DEMO = [sys.executable, "-m", "examples.starlette_app"]


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with running(demo_argv(), port=free_port()) as url:
        yield url + "/"


def tracking_id(html: str) -> str:
    match = re.search(r'<code id="tracking-user-id">([^<]*)</code>', html)
    assert match is not None
    return match.group(1)


def test_demo_mints_once_then_reads_the_cookie(demo_url: str) -> None:
    browser = requests.Session()

    first = browser.get(demo_url, headers=PAGE, timeout=5)
    second = browser.get(demo_url, headers=PAGE, timeout=5)

    assert first.status_code == second.status_code == 200
    assert "minted from Hello Retail on this request" in first.text
    assert "read from the cookie" in second.text
    ours = cookie_id(browser.cookies["helloRetailTrackingUserId"])  # "<id>.<period>": docs/renewal.md
    assert tracking_id(first.text) == tracking_id(second.text) == ours
    assert browser.cookies["hello_retail_id"] == tracking_id(first.text)


def test_demo_new_visitor_gets_a_new_id(demo_url: str) -> None:
    one = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)
    two = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)

    assert one != two


def calls(html: str) -> int:
    match = re.search(r'<strong id="hello-retail-calls">(\d+)</strong>', html)
    assert match is not None
    return int(match.group(1))


def test_demo_shows_the_headers_it_sent_and_counts_the_embedded_fakes_calls(demo_url: str) -> None:
    browser = requests.Session()

    first = browser.get(demo_url, headers=PAGE, timeout=5)
    second = browser.get(demo_url, headers=PAGE, timeout=5)

    for response in (first, second):
        sent = list(response.raw.headers.items())  # each Set-Cookie apart, as the server sent them
        rows = response.text.split('<table id="response-headers">', 1)[1].split("</table>", 1)[0].strip()
        assert rows == headers_html(sent)
    assert first.text.count("<th>Set-Cookie</th><td><code>") == 2
    assert '<tr class="not-sent"><th>Set-Cookie</th>' in second.text
    assert calls(second.text) == calls(first.text) + 1  # the recommendations; the id came from the cookie
    assert "ids from the embedded fake Hello Retail at http://127.0.0.1:" in first.text


def test_demo_product_pictures_come_through_the_demos_own_origin(demo_url: str) -> None:
    """The embedded fake's pictures, served by the demo: a browser on another machine (HOST=0.0.0.0) sees them."""
    html = requests.get(demo_url + "?q=lamp", headers=PAGE, timeout=5).text

    images = re.findall(r'<img src="([^"]+)"', html)
    pictures = [requests.get(demo_url + src.removeprefix("/"), timeout=5) for src in images[:3]]

    assert len(images) == 12  # 8 search results, 4 recommendations
    assert all(re.fullmatch(r"/images/[\w.-]+\.svg", src) for src in images), images
    assert [(p.status_code, p.headers["Content-Type"]) for p in pictures] == [(200, "image/svg+xml")] * 3
    assert pictures[0].content.startswith(b"<svg")
    assert requests.get(demo_url + "images/..%2f..%2fetc%2fpasswd", timeout=5).status_code == 404


# -- make demo: listening, and what it installs ---------------------------------------------------


def demo_env(**extra: str) -> dict[str, str]:
    """Our environment without HELLO_RETAIL_* (the demo uses its embedded fake), plus *extra*."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}, **extra}


@pytest.mark.parametrize(
    ("argv", "command"),
    [pytest.param(demo_argv(), "make demo", id="flask"), pytest.param(ASGI_DEMO, "make demo-asgi", id="asgi")],
)
def test_a_taken_port_is_said_before_any_banner(argv: list[str], command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Bounded only so that a demo that serves anyway cannot hang the suite.
        done = subprocess.run(
            argv, check=False, cwd=ROOT, env=demo_env(PORT=str(port)), capture_output=True, text=True, timeout=60
        )

    assert done.returncode == 1, done
    assert "Demo shop:" not in done.stdout + done.stderr  # no banner for a shop that is not there
    assert "Traceback" not in done.stderr
    assert f"The demo cannot listen on 127.0.0.1:{port}: Address already in use." in done.stderr
    assert f"choose another port: {command} PORT={port + 1}" in done.stderr


@pytest.mark.parametrize("argv", [pytest.param(demo_argv(), id="flask"), pytest.param(ASGI_DEMO, id="asgi")])
def test_host_chooses_where_the_demo_listens(argv: list[str]) -> None:
    """127.0.0.2 is loopback too, and not where the demo listens by default (127.0.0.1)."""
    port = free_port()
    with running(argv, port=port, env={"HOST": "127.0.0.2"}, host="127.0.0.2") as url:
        page = requests.get(url + "/", headers=PAGE, timeout=5)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/health", timeout=5)

    assert page.status_code == 200
    assert tracking_id(page.text)


def make_dry_run(target: str) -> list[str]:
    """The commands ``make TARGET`` runs in a fresh clone (both venvs pointed where none exists)."""
    fresh = {"VENV": "build/no-such-venv", "DEMO_VENV": "build/no-such-demo-venv", "PYTHON": "python3"}
    # Not what an outer make (make test-compat) passes down: its flags, and "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target, *(f"{k}={v}" for k, v in fresh.items())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("target", "wanted"),
    [
        ("demo", "$(python3 examples/requirements.py flask) "),
        ("demo-asgi", "$(python3 examples/requirements.py starlette) 'uvicorn>=0.23'"),
    ],
)
def test_make_demo_installs_what_the_package_and_its_framework_need_not_the_dev_tools(target: str, wanted: str) -> None:
    commands = make_dry_run(target)

    venv = "build/no-such-demo-venv/bin/python"
    assert (
        commands[0]
        == "test -x build/no-such-demo-venv/bin/python || python3 -m venv --without-pip build/no-such-demo-venv"
    )
    (install,) = [c for c in commands if " install " in c]
    # Both ways (this Python's pip into the venv, or the venv's own pip) install exactly that.
    assert install.count(f" install --quiet {wanted}") == 2
    assert f"python3 -m pip --python {venv} install" in install
    assert f"{venv} -m pip install" in install
    assert "-e " not in install  # nothing is built: the package runs from the checkout
    assert not any("build/no-such-venv" in c for c in commands)  # the dev venv is not made
    assert commands[-1].endswith(f"{venv} -m examples.{'flask' if target == 'demo' else 'starlette'}_app")
    # make test and make lint keep the full dev venv.
    for dev in ("test", "lint"):
        assert any(c.endswith("-e '.[flask,django,asgi,starlette,fastapi,testing,dev]'") for c in make_dry_run(dev))


def test_the_demo_requirements_are_the_package_s_and_the_extra_s() -> None:
    from examples.requirements import requirements

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    core = [r for r in config["options"]["install_requires"].splitlines() if r]
    flask = [r for r in config["options.extras_require"]["flask"].splitlines() if r]

    assert requirements("flask") == core + flask
    assert "flask>=2.3" in requirements("flask")
    assert {"starlette>=0.37", "httpx>=0.24"} <= set(requirements("starlette"))
    assert not any(r.startswith("#") or not r for r in requirements("starlette", "testing"))


# The demo's pages in a child process that can import only the standard library, our code and
# the distributions given (as the demo venv has them): any other import fails as in that venv.
_LEAN = """
import json, re, sys
from importlib.metadata import packages_distributions

allowed, ours = set(json.loads(sys.argv[1])), {{"examples", "hr_middleware", "tests"}}
providers = packages_distributions()


class NotInTheDemoVenv:
    @staticmethod
    def find_spec(name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in ours or top not in providers:
            return None
        if {{re.sub(r"[-_.]+", "-", d).lower() for d in providers[top]}} & allowed:
            return None
        raise ModuleNotFoundError(f"No module named {{top!r}} (not in the demo venv)", name=top)


sys.meta_path.insert(0, NotInTheDemoVenv)
from hr_middleware.testing import FakeHelloRetail

PAGE = {page!r}
with FakeHelloRetail() as fake:
    if "{module}" == "examples.flask_app":
        from examples.flask_app.__main__ import create_app
        config = {{"HELLO_RETAIL_WEBSITE_UUID": fake.website_uuid, "HELLO_RETAIL_API_URL": fake.url}}
        client = create_app(config, fake=fake).test_client()
    else:
        from examples.starlette_app.__main__ import create_app, uvicorn
        from starlette.testclient import TestClient
        client = TestClient(create_app(fake=fake, website_uuid=fake.website_uuid, api_url=fake.url)).__enter__()
    for path in ("/", "/?q=lamp", "/images/1-a.svg"):
        assert client.get(path, headers=PAGE).status_code == 200, path
    print("served")
"""


def distributions_of(requirements: list[str]) -> set[str]:
    """The distributions *requirements* install, with everything they require (as installed here), normalised."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for need in map(Requirement, needs):
            if need.marker is None or need.marker.evaluate({"extra": ""}):
                todo.append(need)
    return seen


@pytest.mark.parametrize(
    ("module", "installs"),
    [
        pytest.param("examples.flask_app", ["flask"], id="flask"),
        # uvicorn is the server make demo-asgi adds; starlette's TestClient needs httpx, which [starlette] has.
        pytest.param("examples.starlette_app", ["starlette", "uvicorn>=0.23"], id="asgi"),
    ],
)
def test_the_demo_serves_with_only_what_its_venv_installs(module: str, installs: list[str]) -> None:
    from examples.requirements import requirements

    allowed = distributions_of(requirements(installs[0]) + installs[1:])

    code = _LEAN.format(module=module, page=PAGE)
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(sorted(allowed))],
        check=False,
        cwd=ROOT,
        env=demo_env(),
        capture_output=True,
        text=True,
    )

    assert (done.returncode, done.stdout.strip()) == (0, "served"), done.stderr
