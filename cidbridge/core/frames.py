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
"""

from __future__ import annotations

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
