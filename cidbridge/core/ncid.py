"""The NCID protocol, server side, sans-I/O: event dicts in, protocol lines out.

NCID ("Network Caller ID") clients — the ``ncid`` Tcl client, NCIDpop, NCIDAndroid,
ncid-notify modules, Home Assistant's NCID sensors — connect over TCP and read one
text line per thing that happened.  This module builds those lines and reads what a
client sends; :mod:`cidbridge.outputs.ncid` moves the bytes.

What a client receives (see the README, "NCID clients"; the protocol's facts are in
docs/formats.md, "Network protocols"):

* on connect ``200 Server: cidbridge (NCID) <version>`` and ``210 API: …``, then (after
  its ``HELLO:`` lines) the call log — ``254 Start of call log``, ``CIDLOG:`` lines,
  ``250 End of call log``; or ``252 Call log empty``; or ``251 Call log not sent``
  when it asked ``HELLO: CMD: no_log`` — then ``OPT: country: <region>`` and
  ``300 End of connection startup``;
* a call: ``CID: *DATE*mmddyyyy*TIME*hhmm*LINE*<line>*NMBR*<number>*MESG*NONE*NAME*<name>*``
  (``WID:`` when it came in on a busy line, ``HUP:`` when cidbridge hung up on a blocked
  caller, ``BLK:`` when it only marked it blocked);
* a ring: ``CIDINFO: *LINE*<line>*RING*<n>*TIME*hh:mm:ss*``, and at the end of the call
  RING ``0`` (ringing stopped, outcome unknown), ``-1`` (ended without pickup), ``-2``
  (ended after pickup) or ``-4`` (hang-up of a blocked caller done);
* ``MSG: line <name> is down: <reason>`` / ``… is up`` when a line changes state.

Values never contain the protocol's delimiters: :func:`clean` turns ``*`` into ``∗``
(U+2217, the way NCID itself rewrites stars) and every control, format or line-break
character (CR, LF, ESC, bidi overrides, U+2028 …) into a space, and caps the length.
A value is never empty: ``NO NAME``, ``NO-NUMBER``, ``-`` stand in (an empty field
would shift every later label in NCIDpop's tokenizer).
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cidbridge.core.frames import event_time

__all__ = [
    "API_LINE",
    "MAX_CLIENT_LINE",
    "ClientSession",
    "LineTooLong",
    "NcidFeed",
    "call_log",
    "clean",
    "encode",
    "greeting",
    "startup_end",
]

#: Feature Set 1 (modem and device support), plus ``REQ: YO`` from Feature Set 4.
API_LINE = "210 API: 1.0 Feature Set 1 4"
NO_NAME = "NO NAME"
NO_NUMBER = "NO-NUMBER"
NO_LINE = "-"
#: What NCID sends instead of a number (and a name) that was withheld or not delivered.
ABSENCE_WORDS = {
    "private": "PRIVATE",
    "unavailable": "OUT-OF-AREA",
    "payphone": "PAYPHONE",
    "conflict": "OUT-OF-AREA",
}
#: Longest value kept in a field (NCID names are 15 characters; phonebook names longer).
MAX_VALUE = 64
#: Longest line a client may send (ncidd's own buffer is 1 kB); longer closes it.
MAX_CLIENT_LINE = 1024
#: Calls remembered by :class:`NcidFeed` (so an update is not mistaken for a new call).
REMEMBERED_CALLS = 512
_NUMBER_SEPARATORS = str.maketrans("", "", " -.()/\u00a0")
_RING_STOPPED, _NO_PICKUP, _AFTER_PICKUP, _HUNG_UP = 0, -1, -2, -4


def clean(value: object, limit: int = MAX_VALUE) -> str:
    """``value`` safe inside a ``*``-delimited NCID line (see the module doc); may be ''."""
    out = []
    for ch in str(value):
        category = unicodedata.category(ch)
        if ch == "*":
            out.append("\u2217")
        elif category[0] == "C" or category in ("Zl", "Zp"):
            out.append(" ")  # control, format (bidi overrides), line and paragraph breaks
        else:
            out.append(ch)
    return " ".join("".join(out).split())[:limit].strip()


def encode(lines: Iterable[str]) -> bytes:
    """Lines as sent on the wire: UTF-8, each ended by CR LF like ncidd's."""
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8", "replace")


def greeting(version: str) -> list[str]:
    return [f"200 Server: cidbridge (NCID) {clean(version)}", API_LINE]


