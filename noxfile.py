"""The compatibility matrix: ``make test-all`` (every Python 3.10-3.13 found here x oldest/newest frameworks)."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

#: The oldest releases we support, as declared in setup.cfg's extras.
OLDEST = [
    "flask==2.3.*",
    "werkzeug==2.3.*",
    "django==4.2.*",
    "starlette==0.37.*",
    "fastapi==0.110.*",
    "httpx==0.24.*",
    "requests==2.28.*",
    "itsdangerous==2.1.*",
]


@nox.session(python=PYTHONS)
@nox.parametrize("frameworks", ["oldest", "newest"])
def tests(session: nox.Session, frameworks: str) -> None:
    """The whole suite against the oldest or the newest supported frameworks."""
    session.install("-e", ".[flask,django,asgi,dev]")
    if frameworks == "oldest":
        session.install(*OLDEST)
    else:
        session.install("--upgrade", "flask", "werkzeug", "django", "starlette", "fastapi", "httpx", "requests")
    session.run("python", "-m", "pip", "freeze", silent=False)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
