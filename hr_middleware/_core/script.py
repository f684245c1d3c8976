"""What Hello Retail's script on the page is told, and its tags, rendered safely: pure.

Hello Retail's install snippet is an async ``<script src=...helloretail.js>``
and an inline ``window.hrq = window.hrq || []; hrq.push(['init', {...}])``.
The script reads the ``hrq`` queue when it loads, in order. So the consent
decision goes into the queue *before* the script can run: the inline init is
rendered first, and a visitor who declined has ``setTrackingOptOut: true``
inside the init itself, so there is no moment at which the script is
initialised and not yet told (Hello Retail's material: ``init`` with
``setTrackingOptOut`` "before tracking starts"; ``setTrackingOptOut false``
once consent is given, as Geins does).

:func:`script_tracking` decides what to tell the script, :func:`hrq_commands`
turns the decision into the queue's commands, :func:`script_html` renders the
tags (JSON escaped for a ``<script>`` element, the CSP nonce as an attribute),
:func:`script_comment` what is rendered instead when there is nothing to
render, and why.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from enum import Enum
from typing import Any

from .visit import Origin

__all__ = [
    "DEFAULT_SCRIPT_URL",
    "HrqCommand",
    "ScriptTracking",
    "hrq_commands",
    "script_comment",
    "script_html",
    "script_json",
    "script_tracking",
]

#: Where Hello Retail's install snippet loads its script from.
DEFAULT_SCRIPT_URL = "https://helloretailcdn.com/helloretail.js"

#: One command pushed to ``hrq``: its name, then its arguments.
HrqCommand = tuple[Any, ...]


class ScriptTracking(str, Enum):
    """What the page tells Hello Retail's script about tracking."""

    #: No consent is asked (no ``consent`` option, no ``respect_gpc``): the script's default, it tracks.
    NOT_ASKED = "not_asked"
    #: The visitor declined (or withdrew) consent: ``setTrackingOptOut: true`` in the init.
    OPTED_OUT = "opted_out"
    #: Consent is asked and given (now or before): the init, then ``setTrackingOptOut false``,
    #: which lifts an opt-out the script may still hold from an earlier page.
    CONSENTED = "consented"

    def __str__(self) -> str:
        return self.value


def script_tracking(origin: Origin | None, consent_now: bool | None, consent: bool | None) -> ScriptTracking:
    """The decision for a visit whose id came from *origin*, where *consent_now* is what the
    app did on this response (True: ``grant()``, False: ``revoke()``, None: neither) and
    *consent* what the request's consent says (None: not asked; see
    :meth:`~hr_middleware._core.decide.TrackingPolicy.consent`)."""
    if consent_now is False or origin is Origin.OPT_OUT:
        return ScriptTracking.OPTED_OUT
    if consent_now or consent:
        return ScriptTracking.CONSENTED
    if consent is False:  # asked and declined, whatever the origin says: never track then
        return ScriptTracking.OPTED_OUT
    return ScriptTracking.NOT_ASKED


def hrq_commands(website_uuid: str, tracking: ScriptTracking, customer_id: str | None = None) -> list[HrqCommand]:
    """The commands to push to ``hrq``, in order: the init (with the website, and the
    opt-out when *tracking* says so), the lifted opt-out after consent, and the customer.

    An opted-out visitor is never named to the script: no ``setCustomerId``.
    """
    init: dict[str, Any] = {"websiteUuid": website_uuid}
    if tracking is ScriptTracking.OPTED_OUT:
        return [("init", {**init, "setTrackingOptOut": True})]
    commands: list[HrqCommand] = [("init", init)]
    if tracking is ScriptTracking.CONSENTED:
        commands.append(("setTrackingOptOut", False))
    if customer_id:
        commands.append(("setCustomerId", customer_id))
    return commands


# JSON text that cannot end a <script> element, open a comment or CDATA, or break a line
# in older JavaScript engines: the characters as \uXXXX escapes (still the same JSON value).
_SCRIPT_ESCAPES = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "'": "\\u0027",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
    }
)


def script_json(value: Any) -> str:
    """*value* as JSON that is safe inside an HTML ``<script>`` element (and as JavaScript)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def script_html(commands: Sequence[HrqCommand], *, src: str, nonce: str | None = None) -> str:
    """The inline ``hrq`` queue with *commands*, then Hello Retail's async script from *src*.

    The queue comes first so that it is complete before the script can run,
    whatever the browser's cache makes of ``async``. *nonce* (a CSP nonce)
    goes on both tags.
    """
    nonce_attribute = "" if nonce is None else f' nonce="{html.escape(nonce, quote=True)}"'
    pushes = "".join(f"hrq.push({script_json(list(command))});" for command in commands)
    return (
        f"<script{nonce_attribute}>window.hrq = window.hrq || [];{pushes}</script>\n"
        f'<script async src="{html.escape(src, quote=True)}"{nonce_attribute}></script>'
    )


def script_comment(why: str) -> str:
    """An HTML comment saying why Hello Retail's script is not rendered (no ``--`` can end it early)."""
    return f"<!-- hr-middleware: Hello Retail's script is not rendered: {why.replace('--', '- -')} -->"
