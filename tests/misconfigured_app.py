"""A FastAPI app with a misspelt option (``timout``), for the start-up tests under real servers."""

from __future__ import annotations

from fastapi import FastAPI

from hr_middleware.asgi import TrackingUserMiddleware
from tests.ids import UUID

app = FastAPI()
app.add_middleware(TrackingUserMiddleware, website_uuid=UUID, timout=0.5)


@app.get("/")
async def index() -> dict[str, str]:
    return {"page": "served"}
