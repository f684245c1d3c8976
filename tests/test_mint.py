"""The mint call against the fake Hello Retail: outcomes, reasons, time budget, pooling, threads."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from hr_middleware import is_valid_id
from hr_middleware._hello_retail.mint import MINT_FAILED, AsyncMinter, Minter
from hr_middleware.testing import FakeHelloRetail, Mode

from .drivers import in_threads
from .ids import A
from .loops import run_on
from .servers import free_port


def run_sync(minter: Minter) -> str | None:
    return minter.mint()


def run_async(minter: AsyncMinter, loop: str = "asyncio") -> str | None:
    async def go() -> str | None:
        try:
            return await minter.amint()
        finally:
            await minter.aclose()

    return run_on(loop, go)


# Both transports, the async one on each event loop, one table: (factory, runner)
FLAVOURS = {
    "sync": (Minter, run_sync),
    "async": (AsyncMinter, run_async),
    "async-uvloop": (AsyncMinter, functools.partial(run_async, loop="uvloop")),
}


@pytest.fixture(params=list(FLAVOURS))
def mint(request: pytest.FixtureRequest, fake_hello_retail: FakeHelloRetail) -> Callable[..., str | None]:
    factory, runner = FLAVOURS[request.param]

    def call(**options: Any) -> str | None:
        return runner(factory(fake_hello_retail.settings(**options)))

    return call


# The good answers: what the live service sends, and what the public documentation shows.
GOOD_ANSWERS = [
    pytest.param(Mode.OK, id="id-and-success"),
    pytest.param(Mode.ID_ONLY, id="id-without-success"),
]


@pytest.mark.parametrize("mode", GOOD_ANSWERS)
def test_success_returns_the_minted_id(
    mint: Callable[..., str | None], fake_hello_retail: FakeHelloRetail, mode: Mode
) -> None:
    fake_hello_retail.mode = mode
    tracking_user_id = mint()

    assert is_valid_id(tracking_user_id)
    assert fake_hello_retail.minted == [tracking_user_id]


REASONS = [
    pytest.param(Mode.SERVER_ERROR, "Hello Retail answered HTTP 500", id="500"),
    pytest.param(Mode.BAD_REQUEST, "Hello Retail answered HTTP 400", id="400"),
    pytest.param(Mode.NOT_JSON, "answer is not JSON", id="not-json"),
    pytest.param(Mode.NO_ID, "answer has no id", id="no-id"),
    pytest.param(Mode.INVALID_ID, "answer's id is not 24 lower-case hex", id="invalid-id"),
    pytest.param(Mode.SUCCESS_FALSE, "answer says success: false", id="success-false"),
    pytest.param(Mode.HUGE, "answer larger than", id="huge"),
    pytest.param(Mode.HANG, "within 0.3s", id="hang"),
    pytest.param(Mode.DRIP, "within 0.3s", id="drip"),
    pytest.param(Mode.DRIP_HEADERS, "within 0.3s", id="drip-headers"),
    pytest.param(Mode.DROP, "", id="drop"),  # the wording is the transport's
    pytest.param(Mode.RESET, "", id="reset"),
]


@pytest.mark.parametrize(("mode", "reason"), REASONS)
def test_failure_is_none_and_one_warning_with_the_reason(
    mint: Callable[..., str | None],
    fake_hello_retail: FakeHelloRetail,
    hr_log: pytest.LogCaptureFixture,
    mode: Mode,
    reason: str,
) -> None:
    fake_hello_retail.mode = mode

    assert mint(timeout=0.3) is None

    (record,) = hr_log.records
    assert record.levelname == "WARNING"
    assert record.msg == MINT_FAILED
    assert reason in record.getMessage()
    assert not record.getMessage().startswith("Hello Retail mint failed ()")
    assert "<script>" not in record.getMessage()


@pytest.mark.loopback  # in memory a stall is a timeout at once: only a socket makes the budget hold
@pytest.mark.parametrize("mode", [Mode.HANG, Mode.DRIP, Mode.DRIP_HEADERS])
def test_time_budget_holds_when_the_server_stalls(
    mint: Callable[..., str | None], fake_hello_retail: FakeHelloRetail, mode: Mode
) -> None:
    fake_hello_retail.mode = mode
    fake_hello_retail.drip_interval = 0.1  # a byte every 100 ms: a 50-byte answer takes 5 s

    budget = 0.3
    started = time.monotonic()
    assert mint(timeout=budget) is None
    elapsed = time.monotonic() - started

    # Time is what is bounded here. The margin is for a loaded 2-core machine,
    # not for the code; a mint that waited for the server would take 5 s or more.
    assert elapsed < budget + 2.0, elapsed


@pytest.mark.loopback  # in memory a delay within the budget is not waited
def test_slow_but_within_budget_succeeds(mint: Callable[..., str | None], fake_hello_retail: FakeHelloRetail) -> None:
    fake_hello_retail.delay = 0.1

    assert is_valid_id(mint(timeout=1.0))


def test_connection_refused(hr_log: pytest.LogCaptureFixture, fake_hello_retail: FakeHelloRetail) -> None:
    settings = fake_hello_retail.settings(api_url=f"http://127.0.0.1:{free_port()}")

    assert Minter(settings).mint() is None
    assert run_async(AsyncMinter(settings)) is None
    assert [r.levelname for r in hr_log.records] == ["WARNING", "WARNING"]
    assert all("Connect" in r.getMessage() or "refused" in r.getMessage() for r in hr_log.records)


@pytest.mark.loopback
def test_sync_minter_reuses_one_keep_alive_connection(fake_hello_retail: FakeHelloRetail) -> None:
    minter = Minter(fake_hello_retail.settings())

    ids = [minter.mint() for _ in range(5)]

    assert len(set(ids)) == 5
    assert fake_hello_retail.connections == 1
    minter.close()


@pytest.mark.loopback
def test_async_minter_reuses_one_keep_alive_connection(fake_hello_retail: FakeHelloRetail) -> None:
    minter = AsyncMinter(fake_hello_retail.settings())

    async def go() -> list[str | None]:
        try:
            return [await minter.amint() for _ in range(5)]
        finally:
            await minter.aclose()

    ids = run_on("asyncio", go)

    assert len(set(ids)) == 5
    assert fake_hello_retail.connections == 1


@pytest.mark.loopback  # the threads share the transport's pooled connections, which memory bypasses
def test_sync_minter_is_safe_under_threads(fake_hello_retail: FakeHelloRetail) -> None:
    minter = Minter(fake_hello_retail.settings())
    fake_hello_retail.delay = 0.02

    def work() -> list[str | None]:
        return [minter.mint() for _ in range(5)]

    results = [tracking_user_id for batch in in_threads([work] * 8) for tracking_user_id in batch]

    assert len(results) == 40
    assert sorted(results) == sorted(fake_hello_retail.minted)  # type: ignore[type-var]
    assert len(set(results)) == 40
    minter.close()


def test_the_minter_keeps_no_cookies_from_hello_retail(fake_hello_retail: FakeHelloRetail) -> None:
    minter = Minter(fake_hello_retail.settings())
    minter.mint()
    minter.mint()

    assert "cookie" not in fake_hello_retail.mint_requests()[1].headers
    minter.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"[" * 100_000, "answer is not JSON", id="nested-too-deep"),
        pytest.param(json.dumps({"id": A, "success": False}).encode(), "says success: false", id="success-false"),
        pytest.param(json.dumps({"id": A, "success": "yes"}).encode(), "success is not true", id="success-str"),
        pytest.param(json.dumps({"id": A, "success": None}).encode(), "success is not true", id="success-null"),
        pytest.param(b'{"success": true}', "answer has no id", id="no-id"),
        pytest.param(json.dumps([A]).encode(), "answer is not a JSON object", id="list"),
    ],
)
def test_parse_refuses_what_is_not_a_clear_success(body: bytes, reason: str) -> None:
    from hr_middleware._hello_retail.errors import InvalidResponseError
    from hr_middleware._hello_retail.mint import parse_mint_answer
    from hr_middleware._hello_retail.transport import Answer

    with pytest.raises(InvalidResponseError, match=reason):
        parse_mint_answer(Answer(200, body))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps({"id": A}).encode(), id="documented-id-only"),
        pytest.param(json.dumps({"id": A, "success": True}).encode(), id="live-id-and-success"),
    ],
)
def test_parse_accepts_a_valid_id_with_or_without_success(body: bytes) -> None:
    from hr_middleware._hello_retail.mint import parse_mint_answer
    from hr_middleware._hello_retail.transport import Answer

    assert parse_mint_answer(Answer(200, body)) == A
