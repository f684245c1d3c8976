"""What a person's browser sends when it loads a page: the headers a test needs for a first visit to mint.

Only a person's page navigation mints an id (the default ``mint_when``,
:func:`hr_middleware.is_page_navigation`): a GET whose ``Sec-Fetch-Dest`` is
``document`` (or, from a browser without Fetch Metadata, whose ``Accept`` has
``text/html``), with a User-Agent that is not a bot's, a headless browser's or
an HTTP library's. Test clients send none of that (Flask's and Django's no
``Accept: text/html``; Starlette's and httpx's a library's User-Agent), so a
test of a first visit sends these.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["BROWSER_HEADERS"]

#: The headers of a person's page navigation, as desktop Chrome sends them when the
#: address bar loads a page. Pass them to a test client (``headers=BROWSER_HEADERS``);
#: copy the mapping to add a header (``{**BROWSER_HEADERS, "Cookie": ...}``).
BROWSER_HEADERS: Mapping[str, str] = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    ),
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1",
    "Upgrade-Insecure-Requests": "1",
}
