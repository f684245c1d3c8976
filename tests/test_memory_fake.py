"""The fake in memory is the fake over a socket, as the transports see it.

Most of the suite drives the fake in memory (no socket, no wait: see
``conftest.py``). That is honest only if, for every way the fake answers or
fails, the real transports make the same of both: the same status and answer,
or the same error. This table holds them together; its socket rows are real
exchanges with real time budgets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from hr_middleware._hello_retail import endpoints
from hr_middleware._hello_retail.errors import HelloRetailError
from hr_middleware._hello_retail.mint import MINT_HEADERS, MINT_MAX_BYTES
from hr_middleware._hello_retail.transport import AsyncTransport, SyncTransport
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail, Mode

from .ids import A

#: The budget of the faults that never answer in time (kept short: these rows wait it out over the socket).
BUDGET = 0.3
WAITING = {Mode.HANG, Mode.DRIP, Mode.DRIP_HEADERS}
#: The budget of every other row: answered at once, so only a loaded machine's pause could use it.
ROOMY = 10.0

CALLS = {
    "mint": (endpoints.MINT, {"websiteUuid": DEFAULT_WEBSITE_UUID}, MINT_HEADERS, MINT_MAX_BYTES),
    "search": (endpoints.SEARCH, {"key": "search-key", "query": "shoes", "trackingUserId": A}, None, None),
}


@pytest.fixture
def in_memory() -> Iterator[FakeHelloRetail]:
    with FakeHelloRetail(in_memory=True) as fake:
        yield fake


def outcome(fake: FakeHelloRetail, call: str, mode: Mode, flavour: str) -> Any:
    """What a real transport makes of *fake* answering *call* in *mode*: an error's class,
    or the status and the answer's keys."""
    path, document, headers, max_bytes = CALLS[call]
    fake.drip_interval = 0.2
    if call == "mint":
        fake.mode = mode
    else:
        fake.api_mode = mode
    body = json.dumps(document).encode()
    budget = BUDGET if mode in WAITING else ROOMY
    try:
        if flavour == "sync":
            transport = SyncTransport()
            try:
                answer = transport.post(fake.url + path, body, timeout=budget, headers=headers, max_bytes=max_bytes)
            finally:
                transport.close()
        else:
            import anyio

            async def post() -> Any:
                transport = AsyncTransport(api_url=fake.url)
                try:
                    return await transport.post(
                        fake.url + path, body, timeout=budget, headers=headers, max_bytes=max_bytes
                    )
                finally:
                    await transport.aclose()

            answer = anyio.run(post)
    except HelloRetailError as exc:
        return type(exc).__name__
    try:
        shape = sorted(answer.json()) if isinstance(answer.json(), dict) else type(answer.json()).__name__
    except HelloRetailError as exc:
        shape = type(exc).__name__
    return answer.status, shape


@pytest.mark.loopback
@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("mode", list(Mode))
def test_the_fake_in_memory_answers_and_fails_as_over_a_socket(
    mode: Mode, call: str, flavour: str, fake_hello_retail: FakeHelloRetail, in_memory: FakeHelloRetail
) -> None:
    over_the_socket = outcome(fake_hello_retail, call, mode, flavour)
    fake_hello_retail.reset()  # release a hanging answer before the next row

    assert outcome(in_memory, call, mode, flavour) == over_the_socket


def test_the_fake_in_memory_records_what_the_transport_sent(in_memory: FakeHelloRetail) -> None:
    transport = SyncTransport()
    try:
        transport.post(
            in_memory.url + endpoints.MINT + "?x=1", b'{"websiteUuid": "u"}', timeout=1, headers=MINT_HEADERS
        )
    finally:
        transport.close()

    (request,) = in_memory.mint_requests()
    assert (request.method, request.path, request.query, request.json) == (
        "POST",
        endpoints.MINT,
        "x=1",
        {"websiteUuid": "u"},
    )
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept-encoding"] == "identity"
    assert in_memory.mint_count == 1


def test_a_fake_in_memory_answers_only_while_it_runs() -> None:
    fake = FakeHelloRetail(in_memory=True)
    transport = SyncTransport()
    try:
        with pytest.raises(HelloRetailError):  # not started: its host never resolves
            transport.post(fake.url + endpoints.MINT, b"{}", timeout=1)
        with fake:
            assert transport.post(fake.url + endpoints.MINT, b'{"websiteUuid": "u"}', timeout=1).status == 200
        with pytest.raises(HelloRetailError):  # stopped
            transport.post(fake.url + endpoints.MINT, b"{}", timeout=1)
    finally:
        transport.close()
