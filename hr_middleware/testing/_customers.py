"""The fake's answer to ``POST /serve/collect/customerId``, which links a visitor's id to a customer.

Its own module so that it stays apart from the other endpoints' answers. What
is fact and what is chosen:

- fact (``../shared/HELLO_RETAIL_API.md``, from Hello Retail's integration
  notes): the body ``{trackingUserId, websiteUuid, id}``, ``id`` being the
  shop's customer id; a malformed ``trackingUserId`` answers 400 with the
  collect endpoints' message.
- chosen (Hello Retail's material is silent): the good answer ``{"success":
  true, "message": "Customer linked"}``; no API key wanted (the visitor is
  named by the id; the page's script links without a key); a missing ``id``
  answers 400 ``{"success": false, "message": "id is required"}``; no id or
  the opt-out id answers like cart and conversion of an anonymous visitor
  (200, ``"Not tracked for anonymous user"``) and links nothing.

Each accepted link is kept in ``fake.customer_links`` as ``(trackingUserId,
customer id)``, so that tests count them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from hr_middleware._core.ids import is_valid_id
from hr_middleware._hello_retail import endpoints
from hr_middleware.client import NOT_TRACKED_MESSAGE

from ._answers import INVALID_REQUEST, Mode, _collect_problem, error_answer

if TYPE_CHECKING:
    from ._handler import RecordedRequest, Reply
    from ._server import FakeHelloRetail

__all__ = ["CUSTOMER_LINK_PATH", "LINKED_MESSAGE", "customer_link_reply"]

CUSTOMER_LINK_PATH = endpoints.CUSTOMER_LINK
#: The good answer's ``message`` (chosen).
LINKED_MESSAGE = "Customer linked"


def _problem(fake: FakeHelloRetail, document: Any) -> tuple[int, Any] | None:
    rejected = _collect_problem(fake, CUSTOMER_LINK_PATH, document)
    if rejected is not None:
        return rejected
    customer_id = document.get("id")
    if not isinstance(customer_id, (str, int)) or isinstance(customer_id, bool) or customer_id == "":
        return 400, {"success": False, "message": "id is required"}
    return None


def _answer(fake: FakeHelloRetail, mode: Mode, document: dict[str, Any]) -> tuple[int, Any]:
    if mode is Mode.SUCCESS_FALSE:  # as the other endpoints answer in this mode
        return 200, error_answer(INVALID_REQUEST, "Request could not be served")
    tracking_user_id = document.get("trackingUserId")
    if not is_valid_id(tracking_user_id):  # absent, or the opt-out id: nobody to link
        return 200, {"success": True, "message": NOT_TRACKED_MESSAGE}
    with fake._lock:
        fake.customer_links.append((str(tracking_user_id), str(document["id"])))
    return 200, {"success": True, "message": LINKED_MESSAGE}


def customer_link_reply(
    fake: FakeHelloRetail, recorded: RecordedRequest, document: Any
) -> tuple[Reply, threading.Event]:
    """Record a link request and decide the reply, in the fake's ``api_mode`` like the other endpoints."""
    from ._handler import _reply  # here: _handler imports this module

    mode, release = fake._mode_for_next_api_call()
    fake._record(recorded)
    return _reply(mode, lambda: _problem(fake, document), lambda: _answer(fake, mode, document)), release
