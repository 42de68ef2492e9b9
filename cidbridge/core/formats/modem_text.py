"""``modem-text``: a modem's formatted caller-ID output (``AT+VCID=1`` / ``AT#CID=1``).

The modem prints text lines: ``RING`` once per ring burst, and between rings (US)
or before the first ring (UK, Korea) a block of ``KEY = value`` lines::

    RING

    DATE = 0321
    TIME = 1405
    NMBR = 5045551234
    NAME = A N OTHER

    RING

What this decoder accepts (research/formats.md §4.2):

* ``KEY = value`` and ``KEY=value``; keys ``DATE``, ``TIME``, ``NMBR`` / ``DDN_NMBR`` /
  ``DDN`` / ``NBR``, ``NAME``, ``MESG`` in any order, any of them missing or empty.
* ``O`` / ``P`` values as absences; anything else is passed through as delivered.
* ``RING``, ``RING A`` / ``RING 1`` (distinctive ring), ``CID RING``, ``<DLE>R``.
* DLE-shielded codes and blanks before a key, AT echoes and result codes between
  lines, and any non-UTF-8 byte.

Keys are matched at the start of a line and RING as a whole line, never as a
substring, so ``NAME = FRED SEBRING`` is a name and ``NAME = A=B`` keeps its ``=``.

A block becomes one ``cid`` frame as soon as it holds DATE, TIME, a number and a
name; otherwise it is emitted at the next RING, at a blank line once it holds a
number, when one of its keys repeats (the next caller's block has begun), after
:attr:`ModemTextDecoder.silence` seconds without a line, or at end of input.  A
block with neither a number nor a name (DATE and TIME alone) is not a call and is
dropped.
"""

from __future__ import annotations

from typing import Any

from cidbridge.core.formats.base import Decoder, LineSplitter
from cidbridge.core.frames import ABSENCE_CODES, CidFrame, Frame, RingFrame

FORMAT = "modem-text"

DLE = 0x10

# Which field a key sets.  All number spellings share one field.
_KEYS: dict[bytes, str] = {
    b"DATE": "date",
    b"TIME": "time",
    b"NMBR": "number",
    b"DDN_NMBR": "number",
    b"DDN": "number",
    b"NBR": "number",
    b"NAME": "name",
    b"MESG": "mesg",
    b"DATE TIME": "datetime",
}
# First four bytes of every line worth a closer look; everything else is skipped
# with one dictionary probe (AT echoes, OK, CONNECT, noise).
_HEADS: dict[bytes, str] = {key[:4]: "key" for key in _KEYS}
_HEADS[b"RING"] = "ring"
_HEADS[b"CID "] = "cidring"
_HEADS[b"END "] = "end"
_COMPLETE = frozenset({"date", "time", "number", "name"})


