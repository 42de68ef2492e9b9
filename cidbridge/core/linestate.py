"""Each line's state, followed from the committed events: idle, ringing or talking, and its caller.

Sans-I/O: :meth:`LineStates.apply` takes one event payload (as the hub commits it)
and returns what changed; nothing here reads a clock or touches a socket.  The MQTT
output publishes :meth:`LineStates.snapshot` as each line's retained state and
:attr:`Change.notice` as a Home Assistant event; the rules live here so they are
tested without a broker.

The rules:

* A line is ``ringing`` while one of its calls rings (a ``ring`` or ``call`` event,
  not yet answered or ended), else ``talking`` while a call is answered (an ``update``
  or ``call`` whose ``outcome`` is ``answered``) and not ended, else ``idle``.  Ringing
  wins over talking: a call waiting while the handset is in use is what needs a hand.
* The line's *call* is the newest one: the first event of a call not seen before
  makes it the line's call, and only that call's events change the caller shown
  (the end of an older call, after call waiting, does not).
* Notices, one per event, for automations: ``ring``, ``call`` (caller known, or known
  to be missing), ``answered`` (the update that says so), ``update`` (anything else
  added), ``missed`` (an ``end`` nobody answered, or a later correction that turns an
  ended call into missed), ``blocked`` (the end of a call from a blocked caller that
  nobody answered), ``end`` (any other end).  ``line`` events give none; they
  set the line's ``connection`` (``up``/``down``).
* Bounded: at most ``max_lines`` lines (events of further lines are ignored and
  counted) and ``max_calls`` calls in progress per line (the oldest is forgotten:
  a lost ``end`` cannot pin a line at ringing forever).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IDLE", "NOTICES", "RINGING", "STATES", "TALKING", "Change", "LineStates", "caller_text"]

IDLE, RINGING, TALKING = "idle", "ringing", "talking"
STATES = (IDLE, RINGING, TALKING)
#: Every notice :meth:`LineStates.apply` may give (Home Assistant's ``event_types``).
NOTICES = ("ring", "call", "answered", "update", "missed", "blocked", "end")

#: The caller fields an event carries, copied into the line's snapshot.
CALLER_FIELDS = (
    "number",
    "display",
    "e164",
    "name",
    "network_name",
    "note",
    "number_absence",
    "name_absence",
    "ring_count",
    "waiting",
    "outcome",
    "duration_s",
    "blocked",
)
#: What a caller without a number is shown as (``number_absence``).
ABSENCE_TEXT = {
    "private": "Private number",
    "unavailable": "No caller ID",
    "payphone": "Payphone",
    "conflict": "Unknown caller",
}
#: Ended calls remembered per line, to tell a late correction from a new call.
_ENDED_REMEMBERED = 16


def caller_text(event: dict[str, Any]) -> str:
    """The caller as a person reads it: the name, else the number, else why there is none."""
    for key in ("name", "display", "number"):
        if event.get(key):
            return str(event[key])
    absence = event.get("number_absence")
    if absence:
        return ABSENCE_TEXT.get(str(absence), str(absence))
    return ""


@dataclass(frozen=True, slots=True)
class Change:
    """What one event changed on its line."""

    line: str
    #: The line was not known before this event.
    new_line: bool
    #: The notice for automations (one of :data:`NOTICES`), or None (``line`` events).
    notice: str | None
    #: The state, the call or the caller changed: publish a new snapshot.
    snapshot_changed: bool
    #: A ``line`` event: the line's connection (``up``/``down``) may have changed.
    connection_changed: bool = False


@dataclass(slots=True)
class _Line:
    name: str
    #: Calls in progress, oldest first: call_id -> RINGING or TALKING.
    calls: OrderedDict[str, str] = field(default_factory=OrderedDict)
    #: Recently ended calls: call_id -> outcome.
    ended: OrderedDict[str, str | None] = field(default_factory=OrderedDict)
    state: str = IDLE
    since: str | None = None
    call_id: str | None = None
    caller: dict[str, Any] = field(default_factory=dict)
    connection: str | None = None
    reason: str | None = None
    event_id: int | None = None


class LineStates:
    """The state of every line seen so far.  See the module doc for the rules."""

    def __init__(self, *, max_lines: int = 256, max_calls: int = 8) -> None:
        self.max_lines = max_lines
        self.max_calls = max_calls
        self._lines: dict[str, _Line] = {}
        #: Events ignored because ``max_lines`` lines were already known.
        self.ignored = 0

    def add_line(self, name: str) -> bool:
        """Know ``name`` before any event (a configured line); False if full or known."""
        if name in self._lines or len(self._lines) >= self.max_lines:
            return False
        self._lines[name] = _Line(name)
        return True

    def lines(self) -> list[str]:
        return list(self._lines)

    def has_connection(self, line: str) -> bool:
        return line in self._lines and self._lines[line].connection is not None

    def apply(self, event: dict[str, Any]) -> Change | None:
        """Follow one committed event; None if it is not about a line (or too many lines)."""
        name = event.get("line")
        if not isinstance(name, str) or not name:
            return None
        new_line = name not in self._lines
        if new_line and not self.add_line(name):
            self.ignored += 1
            return None
        line = self._lines[name]
        line.event_id = event.get("id", line.event_id)
        kind = event.get("type")
        if kind == "line":
            changed = (event.get("state"), event.get("reason")) != (line.connection, line.reason)
            line.connection, line.reason = event.get("state"), event.get("reason")
            return Change(name, new_line, None, False, connection_changed=changed or new_line)
        call_id = event.get("call_id")
        if not isinstance(call_id, str):
            return Change(name, new_line, None, False)
        before = self._shown(line)
        notice = self._follow(line, kind, call_id, event)
        if call_id == line.call_id:
            line.caller = {key: event.get(key) for key in CALLER_FIELDS}
        state = RINGING if RINGING in line.calls.values() else TALKING if line.calls else IDLE
        if state != line.state:
            line.state, line.since = state, event.get("time")
        return Change(name, new_line, notice, self._shown(line) != before)

    def _follow(self, line: _Line, kind: Any, call_id: str, event: dict[str, Any]) -> str | None:
        """Update the line's calls for one call event; return its notice."""
        outcome = event.get("outcome")
        if call_id in line.ended:
            # A late report about a call that already ended (a box's end record).
            was = line.ended[call_id]
            line.ended[call_id] = outcome or was
            return "missed" if outcome == "missed" and was != "missed" else "update"
        if call_id not in line.calls:
            line.call_id = call_id  # the first event of a new call: it is the line's call now
        if kind == "end":
            line.calls.pop(call_id, None)
            line.ended[call_id] = outcome
            while len(line.ended) > _ENDED_REMEMBERED:
                line.ended.popitem(last=False)
            return outcome if outcome in ("missed", "blocked") else "end"
        was = line.calls.get(call_id)
        line.calls[call_id] = TALKING if outcome == "answered" else was or RINGING
        while len(line.calls) > self.max_calls:
            line.calls.popitem(last=False)
        if kind == "ring":
            return "ring"
        if kind == "call":
            return "call"
        return "answered" if outcome == "answered" and was != TALKING else "update"

    @staticmethod
    def _shown(line: _Line) -> tuple[Any, ...]:
        return (line.state, line.call_id, tuple(sorted(line.caller.items(), key=lambda kv: kv[0])))

    def snapshot(self, name: str) -> dict[str, Any]:
        """The line's state as JSON-ready data (the MQTT retained state; see the README)."""
        line = self._lines[name]
        return {
            "line": name,
            "state": line.state,
            "since": line.since,
            "call_id": line.call_id,
            "caller": caller_text(line.caller),
            **{key: line.caller.get(key) for key in CALLER_FIELDS},
            "calls": len(line.calls),
            "connection": line.connection,
            "reason": line.reason,
            "event_id": line.event_id,
        }

    def connection(self, name: str) -> str | None:
        return self._lines[name].connection if name in self._lines else None
