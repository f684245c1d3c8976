"""A correctly configured FastAPI app, run by the start-up tests in an interpreter where httpx is missing."""

from __future__ import annotations

from fastapi import FastAPI

from hr_middleware.asgi import TrackingUserMiddleware
from tests.ids import UUID

app = FastAPI()
app.add_middleware(TrackingUserMiddleware, website_uuid=UUID)


@app.get("/")
async def index() -> dict[str, str]:
    return {"page": "served"}
