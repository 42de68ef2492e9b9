"""``callerid-com``: CallerID.com "Whozz Calling?" records, one per CR LF line (9600 8N1).

Record forms (docs/formats.md), each optionally led by ``$`` (the
``c`` toggle, which also removes the dashes from numbers):

* comprehensive / Basic-POS: ``01 I S 0276 G B3 09/26 11:28 AM 800-240-4637 CallerID.com``
  (line, In/Out, Start/End, duration s, checksum Good/Bad, ring type + count, date,
  12-hour time, number, name);
* limited: ``$01 09/26 02:30 PM 8002404637 I CallerID.com``;
* detail: ``01 R 11/07 07:43:52`` (R ring, F off hook, N on hook, H hook flash; 24 h);
* memory dump: ``0248 02 09/26 13:28 I E 0276 G A3 800-555-1212 AT&T INFORMATIO``
  (record number first, 24-hour time);
* the Ethernet Link's UDP payload: ``^^<U>`` + unit + ``<S>`` + serial + ``$`` + a record.

Frames: an inbound call record → ``cid`` (``line`` = the two-digit line number as
printed, ``hour`` 0-23), with ``direction``, ``event``, ``duration_s``, ``rings`` and
``ring_type`` as extra keys where the record has them; a record whose checksum flag
is ``B`` (the box saw a corrupted caller-ID message) → ``invalid`` (``checksum``);
outbound records → nothing (they are not caller ID); ``R`` → ``ring``; ``F`` / ``N`` →
``hook`` ``off`` / ``on``; ``H`` (flash) → nothing.  Fields are split on whitespace,
since the manual's fixed columns are padded inconsistently across units.
"""

from __future__ import annotations

import re
from typing import Any

from cidbridge.core.formats.base import LineDecoder, text
from cidbridge.core.frames import PRIVATE, UNAVAILABLE, CidFrame, Frame, HookFrame, InvalidFrame, RingFrame

FORMAT = "callerid-com"

_DATE = rb"(\d\d)/(\d\d)"
_CALL = re.compile(
    rb"\$?(\d\d) +([IO]) +([ESB]) +(\d{4}) +([GB]) +(\S)(\d) +" + _DATE + rb" +(\d\d):(\d\d) +([AP]M)(.*)"
)
_LIMITED = re.compile(rb"\$?(\d\d) +" + _DATE + rb" +(\d\d):(\d\d) +([AP]M) +(\S+) +([IO])(.*)")
_DETAIL = re.compile(rb"\$?(\d\d) +([RFNH]) +" + _DATE + rb" +(\d\d):(\d\d):(\d\d) *")
_MEMORY = re.compile(
    rb"(\d{4}) +(\d\d) +" + _DATE + rb" +(\d\d):(\d\d) +([IO]) +([ESB]) +(\d{4}) +([GB]) +(\S)(\d)(.*)"
)
_EVENTS = {b"S": "start", b"E": "end", b"B": "both"}
#: What these boxes print in the number field instead of a number.
NUMBER_ABSENCES = {
    "P": PRIVATE,
    "PRIVATE": PRIVATE,
    "O": UNAVAILABLE,
    "OUT-OF-AREA": UNAVAILABLE,
    "OUT OF AREA": UNAVAILABLE,
}


def hour_24(hour: int, meridiem: bytes) -> int | None:
    """12-hour clock → 0-23 (12 AM is 0, 12 PM is 12); None if the hour is not 1-12."""
    if not 1 <= hour <= 12:
        return None
    return hour % 12 + (12 if meridiem == b"PM" else 0)


def _date(month: bytes, day: bytes) -> tuple[int | None, int | None]:
    m, d = int(month), int(day)
    return (m, d) if 1 <= m <= 12 and 1 <= d <= 31 else (None, None)


def _time(hour: int | None, minute: bytes) -> tuple[int | None, int | None]:
    mm = int(minute)
    return (hour, mm) if hour is not None and 0 <= hour <= 23 and mm <= 59 else (None, None)


def split_number_name(rest: bytes) -> tuple[str | None, str | None, str | None]:
    """The text after the time → (number, number_absence, name); padding stripped."""
    if not rest[:1].isspace():
        return None, None, None
    body = rest[1:]
    if not body.strip():
        return None, None, None
    if len(body) > 15 and not body[:14].strip():
        number_raw, name_raw = b"", body  # a blank number column, then the name
    else:
        parts = body.strip().split(None, 1)
        number_raw = parts[0]
        name_raw = parts[1] if len(parts) > 1 else b""
    number = text(number_raw) if number_raw else None
    absence = NUMBER_ABSENCES.get(number.upper()) if number else None
    if absence is not None:
        number = None
    name = text(name_raw.strip()) or None
    return number, absence, name


