"""The example shop on Flask: see app.py; run it with ``make demo``."""

from .app import create_app

__all__ = ["create_app"]
