"""The request facts the core decides on, and the default rule for when to mint.

Adapters subclass :class:`RequestFacts`: the Cookie header is read at once
(every request's decision needs it), the rest of their framework's request
lazily (only a first visit, a consent hook or ``mint_when`` asks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from werkzeug.sansio.http import parse_cookie

from .cookies import COOKIE_HEADER_LIMIT, cookie_header_end
from .visit import NoIdReason

__all__ = ["RequestFacts", "is_bot", "is_page_navigation", "not_a_page_navigation", "parse_cookies"]


class RequestFacts:
    """The facts of one request that the decision and options such as ``mint_when`` and ``consent`` see.

    Attributes:
        cookie_header: the raw ``Cookie`` header (``""`` when there is none;
            several lines joined with ``"; "``), read up to
            :data:`~hr_middleware._core.cookies.COOKIE_HEADER_LIMIT`: every
            reader of cookies reads this.
        method: the HTTP method, upper case.
        path: the URL path, without query string.
        host: the host the request was sent to (its ``Host`` header, else the
            server's name), as sent: maybe with a port; read only when asked
            (the ``websites`` option by host).
        scheme: ``"http"`` or ``"https"``.
        headers: a case-insensitive mapping of request headers.
        cookies: a mapping of the request's cookies (first value of each name).
        native: the framework's own request object (WSGI environ, ASGI scope,
            Django ``HttpRequest``, Flask ``Request``).

    Adapters subclass it to read the rest of their framework's request lazily.
    """

    __slots__ = ("cookie_header", "_cookies")

    def __init__(self, cookie_header: str) -> None:
        if len(cookie_header) > COOKIE_HEADER_LIMIT:  # far beyond what browsers send: whole cookies up to the bound
            cookie_header = cookie_header[: cookie_header_end(cookie_header)]
        self.cookie_header = cookie_header
        self._cookies: Mapping[str, str] | None = None

    @property
    def native(self) -> Any:
        raise NotImplementedError

    @property
    def method(self) -> str:
        raise NotImplementedError

    @property
    def path(self) -> str:
        raise NotImplementedError

    @property
    def scheme(self) -> str:
        raise NotImplementedError

    @property
    def host(self) -> str:
        return ""

    @property
    def headers(self) -> Mapping[str, str]:
        raise NotImplementedError

    @property
    def is_secure(self) -> bool:
        """True when the request came over https."""
        return self.scheme == "https"

    @property
    def cookies(self) -> Mapping[str, str]:
        if self._cookies is None:
            self._cookies = parse_cookies(self.cookie_header)
        return self._cookies

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.path!r}>"


#: A "," that starts another cookie: where a server joined two Cookie header
#: lines with "," (gunicorn 27, Django's ASGI handler) or ", " (werkzeug, wsgiref).
#: A "," inside a value (Cookiebot's "{necessary:true,marketing:false}") is not
#: followed by "name=" (but see parse_cookies).
_JOINED_LINE = re.compile(r",[ \t]*(?=[!#$%&'*+\-.^_`|~0-9A-Za-z]+=)")
#: The same with a blank after the ",": only a server's join makes that (browsers
#: send no blank after a "," in a value: OneTrust's and Cookiebot's lists have none).
_JOINED_LINE_WITH_BLANK = re.compile(r",[ \t]+(?=[!#$%&'*+\-.^_`|~0-9A-Za-z]+=)")


def parse_cookies(header: str) -> dict[str, str]:
    """The cookies of a raw Cookie *header*, first value of each name; never raises.

    *header* is as WSGI and ASGI servers hand it (bytes read as latin-1), already
    bounded (:attr:`RequestFacts.cookie_header`). It is decoded as UTF-8,
    any byte that is not UTF-8 replaced, so one odd byte in another site's cookie
    does not hide the others (werkzeug's ``parse_cookie`` raises on it).

    Lines a server joined with ``", "`` are read as lines. Then the header is read
    as browsers send it (cookies end at ``;`` only), and a name not found that way
    is taken from a reading that also splits at ``","`` before ``name=`` (lines
    joined with ``","`` alone). So a value holding ``",name="`` (a OneTrust
    ``OptanonConsent`` with its lists unencoded: ``genVendors=V2:1,V1:1,&...``) is
    kept whole, and a cookie on a second line is still found. (Where a server
    joined the lines with ``","`` alone, the last cookie of a line keeps what
    follows up to the next ``";"``, as in a browser's reading.)
    """
    try:
        text = header.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # already text beyond latin-1: decoded by the framework
        text = header
    if "," not in text:
        return parse_cookie(text).to_dict()
    text = _JOINED_LINE_WITH_BLANK.sub("; ", text)
    cookies = parse_cookie(text).to_dict()
    for name, value in parse_cookie(_JOINED_LINE.sub("; ", text)).items():
        cookies.setdefault(name, value)
    return cookies


# Link previews, crawlers, monitors, headless automation and HTTP libraries: a
# mint for them would create a Hello Retail visitor that never comes back.
# In-app browsers carry their app's name too (Telegram-Android/10.5, [Pinterest/iOS]):
# those are people, so only the apps' fetchers are named (TelegramBot, Pinterestbot).
# Google's fetchers without "bot" in their names are listed one by one.
_BOT_RE = re.compile(
    r"(?<!cu)bot\b|bot/|crawl|spider|slurp|archiver|scrap|fetch|preview|embedly|"
    r"facebookexternalhit|facebookcatalog|whatsapp|telegrambot|vkshare|pinterest/0\.|"
    r"googleother|google-inspectiontool|mediapartners-google|google-safety|apis-google|"
    r"google-site-verification|google favicon|google-read-aloud|google-speakr|google-notebooklm|"
    r"google-gemininotebook|google-pinpoint|duplexweb-google|"
    r"headless|phantomjs|lighthouse|pagespeed|pingdom|uptime|monitor|"
    r"curl/|wget/|python-|httpx|aiohttp|go-http-client|java/|okhttp|libwww|"
    r"apache-httpclient|node-fetch|axios|postman",
    re.IGNORECASE,
)


def is_bot(user_agent: str | None) -> bool:
    """Return True for a missing User-Agent or one of a known bot, crawler,
    link preview, uptime monitor, headless browser or HTTP library."""
    return not user_agent or _BOT_RE.search(user_agent) is not None


def not_a_page_navigation(request: RequestFacts) -> NoIdReason | None:
    """Why :func:`is_page_navigation` says no to *request*: ``BOT``, ``NOT_A_PAGE``, or None when it says yes."""
    headers = request.headers
    if is_bot(headers.get("user-agent")):
        return NoIdReason.BOT
    if request.method != "GET":
        return NoIdReason.NOT_A_PAGE
    dest = headers.get("sec-fetch-dest")
    if dest is not None:
        return None if dest in ("document", "iframe") else NoIdReason.NOT_A_PAGE
    return None if "text/html" in headers.get("accept", "") else NoIdReason.NOT_A_PAGE


def is_page_navigation(request: RequestFacts) -> bool:
    """The default ``mint_when``: a GET page navigation by a browser that is not a bot.

    A navigation is recognised by ``Sec-Fetch-Dest: document`` (or ``iframe``)
    where the browser sends Fetch Metadata, and by ``text/html`` in ``Accept``
    where it does not. Assets, XHR/fetch calls, form posts, health checks and
    bots do not mint: they get no id until the visitor loads a page.
    """
    return not_a_page_navigation(request) is None