class CallerIdComDecoder(LineDecoder):
    """Line decoder for Whozz Calling? records.  See the module doc."""

    format = FORMAT

    def line(self, raw: bytes, out: list[Frame]) -> None:
        if raw[:5] == b"^^<U>":
            dollar = raw.find(b"$", 5)
            raw = raw[dollar:] if dollar >= 0 else b""
        raw = raw.strip(b"\x00")
        if not raw.strip():
            return
        match = _CALL.match(raw)
        if match is not None:
            g = match.groups()
            month, day = _date(g[7], g[8])
            hour, minute = _time(hour_24(int(g[9]), g[11]), g[10])
            self._call(raw, g[0], g[1], g[2], g[3], g[4], g[5], g[6], month, day, hour, minute, g[12], out)
            return
        match = _DETAIL.fullmatch(raw)
        if match is not None:
            self._detail(match.group(1), match.group(2), out)
            return
        match = _LIMITED.match(raw)
        if match is not None:
            g = match.groups()
            month, day = _date(g[1], g[2])
            hour, minute = _time(hour_24(int(g[3]), g[5]), g[4])
            number, absence, _ = split_number_name(b" " + g[6])
            name = text(g[8].strip()) or None
            if g[7] == b"I":
                self._cid(out, number, absence, name, month, day, hour, minute, g[0], [("direction", "in")])
            return
        match = _MEMORY.match(raw)
        if match is not None:
            g = match.groups()
            month, day = _date(g[2], g[3])
            hour, minute = _time(int(g[4]), g[5])
            self._call(raw, g[1], g[6], g[7], g[8], g[9], g[10], g[11], month, day, hour, minute, g[12], out)
            return
        self.stats.skipped += len(raw)

    def _call(
        self,
        raw: bytes,
        line: bytes,
        direction: bytes,
        event: bytes,
        duration: bytes,
        check: bytes,
        ring_type: bytes,
        rings: bytes,
        month: int | None,
        day: int | None,
        hour: int | None,
        minute: int | None,
        rest: bytes,
        out: list[Frame],
    ) -> None:
        if check == b"B":
            self.stats.frames += 1
            self.stats.invalid += 1
            out.append(InvalidFrame(FORMAT, "checksum", raw))
            return
        if direction != b"I":
            return  # an outbound call: not caller ID
        number, absence, name = split_number_name(rest)
        extra: list[tuple[str, Any]] = [
            ("direction", "in"),
            ("event", _EVENTS[event]),
            ("duration_s", int(duration)),
            ("ring_type", text(ring_type)),
            ("rings", int(rings)),
        ]
        self._cid(out, number, absence, name, month, day, hour, minute, line, extra)

    def _cid(
        self,
        out: list[Frame],
        number: str | None,
        absence: str | None,
        name: str | None,
        month: int | None,
        day: int | None,
        hour: int | None,
        minute: int | None,
        line: bytes,
        extra: list[tuple[str, Any]],
    ) -> None:
        self.stats.frames += 1
        out.append(
            CidFrame(FORMAT, number, absence, name, None, month, day, hour, minute, text(line), tuple(extra))
        )

    def _detail(self, line: bytes, code: bytes, out: list[Frame]) -> None:
        channel = text(line)
        if code == b"R":
            frame: Frame = RingFrame(FORMAT, channel, None)
        elif code == b"F":
            frame = HookFrame(FORMAT, "off", channel)
        elif code == b"N":
            frame = HookFrame(FORMAT, "on", channel)
        else:
            return  # H: a hook flash changes nothing the call layer follows
        self.stats.frames += 1
        out.append(frame)


# -- encoders --------------------------------------------------------------------------


def _clock(hour: int, minute: int) -> str:
    meridiem = "PM" if hour >= 12 else "AM"
    return f"{(hour % 12) or 12:02d}:{minute:02d} {meridiem}"


def encode_call_record(
    number: str | None,
    name: str | None = None,
    *,
    line: int = 1,
    event: str = "S",
    duration: int = 0,
    ring_type: str = "A",
    rings: int = 1,
    month: int = 1,
    day: int = 1,
    hour: int = 0,
    minute: int = 0,
    dollar: bool = False,
    bad_checksum: bool = False,
    absence: str | None = None,
) -> bytes:
    """A comprehensive record, number padded to 14 and name to 15 as the units print them."""
    if number is None:
        number = {PRIVATE: "PRIVATE", UNAVAILABLE: "OUT-OF-AREA"}.get(absence or "", "")
    record = (
        f"{'$' if dollar else ''}{line:02d} I {event} {duration:04d} {'B' if bad_checksum else 'G'} "
        f"{ring_type}{rings} {month:02d}/{day:02d} {_clock(hour, minute)} {number:<14} {name or '':<15}"
    )
    return record.rstrip().encode() + b"\r\n"


def encode_detail(code: str, *, line: int = 1, month: int = 1, day: int = 1, hour: int = 0) -> bytes:
    """A detail record: ``R`` ring, ``F`` off hook, ``N`` on hook, ``H`` flash."""
    return f"{line:02d} {code} {month:02d}/{day:02d} {hour:02d}:00:00\r\n".encode()
