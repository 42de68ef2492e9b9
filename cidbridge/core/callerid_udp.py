"""CallerID.com "Ethernet Link" UDP packets, sans-I/O: framing, de-duplication, records.

Whozz Calling? Ethernet units broadcast one UDP packet per event to port 3520::

    ^^<U> + unit (6 bytes, big-endian) + <S> + serial (6 bytes) + "$" + record

The record is the serial ``callerid-com`` format in fixed columns (decoded by
:class:`~cidbridge.core.formats.callerid_com.CallerIdComDecoder`; nothing here parses
records):

* a call record, 62 bytes (83-byte packet)::

      01 I S 0000 G A1 09/26 11:28 AM 800-240-4637   CallerID.com
      line, In/Out, Start/End, duration s, checksum Good/Bad, ring type and count,
      mm/dd, hh:mm AM/PM, number (14 columns), name (15 columns)

* a detail record, 31 bytes (52-byte packet): ``01 R`` + 13 spaces + ``11/07 07:43:52``
  (R ring, F off hook, N on hook; 24-hour time).

Units send a packet more than once; receivers drop identical packets seen within
0.5 s (detail records) or 1.1 s (call records): :class:`Deduper`.  The layout's facts
are in docs/formats.md ("Network protocols").

:class:`RecordFeed` turns cidbridge's call events into the records a unit would send
for the same call (see the README, "CallerID.com UDP"), so software that listens to
Whozz Calling units shows calls from any source.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from cidbridge.core.frames import event_time

__all__ = [
    "CALL_RECORD_LEN",
    "DETAIL_RECORD_LEN",
    "Deduper",
    "Packet",
    "PacketError",
    "RecordFeed",
    "call_record",
    "detail_record",
    "encode_packet",
    "parse_packet",
]

UNIT_TAG = b"^^<U>"
SERIAL_TAG = b"<S>"
#: ``^^<U>`` + 6 + ``<S>`` + 6: the record (after an optional ``$``) starts here.
HEADER_LEN = 20
#: Longest packet accepted (units send at most ~90 bytes).
MAX_PACKET = 512
CALL_RECORD_LEN = 62
DETAIL_RECORD_LEN = 31
#: Seconds within which an identical packet is a repeat (the vendor's sample application's windows).
CALL_WINDOW = 1.1
DETAIL_WINDOW = 0.5
NUMBER_WIDTH = 14
NAME_WIDTH = 15
#: What units print in the number column when there is no number.
ABSENT_NUMBERS = {"private": "Private", "unavailable": "Out-of-Area", "conflict": "Out-of-Area"}


class PacketError(ValueError):
    """Bytes that are not an Ethernet Link packet; the message says what is wrong."""


class Packet(NamedTuple):
    unit: int
    #: The unit's serial number, 12 hex digits.
    serial: str
    #: The record, without the ``$`` and without trailing CR/LF/NUL.
    record: bytes

    @property
    def is_call_record(self) -> bool:
        return self.record[3:4] in (b"I", b"O")


def parse_packet(data: bytes) -> Packet:
    """Split a packet into unit, serial and record; :class:`PacketError` if it is not one."""
    if len(data) > MAX_PACKET:
        raise PacketError(f"{len(data)} bytes, more than a unit sends")
    if not data.startswith(UNIT_TAG) or data[11:14] != SERIAL_TAG or len(data) <= HEADER_LEN:
        raise PacketError("no ^^<U>…<S>… header")
    record = data[HEADER_LEN:]
    if record[:1] == b"$":
        record = record[1:]
    record = record.rstrip(b"\r\n\x00")
    if not record.strip():
        raise PacketError("no record after the header")
    return Packet(int.from_bytes(data[5:11], "big"), data[14:20].hex(), record)


def encode_packet(record: bytes, *, unit: int, serial: bytes) -> bytes:
    """A packet the way units send it: header, ``$``, record."""
    if len(serial) != 6:
        raise ValueError("a serial number is 6 bytes")
    return UNIT_TAG + unit.to_bytes(6, "big") + SERIAL_TAG + serial + b"$" + record


class Deduper:
    """Drops repeats of a packet: the same bytes within the window of their first copy.

    Memory is bounded (:attr:`limit` packets remembered; expired ones are forgotten).
    """

    def __init__(self, *, call_window: float = CALL_WINDOW, detail_window: float = DETAIL_WINDOW) -> None:
        self.call_window = call_window
        self.detail_window = detail_window
        self.limit = 256
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def is_repeat(self, data: bytes, packet: Packet, now: float) -> bool:
        """True if ``data`` repeats a packet first seen less than a window ago."""
        while self._seen:
            oldest, first = next(iter(self._seen.items()))
            if now - first < max(self.call_window, self.detail_window) and len(self._seen) < self.limit:
                break
            del self._seen[oldest]
        first = self._seen.get(data)
        window = self.call_window if packet.is_call_record else self.detail_window
        if first is not None and now - first < window:
            return True
        self._seen.pop(data, None)
        self._seen[data] = now
        return False


# -- records ------------------------------------------------------------------------------


def _column(value: str | None, width: int) -> bytes:
    """``value`` in exactly ``width`` bytes: UTF-8, cut on a character, space-padded."""
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in (value or ""))
    raw = text.strip().encode("utf-8")[:width]
    raw = raw.decode("utf-8", "ignore").encode("utf-8")  # never half a character
    return raw + b" " * (width - len(raw))


def _clock(hour: int, minute: int) -> str:
    return f"{(hour % 12) or 12:02d}:{minute:02d} {'PM' if hour >= 12 else 'AM'}"


def call_record(
    *,
    line: int,
    event: str,
    when: datetime,
    number: str | None,
    name: str | None,
    duration: int = 0,
    rings: int = 0,
    direction: str = "I",
    ring_type: str = "A",
) -> bytes:
    """A 62-byte call record (``event`` ``S`` start or ``E`` end), columns as units print them."""
    head = (
        f"{line % 100:02d} {direction} {event} {min(max(duration, 0), 9999):04d} G "
        f"{ring_type}{min(max(rings, 0), 9)} {when:%m/%d} {_clock(when.hour, when.minute)} "
    )
    record = head.encode() + _column(number, NUMBER_WIDTH) + b" " + _column(name, NAME_WIDTH)
    assert len(record) == CALL_RECORD_LEN
    return record


def detail_record(*, line: int, code: str, when: datetime) -> bytes:
    """A 31-byte detail record: ``R`` ring, ``F`` off hook, ``N`` on hook."""
    record = f"{line % 100:02d} {code}{' ' * 13}{when:%m/%d %H:%M:%S}".encode()
    assert len(record) == DETAIL_RECORD_LEN
    return record


def record_number(number: str | None, absence: str | None) -> str:
    """The number column: the number without spaces (at most 14 characters), or why none."""
    if not number:
        return ABSENT_NUMBERS.get(absence or "", "")
    compact = "".join(ch for ch in number if not ch.isspace() and unicodedata.category(ch)[0] != "C")
    if len(compact.encode("utf-8")) > NUMBER_WIDTH:
        digits = "".join(ch for ch in compact if ch in "0123456789")
        compact = digits[-NUMBER_WIDTH:]  # the subscriber's end of an over-long number
    return compact


class _Call:
    __slots__ = ("answered", "rings", "started")

    def __init__(self) -> None:
        self.started: datetime | None = None
        self.answered = False
        self.rings = 0


class RecordFeed:
    """Call events in, the records a Whozz Calling unit would send for them out.

    ============================  ====================================================
    event                         records
    ============================  ====================================================
    ``ring``                      ``R`` (detail)
    ``call``                      ``S`` start record (caller so far, rings so far)
    ``update`` first answered     ``F`` off hook (detail)
    ``end``                       ``N`` on hook (if answered), then ``E`` end record
                                  with the duration talked (0 if not answered)
    ============================  ====================================================

    ``line_number(line)`` gives a line's two-digit number.  A call that never got a
    start record (rings with no caller ID that stopped) gets no end record either, as
    on a unit.  Remembers the last 512 calls.
    """

    def __init__(self, line_number: Callable[[str], int]) -> None:
        self.line_number = line_number
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    def records(self, event: Mapping[str, Any]) -> list[bytes]:
        kind = event.get("type")
        if kind not in ("ring", "call", "update", "end"):
            return []
        call_id = str(event.get("call_id"))
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call()
            while len(self._calls) > 512:
                self._calls.popitem(last=False)
        when = event_time(event.get("time"))
        line = self.line_number(str(event.get("line", "")))
        rings = int(event.get("ring_count") or 0)
        out: list[bytes] = []
        if kind == "ring":
            out.append(detail_record(line=line, code="R", when=when))
        elif kind == "call":
            call.started = when
            out.append(self._call_record(event, "S", line, when, rings, 0))
        elif kind == "update":
            if event.get("outcome") == "answered" and not call.answered and call.started is not None:
                call.answered = True
                out.append(detail_record(line=line, code="F", when=when))
        elif kind == "end" and call.started is not None:
            del self._calls[call_id]
            answered = event.get("outcome") == "answered"
            if answered:
                out.append(detail_record(line=line, code="N", when=when))
            duration = round(float(event.get("duration_s") or 0)) if answered else 0
            out.append(self._call_record(event, "E", line, call.started, rings, duration))
        return out

    @staticmethod
    def _call_record(
        event: Mapping[str, Any], kind: str, line: int, when: datetime, rings: int, duration: int
    ) -> bytes:
        return call_record(
            line=line,
            event=kind,
            when=when,
            number=record_number(event.get("number"), event.get("number_absence")),
            name=event.get("name"),
            duration=duration,
            rings=rings,
        )
