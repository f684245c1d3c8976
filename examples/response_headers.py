"""The demo's outermost layer: it writes the headers that a page's response really carries into that page.

A view renders its page before hr-middleware adds its cookies and headers to the
response, so the page itself cannot know them. This layer sits outside the
middleware (first in the stack), sees the response as it leaves for the browser,
and replaces :data:`MARKER` in an HTML body with that same response's
``Set-Cookie``, ``Cache-Control`` and ``Vary`` headers. Only the demo needs it; a
shop has no reason to show its headers.

One layer per stack: :class:`ShowHeadersWSGI` (Flask), :class:`ShowHeadersASGI`
(Starlette) and :class:`ShowHeadersDjango` (a Django middleware, listed first).
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from werkzeug.wrappers import Response

__all__ = ["MARKER", "ShowHeadersASGI", "ShowHeadersDjango", "ShowHeadersWSGI", "fill_in", "headers_html"]

#: Where the page wants the headers.
MARKER = "<!-- response headers -->"
_MARKER = MARKER.encode()
#: The headers shown, in this order.
SHOWN = ("Set-Cookie", "Cache-Control", "Vary")
_DELETES = re.compile(r";\s*(max-age=0\b|expires=[^;]*1970)", re.IGNORECASE)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def headers_html(headers: Iterable[tuple[str, str]]) -> str:
    """Table rows of the shown headers among *headers*: each ``Set-Cookie``, then ``Cache-Control`` and ``Vary``."""
    headers = list(headers)
    rows = []
    for name in SHOWN:
        values = [value for key, value in headers if key.lower() == name.lower()]
        for value in values:
            note = (
                ' <span class="deletes">deletes the cookie</span>'
                if name == "Set-Cookie" and _DELETES.search(value)
                else ""
            )
            rows.append(f"<tr><th>{name}</th><td><code>{html.escape(value)}</code>{note}</td></tr>")
        if not values:
            rows.append(f'<tr class="not-sent"><th>{name}</th><td>not sent</td></tr>')
    return "\n".join(rows)


def fill_in(body: bytes, headers: Iterable[tuple[str, str]]) -> bytes:
    """*body* with :data:`MARKER` replaced by the rows of *headers* (unchanged without the marker)."""
    if _MARKER not in body:
        return body
    return body.replace(_MARKER, headers_html(headers).encode(), 1)


class ShowHeadersWSGI:
    """The WSGI layer: wrap the app that hr-middleware wraps (``app.wsgi_app`` after ``HelloRetail(app)``)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = Response.from_app(self.app, environ, buffered=True)
        if response.mimetype == "text/html":
            response.set_data(fill_in(response.get_data(), response.headers.items()))
        return response(environ, start_response)


class ShowHeadersASGI:
    """The ASGI layer: the first middleware of the app, outside hr-middleware's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def show(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and _is_html(message["headers"]):
                start = message  # held back: the length changes once the headers are in
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    raw = start["headers"]
                    body = fill_in(b"".join(chunks), [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw])
                    raw = [(k, v) for k, v in raw if k.lower() != b"content-length"]
                    await send({**start, "headers": [*raw, (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
            else:
                await send(message)

        await self.app(scope, receive, show)


def _is_html(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)


class ShowHeadersDjango:
    """The Django layer: list it first in ``MIDDLEWARE``, above hr-middleware's.

    Django keeps cookies apart from the other headers until its handler sends
    the response; they are shown as that handler will send them.
    """

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        if not response.streaming and _MARKER in response.content:
            cookies = [("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values()]
            response.content = fill_in(response.content, [*response.items(), *cookies])
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response
