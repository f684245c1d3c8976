"""Both transports against hostile answers: cookies never replayed, bombs refused, drips cut off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from hr_middleware.transport import Answer, AsyncTransport, SyncTransport

from .hostile import answering, url_of

BODY = b'{"success": true}'


def post_sync(url: str, count: int = 1, timeout: float = 2.0, **options: Any) -> list[Answer]:
    transport = SyncTransport(**options)
    try:
        return [transport.post(url, b"{}", timeout=timeout) for _ in range(count)]
    finally:
        transport.close()


def post_async(url: str, count: int = 1, timeout: float = 2.0, **options: Any) -> list[Answer]:
    transport = AsyncTransport(**options)

    async def go() -> list[Answer]:
        try:
            return [await transport.post(url, b"{}", timeout=timeout) for _ in range(count)]
        finally:
            await transport.aclose()

    return anyio.run(go)


POST = {"sync": post_sync, "async": post_async}


@pytest.fixture(params=list(POST))
def post(request: pytest.FixtureRequest) -> Callable[..., list[Answer]]:
    """``post(url, count=1, timeout=2.0)`` with one transport, then closes it."""
    return POST[request.param]


@pytest.mark.parametrize(
    "set_cookie",
    [
        pytest.param("hr_session=abc123; Path=/", id="host-only"),
        pytest.param("hr_session=abc123; Path=/; Domain=127.0.0.1", id="domain"),
        pytest.param("hr_session=abc123; Path=/; Max-Age=3600; HttpOnly", id="persistent"),
    ],
)
def test_a_cookie_hello_retail_sets_is_never_sent_back(post: Callable[..., list[Answer]], set_cookie: str) -> None:
    with answering(BODY, [("Content-Type", "application/json"), ("Set-Cookie", set_cookie)]) as server:
        answers = post(url_of(server), count=3)

    assert [a.status for a in answers] == [200, 200, 200]
    assert len(server.seen) == 3
    assert all("cookie" not in headers for headers in server.seen)
