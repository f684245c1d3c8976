"""Ids, cookie names and a website uuid that the tests share."""

from __future__ import annotations

import time

from hr_middleware._core.cookies import CLOCK_SKEW, period_token
from hr_middleware._core.customers import LINK_COOKIE_SUFFIX
from hr_middleware._core.settings import ONE_DAY
from hr_middleware.testing import DEFAULT_WEBSITE_UUID

#: A returning visitor's id.
A = "62a0317d17698aa57d369db9"
#: Another visitor's id.
B = "0123456789abcdef01234567"
#: A third visitor's id.
C = "fedcba9876543210fedcba98"
#: Our server cookie's name.
SERVER = "helloRetailTrackingUserId"
#: Hello Retail's JavaScript SDK cookie's name.
SDK = "hello_retail_id"
#: The cookie that remembers a customer link (docs/customers.md).
LINK = SERVER + LINK_COOKIE_SUFFIX
#: The shop's website uuid: the fake Hello Retail's own.
UUID = DEFAULT_WEBSITE_UUID


def fresh(tracking_user_id: str) -> str:
    """Our cookie's value as a server with the default renewal wrote it now: not due a renewal
    (docs/renewal.md). For a server a little later: near midnight UTC, the next day's, which
    a server counts fresh within :data:`~hr_middleware._core.cookies.CLOCK_SKEW` of it."""
    return f"{tracking_user_id}.{period_token(time.time() + CLOCK_SKEW / 2, ONE_DAY)}"


def cookie_id(value: str) -> str:
    """The id our cookie's *value* holds (``<id>.<token>`` with renewal on)."""
    return value.partition(".")[0]


def visitors(count: int) -> list[str]:
    """*count* returning visitors' ids, all distinct."""
    return [f"{i:024x}" for i in range(1, count + 1)]
