"""Frames: what a decoder hands out, one immutable record per thing the device said.

A frame is what the *device* reported (a caller-ID block, a ring, a hook change),
not yet a call: the call tracker turns frames into calls.

Frames are ``typing.NamedTuple`` records rather than frozen dataclasses: they are
just as immutable, but constructing one is about four times cheaper (0.3 µs against
1.2 µs for a ten-field frozen slots dataclass on CPython 3.11), and a decoder
builds hundreds of thousands of them per second.  Each kind has a class attribute
``kind`` and a :meth:`to_json` that gives the contract in docs/formats.md, "Decoded frames".

Absence values are the strings in :data:`ABSENCES`; a ``None`` absence means
"no reason given" (a value is present, or the device said nothing about it).

Text in a frame is what the device sent, control characters included: anyone can
put any name on a call, ``ESC]0;…`` (a terminal title) or bidirectional overrides
too.  :func:`clean_frame` takes them out; it is applied where frames leave the
decoders in the daemon and again by the call tracker, so calls, the call log, the
panel and the API never carry them.  :func:`visible_text` shows them as escapes
instead (``cidbridge decode``, ``monitor``, ``probe``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

PRIVATE = "private"
UNAVAILABLE = "unavailable"
PAYPHONE = "payphone"
CONFLICT = "conflict"
ABSENCES = frozenset({PRIVATE, UNAVAILABLE, PAYPHONE, CONFLICT})

#: Single-letter absence codes used by FSK, modems and boxes (O, P, C, S; A = anonymous).
ABSENCE_CODES: dict[str, str] = {
    "P": PRIVATE,
    "A": PRIVATE,
    "O": UNAVAILABLE,
    "C": PAYPHONE,
    "S": CONFLICT,
}


class CidFrame(NamedTuple):
    """Caller ID: who is calling.  Text is stripped of padding; a missing value is None."""

    format: str
    number: str | None = None
    number_absence: str | None = None
    name: str | None = None
    name_absence: str | None = None
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int | None = None
    line: str | None = None
    #: Anything else the device said that a user may want (call type, DDN, MESG hex, …).
    extra: tuple[tuple[str, Any], ...] = ()

    kind = "cid"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "cid",
            "format": self.format,
            "number": self.number,
            "number_absence": self.number_absence,
            "name": self.name,
            "name_absence": self.name_absence,
            "month": self.month,
            "day": self.day,
            "hour": self.hour,
            "minute": self.minute,
            "line": self.line,
        }
        for key, value in self.extra:
            out.setdefault(key, value)
        return out


class RingFrame(NamedTuple):
    """The line rang once.  ``tag`` is a distinctive-ring letter or digit (``RING A``)."""

    format: str
    line: str | None = None
    tag: str | None = None

    kind = "ring"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "ring", "format": self.format, "line": self.line, "tag": self.tag}


class MwiFrame(NamedTuple):
    """Message waiting indicator: voicemail on/off, with a count where the network gives one."""

    format: str
    active: bool
    count: int | None = None
    line: str | None = None

    kind = "mwi"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "mwi",
            "format": self.format,
            "active": self.active,
            "count": self.count,
            "line": self.line,
        }


class HookFrame(NamedTuple):
    """The handset went off hook (``"off"``, picked up) or on hook (``"on"``, hung up)."""

    format: str
    state: str
    line: str | None = None

    kind = "hook"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "hook", "format": self.format, "line": self.line, "state": self.state}


class InvalidFrame(NamedTuple):
    """Bytes that looked like a frame but failed a check.  Data, not an error; never a call."""

    format: str
    reason: str
    raw: bytes = b""

    kind = "invalid"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "invalid",
            "format": self.format,
            "reason": self.reason,
            "raw": self.raw.hex(),
        }


Frame = CidFrame | RingFrame | MwiFrame | HookFrame | InvalidFrame


#: Text never passed on from a device: C0 and C1 controls and DEL (terminal escapes),
#: bidirectional marks, embeddings, overrides and isolates (they reorder what is shown),
#: and the Unicode line and paragraph separators.
UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_BLANKS = re.compile("[\t\n\r\x0b\x0c\u2028\u2029]+")


def clean_text(text: str | None) -> str | None:
    """``text`` without :data:`UNSAFE_TEXT` characters (line breaks and tabs become a space).

    None stays None, and so does text that had nothing else (a name of only escapes).
    """
    if not text or not UNSAFE_TEXT.search(text):
        return text
    cleaned = UNSAFE_TEXT.sub("", _BLANKS.sub(" ", text)).strip()
    return cleaned or None


def visible_text(text: str) -> str:
    """``text`` with every :data:`UNSAFE_TEXT` character written as an escape (``\\x1b``, ``\\u202e``)."""
    if not UNSAFE_TEXT.search(text):
        return text
    return UNSAFE_TEXT.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _map_values(value: Any, fix: Any) -> Any:
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, list | tuple):
        return type(value)(_map_values(v, fix) for v in value)
    return value


def clean_frame(frame: Frame) -> Frame:
    """``frame`` with its text cleaned (:func:`clean_text`); the same object when it was clean."""
    return _apply(frame, clean_text)


def visible_frame(frame: Frame) -> Frame:
    """``frame`` with control characters in its text shown as escapes (:func:`visible_text`)."""
    return _apply(frame, visible_text)


def _apply(frame: Frame, fix: Any) -> Frame:
    if isinstance(frame, InvalidFrame):
        return frame
    changes: dict[str, Any] = {}
    for field in frame._fields:
        value = getattr(frame, field)
        if field == "extra":
            fixed = tuple((key, _map_values(v, fix)) for key, v in value)
        elif field != "format" and isinstance(value, str):
            fixed = fix(value)
        else:
            continue
        if fixed != value:
            changes[field] = fixed
    return frame._replace(**changes) if changes else frame


def event_time(value: object) -> datetime:
    """An event's ISO ``time`` as the daemon's wall clock showed it (now if unreadable).

    For the protocols that print a call's date and time (NCID, CallerID.com records).
    """
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return datetime.now().astimezone()