def startup_end(country: str) -> list[str]:
    """The option lines and the end of the start-up (``OPT: country:`` is required)."""
    return [f"OPT: country: {clean(country).upper() or 'US'}", "300 End of connection startup"]


def _number(number: object, absence: object) -> str:
    if isinstance(number, str) and number.strip():
        return clean(number.translate(_NUMBER_SEPARATORS)) or clean(number) or NO_NUMBER
    return ABSENCE_WORDS.get(str(absence), NO_NUMBER)


def _name(name: object, absence: object, number_absence: object) -> str:
    if isinstance(name, str) and clean(name):
        return clean(name)
    return ABSENCE_WORDS.get(str(absence)) or ABSENCE_WORDS.get(str(number_absence)) or NO_NAME


def _line(line: object) -> str:
    return clean(line) if isinstance(line, str) and clean(line) else NO_LINE


def call_line(label: str, fields: Mapping[str, Any], when: datetime) -> str:
    """``LABEL: *DATE*…*TIME*…*LINE*…*NMBR*…*MESG*NONE*NAME*…*`` for a call's fields.

    ``fields`` holds the event keys ``line``, ``number``, ``name``, ``number_absence``
    and ``name_absence``.
    """
    number = _number(fields.get("number"), fields.get("number_absence"))
    name = _name(fields.get("name"), fields.get("name_absence"), fields.get("number_absence"))
    return (
        f"{label}: *DATE*{when:%m%d%Y}*TIME*{when:%H%M}*LINE*{_line(fields.get('line'))}"
        f"*NMBR*{number}*MESG*NONE*NAME*{name}*"
    )


def cidinfo_line(line: object, ring: int, when: datetime) -> str:
    return f"CIDINFO: *LINE*{_line(line)}*RING*{ring}*TIME*{when:%H:%M:%S}*"


class NcidFeed:
    """Turns committed events into the lines every live client receives.

    One feed serves every client (the lines of an event are built once).  It remembers
    the last :data:`REMEMBERED_CALLS` calls, so an ``update`` re-announces a call only
    when what a client shows changed (the caller became known, the call was blocked),
    and a box's late end record does not show an ended call again.

    ``hangs_up(line)`` says whether a blocked call on ``line`` was hung up (``HUP:``,
    a modem) or only marked (``BLK:``); an event's own ``hung_up`` key wins.
    """

    def __init__(self, hangs_up: Callable[[str], bool] = lambda line: False) -> None:
        self.hangs_up = hangs_up
        #: call_id → what was last announced for it (label, number, name), None if nothing.
        self._calls: OrderedDict[str, tuple[str, str, str] | None] = OrderedDict()

    def lines(self, event: Mapping[str, Any]) -> list[str]:
        kind = event.get("type")
        when = event_time(event.get("time"))
        if kind == "line":
            name = clean(event.get("line", ""))
            if event.get("state") == "down":
                return [f"MSG: line {name} is down: {clean(event.get('reason') or 'no reason given', 200)}"]
            return [f"MSG: line {name} is {clean(event.get('state', ''))}"]
        call_id = str(event.get("call_id"))
        if kind == "ring":
            self._remember(call_id, self._calls.get(call_id))
            return [cidinfo_line(event.get("line"), int(event.get("ring_count") or 0), when)]
        if kind in ("call", "update"):
            return self._announce(call_id, event, when, first=kind == "call")
        if kind == "end":
            return [cidinfo_line(event.get("line"), self._ring_code(event), when)]
        return []

    def _announce(self, call_id: str, event: Mapping[str, Any], when: datetime, *, first: bool) -> list[str]:
        label = self.label(event)
        shown = (
            label,
            _number(event.get("number"), event.get("number_absence")),
            _name(event.get("name"), event.get("name_absence"), event.get("number_absence")),
        )
        if call_id in self._calls:
            before = self._calls[call_id]
            if not first and (before is None or before == shown):
                return []  # nothing a client shows changed (or it was never a caller)
        elif not first and event.get("number") is None and event.get("number_absence") is None:
            return []  # an update about a call this feed never saw announced, with no caller
        self._remember(call_id, shown)
        return [call_line(label, event, when)]

    def label(self, event: Mapping[str, Any]) -> str:
        """``CID``, ``WID`` (call waiting), ``HUP`` (blocked, hung up) or ``BLK`` (blocked)."""
        if event.get("blocked"):
            return "HUP" if self._hung_up(event) else "BLK"
        return "WID" if event.get("waiting") else "CID"

    def _hung_up(self, event: Mapping[str, Any]) -> bool:
        if "hung_up" in event:
            return bool(event["hung_up"])
        return bool(self.hangs_up(str(event.get("line", ""))))

    def _ring_code(self, event: Mapping[str, Any]) -> int:
        outcome = event.get("outcome")
        if outcome == "answered":
            return _AFTER_PICKUP
        if outcome == "blocked" or event.get("blocked"):
            return _HUNG_UP if self._hung_up(event) else _NO_PICKUP
        if outcome == "missed":
            return _NO_PICKUP
        return _RING_STOPPED

    def _remember(self, call_id: str, shown: tuple[str, str, str] | None) -> None:
        self._calls[call_id] = shown
        self._calls.move_to_end(call_id)
        while len(self._calls) > REMEMBERED_CALLS:
            self._calls.popitem(last=False)


