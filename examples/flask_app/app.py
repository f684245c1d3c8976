"""A tiny Flask shop page that shows the visitor's Hello Retail trackingUserId."""

from __future__ import annotations

from typing import Any

from flask import Flask

from examples.shop_page import render_page
from hr_middleware import get_tracking_user
from hr_middleware.flask import HelloRetail


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The demo app; *config* must hold at least ``HELLO_RETAIL_WEBSITE_UUID``."""
    app = Flask(__name__)
    app.config.update(config or {})
    HelloRetail(app)

    @app.get("/")
    def index() -> str:
        return render_page(get_tracking_user(), "Flask")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
