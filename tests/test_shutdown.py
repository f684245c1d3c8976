"""A shutdown finishes while the prefetch refill is minting: ``aclose()``, ``asyncio.run()``'s teardown, a master.

On CPython 3.10 and 3.11, ``asyncio.wait_for`` swallows a cancel that arrives as
the awaited exchange finishes: a refill that awaited its mints through it went
on after the cancel, then waited for the next visit forever, and whatever
waited for the refill (``aclose()``, ``asyncio.run()``'s teardown) with it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import secrets
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import anyio
import pytest
import requests

from hr_middleware import Settings, is_valid_id
from hr_middleware._hello_retail.mint import AsyncMinter
from hr_middleware._hello_retail.prefetch import AsyncPrefetchingMinter
from hr_middleware._hello_retail.transport import Answer
from hr_middleware.testing import DEFAULT_WEBSITE_UUID, FakeHelloRetail

from .drivers import PAGE
from .servers import ROOT, MintGate, free_port, running

#: Runs of the README's TestClient pattern: the hang came at some runs, not at each (docs/reliability.md).
README_RUNS = 20
#: Seconds the README's runs may take in all: a budget that tells a hang, not a pause (they take a few seconds).
README_BUDGET = 180
#: Starts of the preloading gunicorn: the hang came at some starts, not at each (docs/reliability.md,
#: measured with 6: half of them hung before the fix).
GUNICORN_STARTS = 4
#: Seconds a shutdown may take before the test calls it hung: a budget, not a pause.
SHUTDOWN_BUDGET = 30.0


def test_the_readme_testclient_pattern_with_prefetch_leaves_its_with_block() -> None:
    # In a subprocess: a run that never left its block must fail the test, not hang the suite.
    argv = [sys.executable, "-m", "tests.readme_testclient_runs", str(README_RUNS)]
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=README_BUDGET, check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"left the with block in {output.count('left')} runs, then hung")

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("left") == README_RUNS


def uvicorn_worker_class() -> str:
    """gunicorn's worker class for uvicorn: the ``uvicorn-worker`` package's if installed, else uvicorn's own."""
    if importlib.util.find_spec("uvicorn_worker"):
        return "uvicorn_worker.UvicornWorker"
    return "uvicorn.workers.UvicornWorker"


@pytest.mark.loopback
def test_a_preloading_gunicorn_uvicorn_master_that_minted_at_import_starts_workers_that_serve(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    # The app renders a page at import under asyncio.run(), whose teardown cancels the refill mid-mint.
    outcomes: list[Mapping[str, Any]] = []
    for _ in range(GUNICORN_STARTS):
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-k", uvicorn_worker_class()]
        argv += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "tests.asgi_preload_app:application"]
        env = {
            "PRELOAD_API_URL": fake_hello_retail.url,
            "PRELOAD_WEBSITE_UUID": fake_hello_retail.website_uuid,
            "PRELOAD_TIMEOUT": "3",
        }
        minted_before = len(fake_hello_retail.minted)
        try:
            with running(argv, port=port, env=env, own_group=True) as url:
                master_minted = set(fake_hello_retail.minted[minted_before:])
                visits = [requests.get(url + "/", headers=PAGE, timeout=10).json() for _ in range(4)]
        except RuntimeError:  # the master never finished importing the app (readiness is bounded)
            outcomes.append({"served": False})
            continue
        outcomes.append({"served": True, "ids": [v["id"] for v in visits], "master_minted": master_minted})

    served = sum(o["served"] for o in outcomes)
    assert served == GUNICORN_STARTS, f"{served} of {GUNICORN_STARTS} masters finished importing and served"
    ids = [i for o in outcomes for i in o["ids"]]
    assert all(is_valid_id(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert not set(ids) & set().union(*(o["master_minted"] for o in outcomes))


class WaitForTransport:
    """An async transport whose exchange ends when the test answers, awaited through ``asyncio.wait_for``.

    As ``AsyncTransport.post`` awaited its exchange: on CPython 3.10 and 3.11 a
    cancel that arrives as the exchange finishes is swallowed, and the answer
    returned. ``started`` is set once *expected* exchanges have started.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.exchanges = 0
        self.started = asyncio.Event()
        self.answered = asyncio.Event()

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> Answer:
        return await asyncio.wait_for(self._exchange(), timeout)

    async def _exchange(self) -> Answer:
        self.exchanges += 1
        if self.exchanges >= self.expected:
            self.started.set()
        await self.answered.wait()
        return Answer(200, json.dumps({"id": secrets.token_hex(12), "success": True}).encode())

    async def aclose(self) -> None:
        pass


def test_aclose_finishes_when_its_cancel_lands_as_the_refills_exchange_ends(
    fake_hello_retail: FakeHelloRetail,
) -> None:
    async def scenario() -> tuple[bool, str | None, bool, bool]:
        transport = WaitForTransport(expected=2)
        minter = AsyncPrefetchingMinter(
            AsyncMinter(fake_hello_retail.settings(timeout=5), transport=transport),  # type: ignore[arg-type]
            size=8,
            max_age=600,
        )
        visit = asyncio.get_running_loop().create_task(minter.amint())  # mints inline, starts the refill
        with anyio.fail_after(SHUTDOWN_BUDGET):  # a mint that never reaches the transport fails the test
            await transport.started.wait()  # the visit's exchange and the refill's are running
        refill = minter._refill_task.get().task
        assert refill is not None
        # (The old aclose() swallowed the cancel of a scope it outlived: ask the scope, not for an exception.)
        with anyio.move_on_after(SHUTDOWN_BUDGET) as budget:
            transport.answered.set()  # both exchanges end now, and the cancel lands as they do
            await minter.aclose()
        return budget.cancel_called, await visit, refill.done(), minter.refilling

    hung, tracking_user_id, refill_done, refilling = anyio.run(scenario)

    assert not hung, f"aclose() did not finish within {SHUTDOWN_BUDGET:g}s"
    assert is_valid_id(tracking_user_id)
    assert refill_done
    assert not refilling


def test_aclose_does_not_wait_for_an_answer_that_never_comes() -> None:
    with MintGate() as gate:  # holds every mint until released

        async def scenario() -> tuple[bool, bool, list[str]]:
            minter = AsyncPrefetchingMinter(
                # A budget past SHUTDOWN_BUDGET: the cancel must end the refill, not aclose()'s bound.
                AsyncMinter(Settings(website_uuid=DEFAULT_WEBSITE_UUID, api_url=gate.url, timeout=SHUTDOWN_BUDGET * 2)),
                size=8,
                max_age=600,
            )
            visit = asyncio.get_running_loop().create_task(minter.amint())
            await anyio.to_thread.run_sync(gate.wait_until_arrived, 2)  # the visit's mint and the refill's
            refill = minter._refill_task.get().task
            assert refill is not None
            with anyio.move_on_after(SHUTDOWN_BUDGET) as budget:
                await minter.aclose()
            held = list(gate.minted)  # aclose() did not wait for the gate to open
            visit.cancel()
            return budget.cancel_called, refill.done(), held

        hung, refill_done, held = anyio.run(scenario)

    assert not hung, f"aclose() did not finish within {SHUTDOWN_BUDGET:g}s"
    assert refill_done
    assert held == []
