"""FastAPI: the visitor's id as a dependency, ``tracking_user_id: TrackingUserId``.

Install the middleware, then declare the id as a parameter::

    from fastapi import FastAPI

    from hr_middleware.asgi import TrackingUserMiddleware
    from hr_middleware.fastapi import TrackingUserId

    app = FastAPI()
    app.add_middleware(TrackingUserMiddleware, website_uuid="...")

    @app.get("/")
    async def index(tracking_user_id: TrackingUserId) -> dict[str, str | None]:
        return {"trackingUserId": tracking_user_id}

The parameter is the visitor's id, :data:`~hr_middleware.OPT_OUT_ID`, or None
(a request that does not mint, Hello Retail unreachable, or no middleware:
then a WARNING, once per app, names the line to add).
Like :func:`hr_middleware.get_tracking_user_id`, it marks the response
``Vary: Cookie``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ._forgotten import FASTAPI_LINE, say_once
from ._serving import current

__all__ = ["TrackingUserId"]


async def tracking_user_id(connection: HTTPConnection) -> str | None:
    """The dependency behind :data:`TrackingUserId` (async: no thread hop to read a contextvar).

    In a request the middleware did not serve (it was not added), None, and
    a WARNING once per app naming the line to add.
    """
    visit = current()
    if visit is None:
        say_once(connection.scope.get("app"), "TrackingUserId was asked for in a request", FASTAPI_LINE)
        return None
    return visit.read_id()


#: ``tracking_user_id: TrackingUserId`` in a path operation or dependency.
TrackingUserId = Annotated[str | None, Depends(tracking_user_id)]
