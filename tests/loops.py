"""The event loops the async tests run on: asyncio's own, and uvloop (uvicorn's, gunicorn's
UvicornWorker's and granian's default when it is installed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

_T = TypeVar("_T")

#: The names of the loops, for ``pytest.mark.parametrize``.
LOOPS = ["asyncio", "uvloop"]


def run_on(loop: str, main: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """``main()`` on a new event loop of kind *loop*, as ``asyncio.run`` does it (closed afterwards)."""
    if loop == "uvloop":
        return uvloop.run(main())
    assert loop == "asyncio", loop
    return asyncio.run(main())
