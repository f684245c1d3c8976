"""What a valid trackingUserId is, the opt-out sentinel, and signing of the server cookie."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from itsdangerous import BadSignature, TimestampSigner

__all__ = ["OPT_OUT_ID", "CookieSigner", "is_valid_id"]

#: The id Hello Retail reads as "this visitor declined tracking". It is only
#: ever *sent* (to the app, to Hello Retail); it is never stored in a cookie.
OPT_OUT_ID = "000000000000000000000000"

HEX_DIGITS = "0123456789abcdef"


def is_valid_id(value: object) -> bool:
    """Return True if *value* names a visitor: 24 lower-case hex characters.

    The opt-out sentinel :data:`OPT_OUT_ID` is not a visitor's id and is
    rejected, so a cookie holding it is treated as absent.
    """
    # ``not value.strip(digits)`` is True only when every character is a hex
    # digit: fewer steps than a compiled regex's fullmatch().
    return type(value) is str and len(value) == 24 and not value.strip(HEX_DIGITS) and value != OPT_OUT_ID


class CookieSigner:
    """Signs ids for the server cookie and verifies them, with key rotation.

    *secret_keys* is ordered newest first: the first key signs, every key
    verifies. A value signed with an older key verifies but reports that it
    should be re-signed. The signature holds the time it was made (read on
    *clock*, Unix seconds), which renewal reads as the cookie's issue date.
    """

    SALT = "hr_middleware.tracking-user-id"

    __slots__ = ("_keys", "_current", "_all", "_max_age", "clock")

    def __init__(
        self, secret_keys: Sequence[str | bytes], max_age: int, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret_keys:
            raise ValueError("secret_key: at least one key is required")
        keys = [key.encode() if isinstance(key, str) else key for key in secret_keys]
        self._keys = keys
        self.clock = clock
        self._current = _ClockedSigner(clock, keys[0], salt=self.SALT)
        # itsdangerous signs with the *last* key of a list and verifies with all.
        self._all = _ClockedSigner(clock, keys[::-1], salt=self.SALT)
        self._max_age = max_age

    def on_clock(self, clock: Callable[[], float]) -> CookieSigner:
        """The same signer reading the time from *clock*."""
        return CookieSigner(self._keys, self._max_age, clock)

    def sign(self, tracking_user_id: str) -> str:
        """Return the cookie value for *tracking_user_id*."""
        return self._current.sign(tracking_user_id).decode("ascii")

    def unsign(self, value: str) -> tuple[str, bool] | None:
        """Return ``(id, signed_with_old_key)``, or None if *value* is not a good signed id."""
        verified = self.unsign_dated(value)
        return None if verified is None else verified[:2]

    def unsign_dated(self, value: str) -> tuple[str, bool, float] | None:
        """Return ``(id, signed_with_old_key, signed_at)`` (Unix seconds), or None if
        *value* is not a good signed id."""
        try:
            payload, signed_at = self._current.unsign(value, max_age=self._max_age, return_timestamp=True)
            stale = False
        except BadSignature:
            try:
                payload, signed_at = self._all.unsign(value, max_age=self._max_age, return_timestamp=True)
            except BadSignature:
                return None
            stale = True
        tracking_user_id = payload.decode("ascii", "replace")
        if not is_valid_id(tracking_user_id):
            return None
        return tracking_user_id, stale, signed_at.timestamp()


class _ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer, reading the time from a clock of ours (tests move it)."""

    def __init__(self, clock: Callable[[], float], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())
