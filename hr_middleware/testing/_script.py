"""The fake's stand-in for Hello Retail's script, and what pages told it.

``GET /helloretail.js`` serves a small script that implements the ``hrq``
queue as Hello Retail's does (``init``, ``setTrackingOptOut``,
``setCustomerId``, ``reload``), reads the ``hello_retail_id`` cookie as the
real script does, and tracks what the real one tracks: a page view once it is
initialised and not opted out, and a click on a link whose fragment carries
``aw_source=<trackingCode>``. It reports each command it was given and each
event it tracked to ``POST /serve/_script/events`` (a beacon: it survives the
navigation a click starts), which the fake keeps in :class:`ScriptLog`
(``fake.script``), for tests to read.

What the stand-in chooses where Hello Retail's material is silent: the opt-out
is not kept between pages (each page says it again); ``setTrackingOptOut
false`` after an opted-out init tracks the page view then; without a
``hello_retail_id`` cookie it tracks with ``trackingUserId`` null instead of
minting its own id (a test sees the split the real script would make).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENTS_PATH", "SCRIPT_PATH", "STAND_IN", "ScriptEvent", "ScriptLog"]

#: Where the fake serves the stand-in.
SCRIPT_PATH = "/helloretail.js"
#: Where the stand-in reports to (not a Hello Retail endpoint: never recorded in ``fake.requests``).
EVENTS_PATH = "/serve/_script/events"
#: The largest report accepted.
_MAX_EVENT = 64 * 1024


@dataclass(frozen=True)
class ScriptEvent:
    """One thing a page told the stand-in (``kind`` ``"command"``) or that it tracked (``"tracked"``)."""

    #: ``"command"``: pushed to ``hrq``; ``"tracked"``: what the real script would send to Hello Retail;
    #: ``"loaded"``: the queue the page pushed before the script loaded is done.
    kind: str
    #: The command (``init``, ``setTrackingOptOut``, ``setCustomerId``, ``reload``) or the
    #: event tracked (``pageview``, ``click``).
    name: str
    #: The command's arguments; a click's ``[trackingCode]``.
    args: list[Any] = field(default_factory=list)
    #: The ``hello_retail_id`` cookie as the script read it then (None: no cookie).
    tracking_user_id: str | None = None
    #: The customer the page named (``setCustomerId``), if any.
    customer_id: str | None = None
    #: Whether the script was opted out after this command.
    opted_out: bool = False
    #: The page's URL.
    location: str = ""
    #: Which page load (several events of one page share it).
    page: str = ""
    #: The event's place in its page's order.
    seq: int = 0
    #: The page load's start (``performance.timeOrigin``): orders the pages.
    time_origin: float = 0.0


class ScriptLog:
    """What pages told the stand-in script, in order (``fake.script``)."""

    def __init__(self) -> None:
        self._events: list[ScriptEvent] = []
        self._changed = threading.Condition()

    @property
    def events(self) -> list[ScriptEvent]:
        """Every event received, page by page (in the order pages were loaded), each page's in its order."""
        with self._changed:
            return sorted(self._events, key=lambda e: (e.time_origin, e.page, e.seq))

    def pages(self) -> list[list[ScriptEvent]]:
        """The events of each page load, in order; a page's list ends where one of its reports has
        not arrived yet (beacons may arrive out of order)."""
        by_page: dict[str, list[ScriptEvent]] = {}
        for event in self.events:
            by_page.setdefault(event.page, []).append(event)
        return [_contiguous(events) for events in by_page.values()]

    def events_of(self, page: str) -> list[ScriptEvent]:
        """The events of page load *page* (a :attr:`ScriptEvent.page`), in order, up to the first
        that has not arrived yet."""
        return _contiguous([e for e in self.events if e.page == page])

    def tracked(self, name: str | None = None) -> list[ScriptEvent]:
        """The events the stand-in tracked (all, or those named *name*: ``pageview``, ``click``)."""
        return [e for e in self.events if e.kind == "tracked" and (name is None or e.name == name)]

    def wait_for(self, condition: Callable[[ScriptLog], bool], timeout: float = 10.0) -> bool:
        """Wait until *condition* (of this log) holds; False if it does not within *timeout* seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout)

    def wait_for_page_loaded(self, count: int = 1, timeout: float = 10.0) -> list[ScriptEvent]:
        """Wait until *count* pages reported everything up to their ``loaded`` event: the events
        of the last such page (raises :class:`TimeoutError` otherwise)."""

        def loaded(log: ScriptLog) -> list[list[ScriptEvent]]:
            return [p for p in log.pages() if any(e.kind == "loaded" for e in p)]

        if not self.wait_for(lambda log: len(loaded(log)) >= count, timeout):
            raise TimeoutError(f"fewer than {count} pages ran the stand-in script within {timeout:g}s: {self.events}")
        return loaded(self)[-1]

    def record(self, body: bytes) -> bool:
        """Record a report from the stand-in; False if it is not one."""
        try:
            document: Any = json.loads(body) if len(body) <= _MAX_EVENT else {}
            event = ScriptEvent(
                kind=str(document["kind"]),
                name=str(document["name"]),
                args=list(document.get("args") or []),
                tracking_user_id=_str_or_none(document.get("trackingUserId")),
                customer_id=_str_or_none(document.get("customerId")),
                opted_out=bool(document.get("optedOut")),
                location=str(document.get("location") or ""),
                page=str(document["page"]),
                seq=int(document["seq"]),
                time_origin=float(document.get("timeOrigin") or 0.0),
            )
        except (ValueError, TypeError, LookupError):
            return False
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()
        return True


def _contiguous(events: list[ScriptEvent]) -> list[ScriptEvent]:
    """*events* (of one page, in order) up to the first missing ``seq``."""
    kept = []
    for expected, event in enumerate(events):
        if event.seq != expected:
            break
        kept.append(event)
    return kept


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


#: The stand-in script (see the module's docstring).
STAND_IN = b"""\
/* hr-middleware's fake Hello Retail: a stand-in for helloretail.js, for tests and demos. */
(function () {
  "use strict";
  var me = document.currentScript;
  var endpoint = new URL("/serve/_script/events", me ? me.src : location.href).href;
  var page = String(performance.timeOrigin) + "-" + Math.random().toString(36).slice(2);
  var seq = 0;
  var state = { loaded: false, initialised: false, optedOut: false, websiteUuid: null, customerId: null,
                pageviews: 0, clicks: 0, trackingUserId: null, commands: [] };
  window.helloRetailStandIn = state;

  function cookieId() {
    var match = document.cookie.match(/(?:^|; )hello_retail_id=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : null;
  }
  function report(kind, name, args) {
    state.trackingUserId = cookieId();
    var event = { kind: kind, name: name, args: args || [], trackingUserId: state.trackingUserId,
                  customerId: state.customerId, optedOut: state.optedOut, location: location.href,
                  page: page, seq: seq++, timeOrigin: performance.timeOrigin };
    var body = JSON.stringify(event);
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
      fetch(endpoint, { method: "POST", body: body, mode: "no-cors", keepalive: true });
    }
    document.dispatchEvent(new CustomEvent("helloretail:standin", { detail: event }));
  }
  function trackPageview() {
    if (state.initialised && !state.optedOut) { state.pageviews++; report("tracked", "pageview", []); }
  }
  var commands = {
    init: function (config) {
      config = config || {};
      state.initialised = true;
      state.websiteUuid = config.websiteUuid || null;
      state.optedOut = config.setTrackingOptOut === true;
      report("command", "init", [config]);
      trackPageview();
    },
    setTrackingOptOut: function (value) {
      var was = state.optedOut;
      state.optedOut = value === true;
      report("command", "setTrackingOptOut", [value]);
      if (was && !state.optedOut && state.pageviews === 0) trackPageview();
    },
    setCustomerId: function (id) {
      state.customerId = id == null ? null : String(id);
      report("command", "setCustomerId", [id]);
    },
    reload: function (config) {
      if (config && config.websiteUuid) state.websiteUuid = config.websiteUuid;
      report("command", "reload", config ? [config] : []);
      trackPageview();
    }
  };
  function run(command) {
    if (!command || !command.length) return;
    state.commands.push(command);
    var handler = commands[command[0]];
    if (handler) handler.apply(null, Array.prototype.slice.call(command, 1));
    else report("command", String(command[0]), Array.prototype.slice.call(command, 1));
  }

  // Clicks on product links: the real script tracks a followed link whose fragment names aw_source.
  document.addEventListener("click", function (event) {
    var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
    if (!link || !state.initialised || state.optedOut) return;
    var match = new URL(link.href, location.href).hash.match(/[#&]aw_source=([^&]*)/);
    if (match) { state.clicks++; report("tracked", "click", [decodeURIComponent(match[1])]); }
  }, true);

  var queued = window.hrq || [];
  window.hrq = { push: function () { for (var i = 0; i < arguments.length; i++) run(arguments[i]); } };
  for (var i = 0; i < queued.length; i++) run(queued[i]);
  state.loaded = true;
  report("loaded", "queue", []);
})();
"""
