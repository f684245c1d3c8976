"""Prefetch: ids minted ahead of need, refilled off the request path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from hr_middleware import is_valid_id
from hr_middleware._hello_retail.mint import MINT_FAILED, AsyncMinter, BreakerState
from hr_middleware._hello_retail.prefetch import AsyncPrefetchingMinter, IdPool, PrefetchingMinter
from hr_middleware.testing import FakeHelloRetail, Mode

from .drivers import Clock
from .ids import SDK, SERVER

#: How long a test waits for a refill before it fails (not a pause: waits end when the pool fills).
DEADLINE = 10.0


class WatchedPool(IdPool):
    """An :class:`IdPool` that tells a waiting test when the refill has put ids in it."""

    def __init__(self, size: int, max_age: float, clock: Callable[[], float] | None = None) -> None:
        if clock is None:
            super().__init__(size, max_age)
        else:
            super().__init__(size, max_age, clock=clock)
        self.changed = threading.Condition()

    def put(self, tracking_user_id: str) -> bool:
        kept = super().put(tracking_user_id)
        with self.changed:
            self.changed.notify_all()
        return kept

    def wait_until_full(self) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: not self.wants_more, DEADLINE), "the pool was not refilled"


def prefetching(driver: Any, clock: Callable[[], float] | None = None) -> tuple[PrefetchingMinter, WatchedPool]:
    """*driver*'s prefetching minter, with a watched pool (on *clock*) put in before the first request."""
    minter = driver.middleware._minter
    assert isinstance(minter, PrefetchingMinter)
    pool = WatchedPool(minter.pool.size, minter.pool.max_age, clock)
    minter.pool = pool
    return minter, pool


def mint_failures(hr_log: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in hr_log.records if r.msg == MINT_FAILED]


def test_nothing_is_minted_before_the_first_request(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=3)
    minter = driver.middleware._minter
    assert isinstance(minter, PrefetchingMinter)

    # No refill thread, so nothing can mint until a request starts one.
    assert not minter.refilling
    assert fake_hello_retail.mint_attempts == 0


def test_pool_fills_after_the_first_visit_and_serves_the_next_without_waiting(
    make_driver: Any, fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    driver = make_driver("wsgi", prefetch=3, timeout=5)
    minter, pool = prefetching(driver)
    first = driver.get("/")  # empty pool: minted inline
    pool.wait_until_full()
    assert fake_hello_retail.mint_count == 4
    pooled = set(fake_hello_retail.minted) - {first.app_id}

    # Hello Retail stops answering; the pool does not care. A visit that waited
    # for a mint (its own, or the refill it starts) would end with a failed mint.
    fake_hello_retail.mode = Mode.HANG
    second = driver.get("/")

    assert mint_failures(hr_log) == []
    assert first.app_id != second.app_id
    assert second.app_id in pooled
    assert second.seen["origin"] == "minted"
    assert set(second.set_cookies) == {SERVER, SDK}
    fake_hello_retail.reset()  # let the refill's hanging mint end now, not at its 5 s budget
    minter.close()


def test_pool_never_grows_past_its_size(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=2)
    minter, pool = prefetching(driver)
    ids = [driver.get("/").app_id for _ in range(10)]
    pool.wait_until_full()
    minter.close()  # waits for the refill thread: no mint is left in flight

    assert len(set(ids)) == 10
    assert all(is_valid_id(i) for i in ids)
    assert len(pool) == 2
    assert fake_hello_retail.mint_count == 10 + 2


def test_stale_ids_are_discarded(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    clock = Clock()
    driver = make_driver("wsgi", prefetch=2, prefetch_max_age=60)
    _, pool = prefetching(driver, clock)
    first = driver.get("/").app_id
    pool.wait_until_full()
    stale = set(fake_hello_retail.minted) - {first}
    clock.now = 60.5

    fresh = driver.get("/").app_id

    assert fresh not in stale
    assert fresh in fake_hello_retail.minted


def test_a_pooled_id_within_its_age_is_used(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    clock = Clock()
    driver = make_driver("wsgi", prefetch=2, prefetch_max_age=60)
    _, pool = prefetching(driver, clock)
    first = driver.get("/").app_id
    pool.wait_until_full()
    pooled = set(fake_hello_retail.minted) - {first}
    clock.now = 59.5

    assert driver.get("/").app_id in pooled


def test_refill_stops_while_the_breaker_is_open(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=5, breaker_threshold=2, breaker_cooldown=60)
    minter, pool = prefetching(driver)
    for _ in range(2):  # Hello Retail failed twice: the breaker is open before the first visit
        minter.breaker.record_failure()
    assert minter.breaker.state is BreakerState.OPEN

    for _ in range(6):  # each visit wakes the refill thread
        assert driver.get("/").app_id is None
    assert minter.refilling
    minter.close()  # waits for the refill thread

    assert fake_hello_retail.mint_attempts == 0  # nothing, inline or background
    assert len(pool) == 0


def test_close_stops_the_thread(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=2)
    minter, pool = prefetching(driver)
    driver.get("/")
    pool.wait_until_full()

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


def test_async_pool_refills_on_the_loop_and_closes(
    fake_hello_retail: FakeHelloRetail, hr_log: pytest.LogCaptureFixture
) -> None:
    minter = AsyncPrefetchingMinter(AsyncMinter(fake_hello_retail.settings(timeout=5)), size=3, max_age=600)
    pool = minter.pool = WatchedPool(3, 600)
    pooled: set[str] = set()

    async def scenario() -> tuple[str | None, bool]:
        first = await minter.amint()  # inline; starts the refill task
        await anyio.to_thread.run_sync(pool.wait_until_full)  # the loop runs the refill meanwhile
        pooled.update(set(fake_hello_retail.minted) - {first})
        fake_hello_retail.mode = Mode.HANG  # a visit that waited for a mint would see it fail
        tracking_user_id = await minter.amint()
        await minter.aclose()
        return tracking_user_id, minter.refilling

    tracking_user_id, refilling = anyio.run(scenario)

    assert tracking_user_id in pooled
    assert mint_failures(hr_log) == []
    assert refilling is False


@pytest.mark.parametrize("size", [1, 4])
def test_concurrent_first_visits_share_the_pool_without_duplicates(
    make_driver: Any, fake_hello_retail: FakeHelloRetail, size: int
) -> None:
    driver = make_driver("wsgi", prefetch=size)
    _, pool = prefetching(driver)
    driver.get("/")
    pool.wait_until_full()
    seen = [result.app_id for result in driver.get_at_once(12)]

    assert len(set(seen)) == 12


def test_a_dead_refill_thread_is_replaced(make_driver: Any, fake_hello_retail: FakeHelloRetail) -> None:
    driver = make_driver("wsgi", prefetch=2)
    minter, pool = prefetching(driver)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    minter._refiller.get().thread = dead  # a refill thread that died

    driver.get("/")

    pool.wait_until_full()
    assert minter.refilling
