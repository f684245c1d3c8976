"""Ids, cookie names and a website uuid that the tests share."""

from __future__ import annotations

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
#: The shop's website uuid: the fake Hello Retail's own.
UUID = DEFAULT_WEBSITE_UUID


def visitors(count: int) -> list[str]:
    """*count* returning visitors' ids, all distinct."""
    return [f"{i:024x}" for i in range(1, count + 1)]