def call_log(
    calls: Iterable[Mapping[str, Any]], feed: NcidFeed, *, requested: bool, enabled: bool
) -> list[str]:
    """The call-log part of the start-up for call rows (oldest first; see CallLog.calls).

    Calls that never had a caller (rings only) are left out, as NCID logs only calls.
    """
    if not requested or not enabled:
        return ["251 Call log not sent"]
    lines = []
    for call in calls:
        if call.get("number") is None and call.get("number_absence") is None:
            continue
        event = dict(call)
        event["blocked"] = call.get("blocked") or call.get("outcome") == "blocked"
        lines.append(call_line(feed.label(event) + "LOG", event, event_time(call.get("started"))))
    if not lines:
        return ["252 Call log empty"]
    return ["254 Start of call log", *lines, "250 End of call log"]


# -- what clients send -------------------------------------------------------------


class LineTooLong(ValueError):
    """A client sent a line longer than :data:`MAX_CLIENT_LINE` bytes."""


@dataclass(frozen=True, slots=True)
class Received:
    """What :meth:`ClientSession.receive` made of a client's bytes."""

    #: Lines to send back (``ACK: REQ YO``).
    replies: tuple[str, ...] = ()
    #: Lines the session ignored (requests it does not serve, gateway lines).
    ignored: tuple[str, ...] = ()


class ClientSession:
    """One client's side of the conversation: its ``HELLO:`` lines, requests, goodbye.

    Feed it every byte the client sends (:meth:`receive`).  Lines end with CR, LF or
    CR LF; an empty line is a keep-alive.  ``HELLO: IDENT: …`` names the client;
    ``HELLO: CMD: no_log`` / ``send_log`` choose whether it gets the call log;
    ``REQ: YO`` is answered ``ACK: REQ YO``; ``GOODBYE`` sets :attr:`goodbye` (the server
    closes).  Anything else is ignored: cidbridge serves no client jobs and takes no
    calls from gateways (``CALL:``), so nothing a client sends changes what others see.
    A line over :data:`MAX_CLIENT_LINE` bytes raises :class:`LineTooLong`.
    """

    def __init__(self) -> None:
        self.ident: str | None = None
        self.wants_log = True
        #: The client said what it wanted (a ``HELLO: CMD:``, or any other line): start-up can go on.
        self.hello_done = False
        self.goodbye = False
        self._buffer = b""

    def receive(self, data: bytes) -> Received:
        replies: list[str] = []
        ignored: list[str] = []
        buffer = self._buffer + data
        lines = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._buffer = lines.pop()
        if len(self._buffer) > MAX_CLIENT_LINE or any(len(line) > MAX_CLIENT_LINE for line in lines):
            raise LineTooLong(f"a line longer than {MAX_CLIENT_LINE} bytes")
        for raw in lines:
            if self.goodbye:
                break
            self._line(raw.decode("utf-8", "replace").strip(), replies, ignored)
        return Received(tuple(replies), tuple(ignored))

    def _line(self, line: str, replies: list[str], ignored: list[str]) -> None:
        if not line:
            return  # keep-alive
        upper = line.upper()
        if upper.startswith("HELLO:"):
            rest = line[6:].strip()
            if rest.upper().startswith("IDENT:"):
                self.ident = clean(rest[6:], 80) or None
                return
            if rest.upper().startswith("CMD:"):
                command = rest[4:].strip().lower()
                if command in ("no_log", "send_log"):
                    self.wants_log = command == "send_log"
                    self.hello_done = True
                    return
        elif upper == "GOODBYE":
            self.goodbye = True
            return
        elif upper.startswith("REQ:") and line[4:].strip().upper() == "YO":
            replies.append("ACK: REQ YO")
            self.hello_done = True
            return
        self.hello_done = True
        ignored.append(line)
