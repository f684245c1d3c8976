"""The README's FastAPI test pattern with ``prefetch=8``, N times in one process.

``python -m tests.readme_testclient_runs N``.

Each run is ``with TestClient(create_app(settings)) as client:`` and one first
visit with ``hr_middleware.testing.BROWSER_HEADERS``, as README.md shows it;
leaving the ``with`` block runs the lifespan shutdown, which closes the middleware while its prefetch refill is minting.
After each run it prints ``left <run>``: a run that never leaves the block
prints nothing more, and the test that runs this script ends it.
"""

from __future__ import annotations

import sys

from fastapi import FastAPI
from fastapi.testclient import TestClient

from hr_middleware import Settings, is_valid_id
from hr_middleware.asgi import TrackingUserMiddleware
from hr_middleware.fastapi import TrackingUserId
from hr_middleware.testing import BROWSER_HEADERS, FakeHelloRetail


def create_app(settings: Settings) -> FastAPI:
    """The README's app."""
    app = FastAPI()
    app.add_middleware(TrackingUserMiddleware, settings=settings)

    @app.get("/")
    async def home(tracking_user_id: TrackingUserId) -> dict[str, str | None]:
        return {"id": tracking_user_id}

    return app


def main(runs: int) -> None:
    with FakeHelloRetail() as fake:
        for run in range(runs):
            with TestClient(create_app(fake.settings(prefetch=8))) as client:
                tracking_user_id = client.get("/", headers=BROWSER_HEADERS).json()["id"]
                assert is_valid_id(tracking_user_id), tracking_user_id
                assert tracking_user_id in fake.minted
            print("left", run, flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
