"""``tci``: TCI (Telephone Collectors International) fixed-column records, one per line.

Used by TCI multi-line units and by Whozz Calling units switched to TCI output
(docs/formats.md)::

    01      9/03      2:25 PM       806-672-1767           WIRELESS CALLER
    01      9/03     12:36 PM            PRIVATE

Columns (0-based): line 0-1, date ``M/DD`` 7-11, time ``h:mm AM`` 17-24, number 29-43
(right-justified; ``PRIVATE`` / ``OUT-OF-AREA`` instead of a number), name 55-69.
A line is a record when it is longer than 30 characters, starts with a digit and
has ``/`` at 9 and ``M`` at 24 (the test NCID uses).  Columns count characters, not
bytes, so a UTF-8 name does not shift them.  Frames: ``cid`` with ``line``.
"""

from __future__ import annotations

from cidbridge.core.formats.base import LineDecoder, text
from cidbridge.core.formats.callerid_com import NUMBER_ABSENCES
from cidbridge.core.frames import CidFrame, Frame

FORMAT = "tci"


def is_record(line: str) -> bool:
    """The shape test: long enough, a digit first, ``/`` at 9, ``M`` at 24."""
    return len(line) > 30 and line[0] in "0123456789" and line[9] == "/" and line[24] == "M"


def _int(value: str) -> int | None:
    value = value.strip()
    # isascii: str.isdigit() is also true for "¹" and other digits int() refuses.
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 2 else None


class TciDecoder(LineDecoder):
    """Line decoder for TCI records.  See the module doc."""

    format = FORMAT

    def line(self, raw: bytes, out: list[Frame]) -> None:
        line = text(raw)
        if not is_record(line):
            if line.strip():
                self.stats.skipped += len(raw)
            return
        month, _, day_text = line[7:12].partition("/")
        month_n, day_n = _int(month), _int(day_text)
        if month_n is None or day_n is None or not (1 <= month_n <= 12 and 1 <= day_n <= 31):
            month_n = day_n = None
        hour = minute = None
        clock, _, meridiem = line[17:25].strip().partition(" ")
        hh, _, mm = clock.partition(":")
        h, m = _int(hh), _int(mm)
        if h is not None and m is not None and 1 <= h <= 12 and m <= 59 and meridiem in ("AM", "PM"):
            hour, minute = h % 12 + (12 if meridiem == "PM" else 0), m
        number: str | None = line[29:44].strip() or None
        absence = NUMBER_ABSENCES.get(number.upper()) if number else None
        if absence is not None:
            number = None
        name = line[55:70].strip() or None
        if number is None and absence is None and name is None:
            self.stats.skipped += len(raw)  # the shape of a record, nothing in it: not a call
            return
        self.stats.frames += 1
        out.append(
            CidFrame(FORMAT, number, absence, name, None, month_n, day_n, hour, minute, line[0:2].strip())
        )


def encode_record(
    number: str | None,
    name: str | None = None,
    *,
    line: int = 1,
    month: int = 1,
    day: int = 1,
    hour: int = 0,
    minute: int = 0,
    absence: str | None = None,
) -> bytes:
    """One 70-column TCI line (CR LF terminated)."""
    if number is None:
        number = "PRIVATE" if absence == "private" else "OUT-OF-AREA"
    clock = f"{(hour % 12) or 12}:{minute:02d} {'PM' if hour >= 12 else 'AM'}"
    record = f"{line:02d}     {month:>2}/{day:02d}{'':5}{clock:>8}{'':4}{number:>15}{'':11}{name or '':<15}"
    return record.encode() + b"\r\n"
