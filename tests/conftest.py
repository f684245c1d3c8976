"""Shared fixtures: the fake Hello Retail comes from our own pytest plugin, in memory unless a test needs its socket.

A test marked ``loopback`` gets the plugin's fake as users get it: a real HTTP
server on 127.0.0.1 (for real servers in other processes, the transports'
sockets, real time budgets). Every other test gets the same fake answering in
memory: the same answers and faults, without a socket, and a hang or a drip is
the transport's timeout at once instead of after the time budget.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hr_middleware.testing import FakeHelloRetail

from .drivers import DRIVERS

ALL_ADAPTERS = list(DRIVERS)


@pytest.fixture(scope="session")
def _hr_memory_fake() -> Iterator[FakeHelloRetail]:
    with FakeHelloRetail(in_memory=True) as fake:
        yield fake


@pytest.fixture
def fake_hello_retail(
    request: pytest.FixtureRequest, _hr_fake_server: FakeHelloRetail, _hr_memory_fake: FakeHelloRetail
) -> Iterator[FakeHelloRetail]:
    """The fake Hello Retail, reset for this test: in memory unless the test is marked ``loopback``."""
    fake = _hr_fake_server if request.node.get_closest_marker("loopback") else _hr_memory_fake
    fake.reset()
    yield fake
    fake.reset()


@pytest.fixture
def make_driver(fake_hello_retail: FakeHelloRetail) -> Iterator[Callable[..., Any]]:
    """``make_driver(adapter, **options)``: that adapter's test app, pointed at the fake.

    Without renewal unless the test asks for it (``renew_after=...``): the behaviour tables
    send the bare ids of cookies set before renewal, which a renewal would re-set on every
    page navigation; tests/test_renewal.py runs the tables of renewal.
    """
    made: list[Any] = []

    def make(adapter: str, **options: Any) -> Any:
        options.setdefault("renew_after", None)
        driver = DRIVERS[adapter](fake_hello_retail.settings(**options))
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


@pytest.fixture(params=ALL_ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """Every adapter in turn."""
    return str(request.param)


@pytest.fixture
def hr_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captured records of the ``hr_middleware`` logger (DEBUG and up)."""
    caplog.set_level(logging.DEBUG, logger="hr_middleware")
    return caplog


@pytest.fixture(autouse=True)
def no_visit_left_behind() -> Iterator[None]:
    """Every test ends with no visit in the context: a leaked one would be the next test's "current visitor"."""
    from hr_middleware._serving import current as current_visit
    from hr_middleware._serving import enter as set_visit

    yield
    if current_visit() is not None:
        set_visit(None)  # one leak fails one test, not every later one
        pytest.fail("the test left a visit in the context (a WSGI response never closed?)")


_getaddrinfo = socket.getaddrinfo


def _getaddrinfo_off_the_network(host: Any, *args: Any, **kwargs: Any) -> Any:
    """``socket.getaddrinfo``, but a ``.invalid`` name (which never resolves, RFC 6761) fails here,
    as the resolver would answer, without a DNS query leaving the machine."""
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host or "")
    if name.rstrip(".").lower().endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def no_dns_query_leaves_the_machine() -> Iterator[None]:
    """Tests reach loopback only: the in-memory fake's ``.invalid`` host (when a request gets past
    it: the fake not started, or stopped) and the DNS-failure tests are answered here. (Python's
    resolver only: uvloop's and other processes' are not covered.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", _getaddrinfo_off_the_network)
        yield
