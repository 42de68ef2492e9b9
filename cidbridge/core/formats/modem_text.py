"""``modem-text``: what a modem prints: RINGs and caller-ID blocks (``AT+VCID=1``), or hex.

The modem prints text lines: ``RING`` once per ring burst, and between rings (US)
or before the first ring (UK, Korea) a block of ``KEY = value`` lines::

    RING

    DATE = 0321
    TIME = 1405
    NMBR = 5045551234
    NAME = A N OTHER

    RING

What this decoder accepts (docs/formats.md):

* ``KEY = value`` and ``KEY=value``; keys ``DATE``, ``TIME``, ``NMBR`` / ``DDN_NMBR`` /
  ``DDN`` / ``NBR``, ``NAME``, ``MESG`` in any order, any of them missing or empty;
  Kortex's ``DATE TIME=MM/DD HH:MM``; ZyXEL's ``CALLER NUMBER:`` / ``CALLER NAME:``.
* ``O`` / ``P`` values as absences; anything else is passed through as delivered.
* ``MESG = <hex>`` decoded as MDMF parameters: Bell Canada's number in parameter 3
  becomes the number when no NMBR came, BT's call type (0x11), the call qualifier
  (0x06), message waiting (0x0B, 0x13, or an SDMF ``BBB``/``ooo``) as an ``mwi`` frame.
* ``RING``, ``RING A`` / ``RING 1`` (distinctive ring), ``CID RING``, ``RING;from;to``;
  DLE-shielded codes ``<DLE>R`` (ring), ``<DLE>H`` / ``<DLE>h`` (handset off / on hook).
* Hex lines (``AT+VCID=2``, or a modem switched to it mid-stream), upper or lower
  case, wrapped or not: decoded by the FSK layer into ``xdmf`` frames (checked).
* AT echoes, result codes and anything else between lines; any non-UTF-8 byte.

Keys are matched at the start of a line and RING as a whole line, never as a
substring, so ``NAME = FRED SEBRING`` is a name and ``NAME = A=B`` keeps its ``=``.

A block becomes one ``cid`` frame as soon as it holds DATE, TIME, a number and a
name; otherwise it is emitted at the next RING, at a blank line once it holds a
number, when one of its keys repeats (the next caller's block has begun), after
:attr:`ModemTextDecoder.silence` seconds without a line, or at end of input.  A
block with neither a number nor a name (DATE and TIME alone) is not a call.

Speed: the common IS-101 block (DATE, TIME, number, NAME in that order) is taken by
one regular-expression match; everything else goes line by line.  Both paths give
the same frames (the any-chunking property tests check it: one-byte reads never
see a whole block).
"""

from __future__ import annotations

import re
from typing import Any

from cidbridge.core.formats import fsk
from cidbridge.core.formats.base import MAX_LINE, Decoder, LineBuffer, text
from cidbridge.core.formats.fsk import value_or_absence
from cidbridge.core.formats.xdmf import HexAssembler
from cidbridge.core.frames import ABSENCE_CODES, CidFrame, Frame, HookFrame, MwiFrame, RingFrame

FORMAT = "modem-text"

DLE = 0x10
#: DLE-shielded codes (IS-101 voice mode) this decoder turns into frames.
_DLE_RING = ord("R")
_DLE_OFF_HOOK = ord("H")
_DLE_ON_HOOK = ord("h")

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
    b"CALLER NUMBER": "number",
    b"CALLER'S NUMBER": "number",
    b"CALLER NAME": "name",
    b"REASON FOR NO CALLER NUMBER": "number",
    b"REASON FOR NO CALLER NAME": "name",
}
# First four bytes of every line worth a closer look; everything else is skipped
# with one dictionary probe (AT echoes, OK, CONNECT, noise).
_HEADS: dict[bytes, str] = {key[:4]: "key" for key in _KEYS if len(key) >= 4}
_HEADS.update({key + end: "key" for key in _KEYS if len(key) == 3 for end in (b" ", b"=", b"\t", b":")})
_HEADS[b"RING"] = "ring"
_HEADS[b"CID "] = "cidring"
_HEADS[b"END "] = "end"
_HEADS[b"DRON"] = "cadence"
_HEADS[b"DROF"] = "cadence"
#: Most MESG lines one block keeps (real blocks have one or two).
MAX_MESG = 8
_COMPLETE = frozenset({"date", "time", "number", "name"})
_HEX_START = frozenset(b"0123456789abcdefABCDEF")

