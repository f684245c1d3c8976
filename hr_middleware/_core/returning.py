"""The hot path: the usual returning visitor, whose two cookies hold one id.

Nearly every request of a shop is this one, so it is decided here without
building anything: the raw Cookie header (bytes from an ASGI server, text from
a WSGI one) is searched once per cookie name, and the two values compared.
Whatever this path does not recognise goes the long way
(:class:`~hr_middleware._core.decide.TrackingPolicy`), which answers the same
for every header this path accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, AnyStr

from .ids import HEX_DIGITS, OPT_OUT_ID

__all__ = ["agreeing_id_reader", "raw_cookie_header"]

_ID_LENGTH = 24


def agreeing_id_reader(server_name: str, sdk_name: str, kind: type[AnyStr]) -> Callable[[AnyStr], str | None]:
    """A function returning the id that both cookies of a Cookie header hold, else None.

    It answers only for the form browsers send: each name first found at the
    start of the header or after ``"; "``, its value exactly 24 lower-case hex
    characters (not the opt-out id), then ``";"`` or the end. None sends the
    caller the long way. *kind* is ``bytes`` (latin-1, as ASGI servers hand the
    header) or ``str`` (as WSGI servers do).
    """

    raw = issubclass(kind, bytes)

    def encoded(text: str) -> Any:  # bytes or str, as *kind* says
        return text.encode("latin-1") if raw else text

    server_key, sdk_key = encoded(server_name + "="), encoded(sdk_name + "=")
    hex_digits, opt_out, separator, end_mark = encoded(HEX_DIGITS), encoded(OPT_OUT_ID), encoded("; "), encoded(";")
    server_skip, sdk_skip = len(server_key) + _ID_LENGTH, len(sdk_key) + _ID_LENGTH
    value_ends = (end_mark, encoded(""))  # what may follow a value: ";" or the end of the header

    def read(header: Any) -> str | None:
        i = header.find(sdk_key)
        if i < 0 or (i and header[i - 2 : i] != separator):
            return None
        end = i + sdk_skip
        value = header[end - _ID_LENGTH : end]
        if len(value) != _ID_LENGTH or value.strip(hex_digits) or value == opt_out:
            return None
        if header[end : end + 1] not in value_ends:
            return None
        i = header.find(server_key)
        if i < 0 or (i and header[i - 2 : i] != separator):
            return None
        end = i + server_skip
        if header[end - _ID_LENGTH : end] != value or header[end : end + 1] not in value_ends:
            return None
        return value.decode("ascii") if raw else value  # type: ignore[no-any-return]

    return read


def raw_cookie_header(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The Cookie header of an ASGI scope's raw header list, ``b""`` when there is none.

    ASGI servers lower-case header names. HTTP/2 may split the header into
    several; they are joined with ``"; "`` (RFC 9113).
    """
    found = b""
    for name, value in headers:
        if name == b"cookie":
            found = found + b"; " + value if found else value
    return found
