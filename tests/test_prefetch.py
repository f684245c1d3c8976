"""Prefetch: ids minted ahead of need, refilled off the request path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from hr_middleware import is_valid_id
from hr_middleware._hello_retail.mint import AsyncMinter
from hr_middleware._hello_retail.prefetch import AsyncPrefetchingMinter, IdPool, PrefetchingMinter
from hr_middleware.testing import FakeHelloRetail, Mode


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def prefetching(driver: Any) -> PrefetchingMinter:
    minter = driver.middleware.minter
    assert isinstance(minter, PrefetchingMinter)
    return minter


def test_nothing_is_minted_before_the_first_request(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=3)
    time.sleep(0.2)

    assert fake_hello_retail.mint_attempts == 0
    assert not prefetching(driver).refilling


def test_pool_fills_after_the_first_visit_and_serves_the_next_without_waiting(
    make_driver: Any, fake_hello_retail: FakeHelloRetail
) -> None:
    driver = make_driver("wsgi", prefetch=3)
    first = driver.get("/")  # empty pool: minted inline
    minter = prefetching(driver)
    assert eventually(lambda: len(minter.pool) == 3)
    assert fake_hello_retail.mint_count == 4
    pooled = set(fake_hello_retail.minted) - {first.app_id}

    fake_hello_retail.delay = 2.0  # Hello Retail turns slow; the pool does not care
    started = time.monotonic()
    second = driver.get("/")
    waited = time.monotonic() - started

    assert first.app_id != second.app_id
    assert second.app_id in pooled
    assert second.seen["origin"] == "minted"
    assert waited < 1.0  # far from the 2 s an inline mint would take
    assert set(second.set_cookies) == {"helloRetailTrackingUserId", "hello_retail_id"}


def test_pool_never_grows_past_its_size(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=2)
    ids = [driver.get("/").app_id for _ in range(10)]
    minter = prefetching(driver)
    assert eventually(lambda: len(minter.pool) == 2)
    time.sleep(0.1)

    assert len(set(ids)) == 10
    assert all(is_valid_id(i) for i in ids)
    assert len(minter.pool) == 2
    assert fake_hello_retail.mint_count == 10 + 2


def test_stale_ids_are_discarded(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=2, prefetch_max_age=1)
    driver.get("/")
    minter = prefetching(driver)
    assert eventually(lambda: len(minter.pool) == 2)
    stale = {tracking_user_id for tracking_user_id, _ in minter.pool._ids}
    time.sleep(1.2)

    fresh = driver.get("/").app_id

    assert fresh not in stale
    assert fresh in fake_hello_retail.minted


def test_refill_stops_while_the_breaker_is_open(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    from hr_middleware._hello_retail.mint import BreakerState

    fake_hello_retail.mode = Mode.SERVER_ERROR
    driver = make_driver("wsgi", prefetch=5, breaker_threshold=2, breaker_cooldown=60)
    minter = prefetching(driver)
    while minter.breaker.state is not BreakerState.OPEN:
        assert driver.get("/").app_id is None
    assert eventually(lambda: not minter.pool.wants_more or minter.breaker.state is BreakerState.OPEN)
    time.sleep(0.1)  # a refill mint already in flight may still land
    attempts = fake_hello_retail.mint_attempts

    for _ in range(6):
        assert driver.get("/").app_id is None
    time.sleep(0.2)

    assert fake_hello_retail.mint_attempts == attempts  # nothing more, inline or background
    assert len(minter.pool) == 0


def test_close_stops_the_thread(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=2)
    driver.get("/")
    minter = prefetching(driver)
    assert eventually(lambda: len(minter.pool) == 2)

    minter.close()

    assert not minter.refilling
    assert not any(t.name == "hr-middleware-prefetch" and t.is_alive() for t in threading.enumerate())


def test_pool_unit_is_bounded_and_ages() -> None:
    now = [0.0]
    pool = IdPool(2, max_age=10, clock=lambda: now[0])
    assert pool.put("a" * 24)
    assert pool.put("b" * 24)
    assert not pool.put("c" * 24)
    now[0] = 5
    assert pool.take() == "a" * 24
    now[0] = 11
    assert pool.take() is None  # "b" is 11 s old
    assert len(pool) == 0


def test_async_pool_refills_on_the_loop_and_closes(fake_hello_retail: FakeHelloRetail) -> None:
    minter = AsyncPrefetchingMinter(AsyncMinter(fake_hello_retail.settings()), size=3, max_age=600)
    pooled: set[str] = set()

    async def scenario() -> tuple[str | None, float, bool]:
        first = await minter.amint()  # inline; starts the refill task
        with anyio.fail_after(5):
            while len(minter.pool) < 3:
                await anyio.sleep(0.01)
        pooled.update(set(fake_hello_retail.minted) - {first})
        fake_hello_retail.delay = 2.0
        started = time.monotonic()
        tracking_user_id = await minter.amint()
        waited = time.monotonic() - started
        await minter.aclose()
        return tracking_user_id, waited, minter.refilling

    tracking_user_id, waited, refilling = anyio.run(scenario)

    assert tracking_user_id in pooled
    assert waited < 0.5
    assert refilling is False


@pytest.mark.parametrize("size", [1, 4])
def test_concurrent_first_visits_share_the_pool_without_duplicates(
    make_driver: Any, fake_hello_retail: FakeHelloRetail, size: int
) -> None:
    driver = make_driver("wsgi", prefetch=size)
    driver.get("/")
    assert eventually(lambda: len(prefetching(driver).pool) == size)
    seen: list[str] = []

    def visit() -> None:
        seen.append(driver.get("/").app_id)

    threads = [threading.Thread(target=visit) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(seen)) == 12


def test_a_dead_refill_thread_is_replaced(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=2)
    minter = prefetching(driver)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    minter._refiller.get().thread = dead  # a refill thread that died

    driver.get("/")

    assert eventually(lambda: len(minter.pool) == 2)
    assert minter.refilling