_EOL = rb"(?>\r\n|\r|\n)"  # atomic: a CR LF is one line end, never CR then LF
_DATE_TIME = rb"DATE[ \t]*=[ \t]*(\d\d)(\d\d)[ \t]*" + _EOL + rb"TIME[ \t]*=[ \t]*(\d\d)(\d\d)[ \t]*" + _EOL
# Values are capped well under MAX_LINE so the fast path never takes a line the line
# path would drop; the line path's value rules (strip, O/P) are applied to them.
_NUMBER = rb"(?:NMBR|DDN_NMBR|DDN|NBR)[ \t]*=([^\r\n]{0,128})" + _EOL
# One token per match, dispatched on ``lastindex``:
#   6     a whole standard block, DATE TIME number NAME (groups 1-6);
#   11    DATE TIME number and a blank line: a block without a name (groups 7-11);
#   None  a bare RING line;
#   12    any other line (empty for a blank line).
# Blank lines after a RING or a whole block are swallowed with it: there the block is
# empty, so for the line path they would change nothing.
_TOKEN = re.compile(
    _DATE_TIME + _NUMBER + rb"NAME[ \t]*=([^\r\n]{0,128})" + _EOL + rb"(?:\r\n|\r|\n)*"
    rb"|" + _DATE_TIME + _NUMBER + _EOL + rb"(?:\r\n|\r|\n)*"
    rb"|RING" + _EOL + rb"(?:\r\n|\r|\n)*"
    rb"|([^\r\n]*)" + _EOL
)
#: Frames are immutable values, so every plain ring can be the same object.
_PLAIN_RING = RingFrame(FORMAT, None, None)
_new_record = tuple.__new__


def parse_mmdd(raw: bytes) -> tuple[int | None, int | None]:
    """``MMDD`` → (month, day); anything malformed gives (None, None)."""
    month = fsk.two_digits(raw, 0, 1, 12) if len(raw) == 4 else None
    day = fsk.two_digits(raw, 2, 1, 31) if month is not None else None
    return (month, day) if day is not None else (None, None)


