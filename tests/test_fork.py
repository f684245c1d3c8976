"""Fork safety: a forked worker never shares an id, a socket or a thread pool with its parent or siblings."""

from __future__ import annotations

import json
import os
import secrets
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from hr_middleware import is_valid_id
from hr_middleware._hello_retail.prefetch import PrefetchingMinter, make_minter
from hr_middleware.client import HelloRetailClient
from hr_middleware.testing import FakeHelloRetail, fake_products

from .drivers import PAGE
from .servers import free_port, running

#: The fake over a real socket: forked processes reach the fake over HTTP.
pytestmark = [pytest.mark.loopback, pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")]

#: Every call's time budget: a first call that waited it out would be obvious.
TIMEOUT = 3.0
#: The visitor the gunicorn master asks recommendations for, before it forks.
MASTER_VISITOR = "aaaaaaaaaaaaaaaaaaaaaaaa"


def in_children(work: Callable[[int], Any], count: int = 2) -> list[Any]:
    """Fork *count* children at once; child *i* runs ``work(i)`` and sends back its JSON result."""
    children = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: "multi-threaded, use of fork()..."
        for index in range(count):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                os.close(read)
                try:
                    result = json.dumps({"result": work(index)})
                except BaseException as exc:  # reported to the parent
                    result = json.dumps({"error": repr(exc)})
                with os.fdopen(write, "w") as out:
                    out.write(result)
                os._exit(0)
            os.close(write)
            children.append((pid, read))
    results = []
    for pid, read in children:
        with os.fdopen(read) as out:
            sent = json.loads(out.read())
        os.waitpid(pid, 0)
        assert "error" not in sent, sent["error"]
        results.append(sent["result"])
    return results


def fill(minter: PrefetchingMinter) -> set[str]:
    """Fill the prefetch pool (the refill thread may help); the ids in it."""
    while minter.pool.wants_more:
        tracking_user_id = minter.minter.mint()
        if tracking_user_id is None or not minter.pool.put(tracking_user_id):
            break
    return {tracking_user_id for tracking_user_id, _ in minter.pool._ids}


def test_forked_children_never_hand_out_the_parents_prefetched_ids(fake_hello_retail: FakeHelloRetail) -> None:
    minter = make_minter(fake_hello_retail.settings(prefetch=3, timeout=TIMEOUT))
    assert isinstance(minter, PrefetchingMinter)
    first = minter.mint()  # starts the refill thread
    pooled = fill(minter)
    assert len(pooled) == 3

    def child(_: int) -> dict[str, Any]:
        # A child that waited on the parent's dead connection would get None (a failed mint).
        return {"ids": [minter.mint(), minter.mint()]}

    try:
        children = in_children(child)
        from_children = [i for run in children for i in run["ids"]]
        parent_next = minter.mint()
    finally:
        minter.close()

    assert all(is_valid_id(i) for i in from_children)
    assert len(set(from_children)) == 4  # no id twice, between or within the children
    assert not set(from_children) & (pooled | {first})  # none of the parent's
    assert set(from_children) <= set(fake_hello_retail.minted)  # each one minted for that child
    assert parent_next in pooled  # the parent's pool is still the parent's


def test_forked_children_never_share_the_clients_kept_alive_connection(fake_hello_retail: FakeHelloRetail) -> None:
    client = HelloRetailClient.from_settings(fake_hello_retail.settings(), timeout=TIMEOUT)
    parent_visitor, *visitors = (secrets.token_hex(12) for _ in range(3))
    client.recommendations([{"key": "k"}], tracking_user_id=parent_visitor)  # a connection kept alive

    def child(index: int) -> dict[str, Any]:
        visitor = visitors[index]
        wrong = 0
        for _ in range(20):
            answer = client.recommendations([{"key": "k"}], tracking_user_id=visitor)
            wrong += answer["responses"][0]["products"] != fake_products(
                visitor, "recoms:k:null", 0, 4, images=fake_hello_retail.images_url
            )
        return {"wrong": wrong}  # a call on the parent's dead connection would have raised

    try:
        children = in_children(child)
    finally:
        client.close()

    assert [run["wrong"] for run in children] == [0, 0]  # every answer was for the visitor who asked
    peers = {
        visitor: {r.peer for r in fake_hello_retail.api_requests() if r.json["trackingUserId"] == visitor}
        for visitor in (parent_visitor, *visitors)
    }
    assert [len(peers[v]) for v in visitors] == [1, 1]  # each child kept its own connection alive
    assert peers[visitors[0]].isdisjoint(peers[visitors[1]])
    assert peers[parent_visitor].isdisjoint(peers[visitors[0]] | peers[visitors[1]])


def test_gunicorn_preload_workers_share_no_id_and_no_answer(fake_hello_retail: FakeHelloRetail) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-k", "gthread", "--threads", "4"]
    argv += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "tests.preload_app:application"]
    env = {
        "PRELOAD_API_URL": fake_hello_retail.url,
        "PRELOAD_WEBSITE_UUID": fake_hello_retail.website_uuid,
        "PRELOAD_TIMEOUT": str(TIMEOUT),
        "PRELOAD_MASTER_VISITOR": MASTER_VISITOR,
    }

    def visit(_: int) -> dict[str, Any]:
        return requests.get(url + "/recommendations", headers=PAGE, timeout=2 * TIMEOUT).json()  # type: ignore[no-any-return]

    with running(argv, port=port, env=env, ready_path="/") as url:
        master_minted = set(fake_hello_retail.minted)  # the first mint and the master's pool
        visits: list[dict[str, Any]] = []
        with ThreadPoolExecutor(16) as pool:
            # Batches of first visits at once until both workers answered some (one batch, in practice).
            for _ in range(5):
                visits += pool.map(visit, range(32))
                if len({seen["pid"] for seen in visits}) == 2:
                    break

    ids = [seen["id"] for seen in visits]
    assert len({seen["pid"] for seen in visits}) == 2
    assert all(is_valid_id(i) for i in ids)  # no first call waited out its budget and failed
    assert len(set(ids)) == len(ids)  # no id handed to two visitors
    assert not set(ids) & master_minted  # nor one the master had prefetched
    for seen in visits:  # every answer is for the visitor who asked
        assert seen["products"] == fake_products(
            seen["id"], "recoms:frontpage:null", 0, 4, images=fake_hello_retail.images_url
        )
    master_calls = [r for r in fake_hello_retail.api_requests() if r.json.get("trackingUserId") == MASTER_VISITOR]
    assert len(master_calls) == 1
