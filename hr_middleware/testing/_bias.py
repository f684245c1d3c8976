"""The fake's customer bias endpoint: ``POST /serve/customer/bias``.

Hello Retail publishes the request (``{websiteUuid, trackingUserId, fields,
numberOfValues}``) but neither the answer nor its errors. Chosen here, and
marked so: the answer ``{"success": true, "bias": {<field>: [{"value",
"score"}, ...]}}``, one list per asked field, highest score first, at most
``numberOfValues`` (default 5) long, derived from a hash of the visitor so
that one visitor leans the same way every time; an empty list for every field
of a visitor Hello Retail knows nothing of (the opt-out id, an empty id);
errors in Hello Retail's usual 500 ``{success, code, message}`` shape.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from hr_middleware._core.ids import OPT_OUT_ID, is_valid_id
from hr_middleware._hello_retail import endpoints

from ._answers import BRANDS, INVALID_ID_MESSAGE, INVALID_REQUEST, Mode, error_answer

if TYPE_CHECKING:
    from ._server import FakeHelloRetail

__all__ = ["BIAS_PATH", "bias_answer", "bias_problem"]

BIAS_PATH = endpoints.CUSTOMER_BIAS
#: How many values per field when the request names no ``numberOfValues`` (chosen).
DEFAULT_VALUES = 5


def bias_problem(fake: FakeHelloRetail, document: Any) -> tuple[int, Any] | None:
    """The (chosen) answer to a customer bias request Hello Retail would refuse, or None."""
    if not isinstance(document, dict):
        return 500, error_answer(INVALID_REQUEST, "Request body must be a JSON object")
    if not isinstance(document.get("websiteUuid"), str) or not document["websiteUuid"]:
        return 500, error_answer(INVALID_REQUEST, "websiteUuid is required")
    if not fake.knows_website(document["websiteUuid"]):
        return 500, error_answer(INVALID_REQUEST, "Website not found")
    tracking_user_id = document.get("trackingUserId", "")
    if tracking_user_id not in ("", OPT_OUT_ID) and not is_valid_id(tracking_user_id):
        return 500, error_answer(INVALID_REQUEST, INVALID_ID_MESSAGE)
    fields = document.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) and f for f in fields):
        return 500, error_answer(INVALID_REQUEST, "fields must be a non-empty list of field names")
    count = document.get("numberOfValues", DEFAULT_VALUES)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return 500, error_answer(INVALID_REQUEST, "numberOfValues must be a positive number")
    return None


def bias_answer(mode: Mode, document: Any) -> tuple[int, Any]:
    """The good answer to a customer bias request (a dict) that :func:`bias_problem` let through."""
    if mode is Mode.SUCCESS_FALSE:
        return 200, error_answer(INVALID_REQUEST, "Request could not be served")
    visitor = document.get("trackingUserId")
    count = document.get("numberOfValues", DEFAULT_VALUES)
    known = is_valid_id(visitor)
    bias = {field: _leaning(str(visitor), field, count) if known else [] for field in document["fields"]}
    return 200, {"success": True, "bias": bias}


def _leaning(visitor: str, field: str, count: int) -> list[dict[str, Any]]:
    """Up to *count* values of *field* with a score each, highest first, from a hash of *visitor*."""
    digest = hashlib.sha256(f"{visitor}|bias|{field}".encode()).hexdigest()
    known = list(BRANDS) if field == "brand" else [f"{field}-{i}" for i in range(1, 9)]
    many = 1 + int(digest[:2], 16) % min(count, len(known))
    start = int(digest[2:4], 16) % len(known)
    values = [known[(start + i) % len(known)] for i in range(many)]
    scores = sorted((round(int(digest[4 + 4 * i : 8 + 4 * i], 16) / 0xFFFF, 2) for i in range(many)), reverse=True)
    return [{"value": value, "score": score} for value, score in zip(values, scores, strict=True)]