def parse_hhmm(raw: bytes) -> tuple[int | None, int | None]:
    """``HHMM`` (24 h) → (hour, minute); anything malformed gives (None, None)."""
    hour = fsk.two_digits(raw, 0, 0, 23) if len(raw) == 4 else None
    minute = fsk.two_digits(raw, 2, 0, 59) if hour is not None else None
    return (hour, minute) if minute is not None else (None, None)


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
    """Incremental decoder for a modem's caller-ID output.  See the module doc."""

    format = FORMAT

    def __init__(self, silence: float = 1.0) -> None:
        super().__init__()
        #: Seconds without a new line after which a pending block is emitted.
        self.silence = silence
        self._lines = LineBuffer(self.stats)
        self._hex = HexAssembler(self.stats, "xdmf")
        self._block: dict[str, Any] = {}
        self._last_line_at = 0.0

    # -- the interface ---------------------------------------------------------

    def feed(self, data: bytes, now: float) -> list[Frame]:
        self.stats.bytes_in += len(data)
        out: list[Frame] = []
        if self._block and now - self._last_line_at >= self.silence:
            self._emit(out)
        region = self._lines.take(data)
        if region:
            self._last_line_at = now
            self._region(region, out)
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
            self._line(tail, out)
        self._hex.interrupt(out)
        self._emit(out)
        return out

    @property
    def deadline(self) -> float | None:
        return self._last_line_at + self.silence if self._block else None

    # -- lines -----------------------------------------------------------------

    def _region(self, region: bytes, out: list[Frame]) -> None:
        hexer = self._hex
        append = out.append
        found = 0
        for match in _TOKEN.finditer(region):
            last = match.lastindex
            if last == 12:
                self._line(match.group(12), out)
            elif last is None:  # a bare RING line
                if hexer._hex:
                    hexer.interrupt(out)
                if self._block:
                    self._emit(out)
                found += 1
                append(_PLAIN_RING)
            elif self._block or hexer._hex:
                # Something is pending: the lines must be taken one by one.
                for line in match.group(0).splitlines():
                    self._line(line, out)
            else:
                # A block complete on its own: the line path would emit exactly this
                # frame at its NAME line (or at the blank line after the number).
                g = match.groups()
                if last == 6:
                    number, number_absence = value_or_absence(g[4].strip())
                    name, name_absence = value_or_absence(g[5].strip())
                else:
                    g = g[6:]
                    number, number_absence = value_or_absence(g[4].strip())
                    name = name_absence = None
                month, day = _pair(g[0], g[1], 12, 31, 1)
                hour, minute = _pair(g[2], g[3], 23, 59, 0)
                found += 1
                append(
                    _new_record(
                        CidFrame,
                        (
                            FORMAT,
                            number,
                            number_absence,
                            name,
                            name_absence,
                            month,
                            day,
                            hour,
                            minute,
                            None,
                            (),
                        ),
                    )
                )
        self.stats.frames += found

    def _line(self, line: bytes, out: list[Frame]) -> None:
        if not line:
            if "number" in self._block:
                self._emit(out)
            return
        if len(line) > MAX_LINE:
            self.stats.skipped += len(line)
            self.stats.overflows += 1
            return
        kind = _HEADS.get(line[:4])
        if kind is None:
            if line[0] in _HEX_START and self._hex.line(line, out):
                return
            if DLE in line:
                self._dle_codes(line, out)
            line = _strip_junk(line)
            kind = _HEADS.get(line[:4])
            if kind is None:
                if not line.strip():  # a blank line, give or take control bytes
                    if "number" in self._block:
                        self._emit(out)
                    return
                self._hex.interrupt(out)
                self.stats.skipped += len(line)
                return
        self._hex.interrupt(out)
        if kind == "key":
            self._key_line(line, out)
        elif kind == "ring":
            self._ring_line(line, out)
        elif kind == "cidring":
            if line.rstrip() == b"CID RING":
                self._ring(out, None)
            else:
                self.stats.skipped += len(line)
        elif kind == "end":
            if line.rstrip() == b"END MSG":
                self._emit(out)
            else:
                self.stats.skipped += len(line)
        # "cadence": Lucent's DRON=/DROF= lines describe the ring already reported.

    def _dle_codes(self, line: bytes, out: list[Frame]) -> None:
        i = line.find(DLE)
        while 0 <= i < len(line) - 1:
            code = line[i + 1]
            if code == _DLE_RING:
                self._ring(out, None)
            elif code in (_DLE_OFF_HOOK, _DLE_ON_HOOK):
                self.stats.frames += 1
                out.append(HookFrame(FORMAT, "off" if code == _DLE_OFF_HOOK else "on"))
            i = line.find(DLE, i + 2)

    def _ring_line(self, line: bytes, out: list[Frame]) -> None:
        rest = line[4:].strip()
        if not rest:
            self._ring(out, None)
        elif line[4:5] in (b" ", b";", b"\t"):
            # RING A / RING 1: a distinctive-ring tag; RING 1234 or RING;from;to: the
            # ring itself (the number in such lines is not a caller-ID block).
            self._ring(out, text(rest) if len(rest) == 1 else None)
        else:
            self.stats.skipped += len(line)  # RINGING, RINGBACK, …: not a ring

    def _ring(self, out: list[Frame], tag: str | None) -> None:
        self._emit(out)
        self.stats.frames += 1
        out.append(RingFrame(FORMAT, None, tag))

    def _key_line(self, line: bytes, out: list[Frame]) -> None:
        sep = line.find(b"=")
        if sep < 0:
            sep = line.find(b":")
        field = _KEYS.get(line[:sep].rstrip()) if sep > 0 else None
        if field is None:
            if line.rstrip() == b"CALLING MSG":  # Kortex: a new block begins
                self._emit(out)
            else:
                self.stats.skipped += len(line)
            return
        value = line[sep + 1 :].strip()
        block = self._block
        if field == "mesg":
            mesg = block.setdefault("mesg", [])
            if len(mesg) < MAX_MESG:
                mesg.append(value)
            else:  # a block is a handful of lines: endless MESG lines are noise
                self.stats.overflows += 1
                self.stats.skipped += len(line)
            return
        if field in block or (field == "datetime" and "date" in block):
            # The same key again: the next caller's block has begun.
            self._emit(out)
            block = self._block
        if field == "datetime":
            # Kortex / France Telecom: DATE TIME=MM/DD HH:MM
            date, _, time = value.partition(b" ")
            block["date"] = date.replace(b"/", b"")
            block["time"] = time.replace(b":", b"")
        else:
            block[field] = value
        if block.keys() >= _COMPLETE:
            self._emit(out)

    # -- emitting ----------------------------------------------------------------

    def _emit(self, out: list[Frame]) -> None:
        block = self._block
        if not block:
            return
        self._block = {}
        number = block.get("number")
        name = block.get("name")
        extra: list[tuple[str, Any]] = []
        if "mesg" in block:
            number = self._mesg(block["mesg"], number, extra, out)
        if number is None and name is None:
            # DATE/TIME (and MESG) alone do not make a call.
            self.stats.skipped += 1
            return
        number_text, number_absence = value_or_absence(number)
        name_text, name_absence = value_or_absence(name)
        month, day = parse_mmdd(block["date"]) if "date" in block else (None, None)
        hour, minute = parse_hhmm(block["time"]) if "time" in block else (None, None)
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
                tuple(extra),
            )
        )

    def _mesg(
        self, values: list[bytes], number: bytes | None, extra: list[tuple[str, Any]], out: list[Frame]
    ):
        """Decode MESG lines into ``extra`` (and an ``mwi`` frame); return the number,
        Bell Canada's parameter 3 if the block had none."""
        extra.append(("mesg", [text(v) for v in values]))
        ddn, more, active, count = fsk.mesg_fields(values)
        extra.extend(more)
        if active is not None:
            self.stats.frames += 1
            out.append(MwiFrame(FORMAT, active, count))
        return number if number is not None else ddn


