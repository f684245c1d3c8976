"""The exceptions of talking to Hello Retail.

The middleware never lets these reach the app: a failed mint is logged and the
visit goes on without an id. The downstream client raises them to its caller.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "HelloRetailError",
    "InvalidResponseError",
    "RequestTimeoutError",
    "TransportError",
]


class HelloRetailError(Exception):
    """Base class of every error talking to Hello Retail."""


class TransportError(HelloRetailError):
    """The request did not get an HTTP answer: DNS, refused, reset, dropped."""


class RequestTimeoutError(TransportError):
    """The answer did not arrive within the time budget."""


class InvalidResponseError(HelloRetailError):
    """An HTTP answer arrived but is unusable: not JSON, too large, or missing fields."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status of the answer, when there was one.
        self.status = status


class APIError(HelloRetailError):
    """Hello Retail answered with an error status (it often uses 500 for a bad request).

    Attributes:
        status: the HTTP status.
        code: Hello Retail's error ``code`` from the JSON body, if any.
        message: Hello Retail's error ``message`` from the JSON body, if any.
    """

    def __init__(self, status: int, *, code: object = None, message: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        detail = f": {message}" if message else ""
        super().__init__(f"Hello Retail answered HTTP {status}{detail}")
