"""Consent: readers for common consent-banner cookies, and acting on a consent change.

Readers build the ``consent`` option::

    from hr_middleware.consent import cookiebot

    HelloRetail(app, consent=cookiebot("marketing"))

Each reader returns True (allowed), False (declined) or None (the banner has
not been answered: what that means is the ``consent_unknown`` option).

When the visitor answers your banner through your server (a POST to your
consent endpoint), act on it in the same request::

    from hr_middleware.consent import grant, revoke

    grant()      # mint now if needed and set the cookies (``await agrant()`` in async code)
    revoke()     # delete both id cookies (and a customer link's); the id becomes OPT_OUT_ID
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from urllib.parse import unquote

from . import _serving
from ._core.facts import RequestFacts

__all__ = ["ConsentReader", "agrant", "cookie_consent", "cookiebot", "cookieyes", "grant", "onetrust", "revoke"]

#: What a reader is: the ``consent`` option's type, a function of the request's facts
#: answering True (allowed), False (declined) or None (not answered yet).
ConsentReader = Callable[[RequestFacts], "bool | None"]


def _reading(cookie: str, answer: Callable[[str], bool | None]) -> ConsentReader:
    """A consent reader: *answer* on cookie *cookie*'s (unquoted) value; None without it."""

    def read(request: RequestFacts) -> bool | None:
        value = request.cookies.get(cookie)
        return None if value is None else answer(unquote(value))

    read.__qualname__ = f"consent reader of cookie {cookie!r}"
    return read


def cookie_consent(name: str, allowed: str | Container[str] | Callable[[str], bool] = "1") -> ConsentReader:
    """Consent read from one cookie: allowed when cookie *name* has an *allowed* value.

    *allowed* is one value (``"1"``), a collection of values (``{"yes", "all"}``)
    or a predicate on the value. The cookie absent means unknown (None); present
    with any other value means declined.

    >>> consent = cookie_consent("tracking_ok", {"yes", "true"})
    """
    check: Callable[[str], bool]
    if isinstance(allowed, str):
        check = allowed.__eq__
    elif callable(allowed):
        check = allowed
    else:
        check = allowed.__contains__
    return _reading(name, lambda value: bool(check(value)))


def cookiebot(category: str = "marketing") -> ConsentReader:
    """Cookiebot's ``CookieConsent`` cookie (``{...,marketing:true,...}``; ``-1`` = no consent needed)."""
    pattern = re.compile(rf"(?:^|[{{,]){re.escape(category)}:(true|false)\b")

    def answer(value: str) -> bool | None:
        if value == "-1":  # Cookiebot: the visitor is outside the regions that need consent
            return True
        match = pattern.search(value)
        return None if match is None else match.group(1) == "true"

    return _reading("CookieConsent", answer)


def _flag(entries: str, key: str, allowed: str) -> bool | None:
    """In ``"a:1,b:0"``, whether *key*'s flag is *allowed*; None when *key* is not there."""
    for entry in entries.split(","):
        name, _, flag = entry.partition(":")
        if name.strip() == key:
            return flag.strip() == allowed
    return None


def onetrust(group: str = "C0004") -> ConsentReader:
    """OneTrust's ``OptanonConsent`` cookie (``...&groups=C0001:1,C0004:0&...``); C0004 is targeting."""

    def answer(value: str) -> bool | None:
        for part in value.split("&"):
            if part.startswith("groups="):
                return _flag(part[len("groups=") :], group, "1")
        return None

    return _reading("OptanonConsent", answer)


def cookieyes(category: str = "advertisement") -> ConsentReader:
    """CookieYes's ``cookieyes-consent`` cookie (``...,advertisement:yes,...``)."""
    return _reading("cookieyes-consent", lambda value: _flag(value, category, "yes"))


# -- acting on a consent change within a request --------------------------------------


def grant() -> str | None:
    """The visitor just consented: keep or mint their id and set the cookies on this response.

    Returns the id (None if Hello Retail could not be reached: the next page
    view mints then). Blocking; in async code use :func:`agrant`. At most one
    mint per request, whatever is called. Raises :class:`LookupError` outside
    a request that the middleware serves.
    """
    return _serving.grant()


async def agrant() -> str | None:
    """:func:`grant` for async code; never blocks the event loop."""
    return await _serving.agrant()


def revoke() -> str:
    """The visitor withdrew consent: delete both id cookies on this response, and the
    cookie that remembers a customer link (:mod:`hr_middleware.customers`).

    Returns :data:`~hr_middleware.OPT_OUT_ID`, which the rest of the request
    sees as its id. Hello Retail has no endpoint to forget an id; deleting the
    cookie is what ends the tracking.
    """
    return _serving.revoke()
