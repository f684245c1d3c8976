"""The example shop on Starlette: see app.py; run it with ``make demo-asgi``."""

from .app import create_app

__all__ = ["create_app"]