def _text(raw: bytes) -> str:
    """Decode device text: UTF-8 where valid, else Latin-1 (which never fails)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _two(raw: bytes, lo: int, hi: int) -> int | None:
    if len(raw) != 2 or not raw.isdigit():
        return None
    value = int(raw)
    return value if lo <= value <= hi else None


def parse_mmdd(raw: bytes) -> tuple[int | None, int | None]:
    """``MMDD`` → (month, day); anything malformed gives (None, None)."""
    if len(raw) != 4:
        return None, None
    month, day = _two(raw[:2], 1, 12), _two(raw[2:], 1, 31)
    if month is None or day is None:
        return None, None
    return month, day


def parse_hhmm(raw: bytes) -> tuple[int | None, int | None]:
    """``HHMM`` (24 h) → (hour, minute); anything malformed gives (None, None)."""
    if len(raw) != 4:
        return None, None
    hour, minute = _two(raw[:2], 0, 23), _two(raw[2:], 0, 59)
    if hour is None or minute is None:
        return None, None
    return hour, minute


def _strip_junk(line: bytes) -> bytes:
    """Drop what some modems put before a key: blanks, DLE-shielded codes, stray bytes."""
    i, n = 0, len(line)
    while i < n:
        byte = line[i]
        if byte == DLE:
            i += 2
        elif byte <= 0x20 or byte >= 0x7F:
            i += 1
        else:
            break
    return line[i:]


class ModemTextDecoder(Decoder):
    """Incremental decoder for modem formatted caller-ID text.  See the module doc."""

    format = FORMAT

    def __init__(self, silence: float = 1.0) -> None:
        super().__init__()
        #: Seconds without a new line after which a pending block is emitted.
        self.silence = silence
        self._lines = LineSplitter(self.stats)
        self._block: dict[str, Any] = {}
        self._last_line_at = 0.0

    # -- the interface ---------------------------------------------------------

    def feed(self, data: bytes, now: float) -> list[Frame]:
        self.stats.bytes_in += len(data)
        out: list[Frame] = []
        if self._block and now - self._last_line_at >= self.silence:
            self._emit(out)
        lines = self._lines.split(data)
        if lines:
            self._last_line_at = now
            self._lines_in(lines, out)
        return out

    def timeout(self, now: float) -> list[Frame]:
        out: list[Frame] = []
        if self._block and now - self._last_line_at >= self.silence:
            self._emit(out)
        return out

    def flush(self, now: float) -> list[Frame]:
        out: list[Frame] = []
        tail = self._lines.take_tail()
        if tail:
            self._lines_in([tail], out)
        self._emit(out)
        return out

    @property
    def deadline(self) -> float | None:
        return self._last_line_at + self.silence if self._block else None

    # -- lines -----------------------------------------------------------------

    def _lines_in(self, lines: list[bytes], out: list[Frame]) -> None:
        heads = _HEADS
        for line in lines:
            if not line:
                if "number" in self._block:
                    self._emit(out)
                continue
            kind = heads.get(line[:4])
            if kind is None:
                if not 0x41 <= line[0] <= 0x5A:
                    if b"\x10R" in line:
                        self._ring(out, None)
                    line = _strip_junk(line)
                    kind = heads.get(line[:4])
                if kind is None:
                    if line.strip():
                        self.stats.skipped += len(line)
                    elif "number" in self._block:
                        self._emit(out)
                    continue
            if kind == "key":
                self._key_line(line, out)
            elif kind == "ring":
                self._ring_line(line, out)
            elif kind == "cidring":
                if line.rstrip() == b"CID RING":
                    self._ring(out, None)
            elif line.rstrip() == b"END MSG":
                self._emit(out)

    def _ring_line(self, line: bytes, out: list[Frame]) -> None:
        rest = line[4:].strip()
        if not rest:
            self._ring(out, None)
        elif line[4:5] in (b" ", b";", b"\t"):
            # RING A / RING 1: a distinctive-ring tag; RING 1234 or RING;from;to: the
            # ring itself (the number in such lines is not a caller-ID block).
            self._ring(out, _text(rest) if len(rest) == 1 else None)
        else:
            self.stats.skipped += len(line)  # RINGING, RINGBACK, …: not a ring

    def _ring(self, out: list[Frame], tag: str | None) -> None:
        self._emit(out)
        self.stats.frames += 1
        out.append(RingFrame(FORMAT, None, tag))

    def _key_line(self, line: bytes, out: list[Frame]) -> None:
        eq = line.find(b"=")
        if eq < 0:
            self.stats.skipped += len(line)
            return
        field = _KEYS.get(line[:eq].rstrip())
        if field is None:
            self.stats.skipped += len(line)
            return
        value = line[eq + 1 :].strip()
        block = self._block
        if field == "mesg":
            block.setdefault("mesg", []).append(value)
            return
        if field in block or (field == "datetime" and "date" in block):
            # The same key again: the next caller's block has begun.
            self._emit(out)
            block = self._block
        if field == "datetime":
            self._datetime(value)
            field = "date"
        else:
            block[field] = value
        if block.keys() >= _COMPLETE:
            self._emit(out)

    def _datetime(self, value: bytes) -> None:
        # Kortex / France Telecom: DATE TIME=MM/DD HH:MM
        date, _, time = value.partition(b" ")
        self._block["date"] = date.replace(b"/", b"")
        self._block["time"] = time.replace(b":", b"")

    # -- emitting ----------------------------------------------------------------

    def _emit(self, out: list[Frame]) -> None:
        block = self._block
        if not block:
            return
        self._block = {}
        number = block.get("number")
        name = block.get("name")
        if number is None and name is None:
            # DATE/TIME (and MESG) alone do not make a call.
            self.stats.skipped += 1
            return
        number_text, number_absence = self._value(number)
        name_text, name_absence = self._value(name)
        month, day = parse_mmdd(block["date"]) if "date" in block else (None, None)
        hour, minute = parse_hhmm(block["time"]) if "time" in block else (None, None)
        extra: tuple[tuple[str, Any], ...] = ()
        if "mesg" in block:
            extra = (("mesg", [_text(m) for m in block["mesg"]]),)
        self.stats.frames += 1
        out.append(
            CidFrame(
                FORMAT,
                number_text,
                number_absence,
                name_text,
                name_absence,
                month,
                day,
                hour,
                minute,
                None,
                extra,
            )
        )

    @staticmethod
    def _value(raw: bytes | None) -> tuple[str | None, str | None]:
        if not raw:
            return None, None
        if len(raw) == 1:
            absence = ABSENCE_CODES.get(chr(raw[0]))
            if absence is not None:
                return None, absence
        return _text(raw), None


def encode_block(
    number: str | None = None,
    name: str | None = None,
    *,
    month: int | None = None,
    day: int | None = None,
    hour: int | None = None,
    minute: int | None = None,
    number_absence: str | None = None,
    name_absence: str | None = None,
    spaces: bool = True,
    eol: bytes = b"\r\n",
) -> bytes:
    """Encode one caller-ID block the way a modem prints it (used by tests and the simulator)."""
    sep = b" = " if spaces else b"="
    codes = {v: k for k, v in ABSENCE_CODES.items() if k != "A"}
    out = []
    if month is not None and day is not None:
        out.append(b"DATE" + sep + b"%02d%02d" % (month, day))
    if hour is not None and minute is not None:
        out.append(b"TIME" + sep + b"%02d%02d" % (hour, minute))
    if number is not None:
        out.append(b"NMBR" + sep + number.encode())
    elif number_absence is not None:
        out.append(b"NMBR" + sep + codes[number_absence].encode())
    if name is not None:
        out.append(b"NAME" + sep + name.encode())
    elif name_absence is not None:
        out.append(b"NAME" + sep + codes[name_absence].encode())
    return b"".join(line + eol for line in out)
