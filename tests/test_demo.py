"""The demo shop, run the way ``make demo`` runs it: a real server on loopback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .drivers import PAGE

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELLO_RETAIL_")}
    env["PORT"] = str(port)
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.flask_app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(url + "health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("the demo did not start")
        yield url
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
        assert f"Demo shop: {url}" in output


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
    assert tracking_id(first.text) == tracking_id(second.text) == browser.cookies["helloRetailTrackingUserId"]
    assert browser.cookies["hello_retail_id"] == tracking_id(first.text)


def test_demo_new_visitor_gets_a_new_id(demo_url: str) -> None:
    one = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)
    two = tracking_id(requests.get(demo_url, headers=PAGE, timeout=5).text)

    assert one != two