def _pair(a: bytes, b: bytes, hi_a: int, hi_b: int, lo_b: int) -> tuple[int | None, int | None]:
    """Two 2-digit groups from the fast path (month/day or hour/minute), range-checked."""
    x, y = int(a), int(b)
    if lo_b == 1:  # month 1-12, day 1-31
        return (x, y) if 1 <= x <= hi_a and 1 <= y <= hi_b else (None, None)
    return (x, y) if x <= hi_a and y <= hi_b else (None, None)


# -- encoders (tests, simulator, benchmark) ---------------------------------------

_CODES = {v: k for k, v in ABSENCE_CODES.items() if k != "A"}


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
    number_key: str = "NMBR",
    mesg: list[str] | None = None,
) -> bytes:
    """Encode one caller-ID block the way a modem prints it (used by tests and the simulator)."""
    sep = b" = " if spaces else b"="
    out = [b"MESG" + sep + m.encode() for m in mesg or ()]
    if month is not None and day is not None:
        out.append(b"DATE" + sep + b"%02d%02d" % (month, day))
    if hour is not None and minute is not None:
        out.append(b"TIME" + sep + b"%02d%02d" % (hour, minute))
    if number is not None:
        out.append(number_key.encode() + sep + number.encode())
    elif number_absence is not None:
        out.append(number_key.encode() + sep + _CODES[number_absence].encode())
    if name is not None:
        out.append(b"NAME" + sep + name.encode())
    elif name_absence is not None:
        out.append(b"NAME" + sep + _CODES[name_absence].encode())
    return b"".join(line + eol for line in out)
