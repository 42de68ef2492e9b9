"""``jclip``: Japanese NTT "Number Display" (J-CLIP) frames, CRC verified.

Layout (docs/formats.md, vectors §7.4), 7-bit characters with even parity
in bit 7::

    DLE SOH 07 DLE STX 40 LEN  param len value ...  DLE ETX  CRC-lo CRC-hi
    90  81  87 90  82  C0 ...                        90  03

A DLE inside the body is doubled.  The CRC is CRC-16/KERMIT (reflected 0x1021,
init 0, no final xor) over every transmitted byte from the header (07) through
ETX, parity bits included, sent low byte first: run over header…CRC it leaves 0.
Input whose parity bits a device already stripped is accepted too (the CRC is then
checked over the bytes with their parity restored).

Parameters: 0x02 number, 0x04 reason for absence (``P`` private, ``O`` unavailable,
``C`` payphone, ``S`` service conflict), 0x09 dialled number, 0x01 date/time,
0x07 name, 0x08 name absence; 0x21/0x22 (number extensions) are ignored.  A frame
whose CRC, parity or length does not check is ``invalid`` (``crc``, ``parity``,
``length``, ``param``).
"""

from __future__ import annotations

import re

from cidbridge.core.formats.base import Decoder
from cidbridge.core.formats.fsk import parse_datetime, split_params, value_or_absence
from cidbridge.core.frames import ABSENCE_CODES, CidFrame, Frame, InvalidFrame

FORMAT = "jclip"

DLE, SOH, STX, ETX = 0x10, 0x01, 0x02, 0x03
#: Most transmitted bytes from DLE SOH to the last CRC byte (a 127-byte body, all DLEs).
MAX_FRAME = 8 + 2 * 127 + 4
_START = re.compile(rb"[\x10\x90][\x01\x81]")


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()
#: Each 7-bit value with its even-parity bit set as NTT sends it.
WITH_PARITY = bytes(v | (0x80 if bin(v).count("1") % 2 else 0) for v in range(128)) * 2


def crc16_kermit(data: bytes, crc: int = 0) -> int:
    """CRC-16/KERMIT of ``data`` (check value of ``b"123456789"`` is 0x2189)."""
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def _even(byte: int) -> bool:
    return WITH_PARITY[byte & 0x7F] == byte


class JclipDecoder(Decoder):
    """Incremental J-CLIP frame decoder.  See the module doc."""

    format = FORMAT

    def __init__(self) -> None:
        super().__init__()
        self._buf = b""

    def feed(self, data: bytes, now: float) -> list[Frame]:
        self.stats.bytes_in += len(data)
        out: list[Frame] = []
        self._scan(self._buf + data if self._buf else data, out, final=False)
        return out

    def flush(self, now: float) -> list[Frame]:
        out: list[Frame] = []
        self._scan(self._buf, out, final=True)
        self._buf = b""
        return out

    def _scan(self, buf: bytes, out: list[Frame], final: bool) -> None:
        pos = 0
        while True:
            match = _START.search(buf, pos)
            if match is None:
                keep = len(buf) - 1 if buf[-1:] in (b"\x10", b"\x90") else len(buf)
                self.stats.skipped += max(0, keep - pos)
                self._buf = buf[keep:] if keep > pos else buf[pos:]
                return
            self.stats.skipped += match.start() - pos
            start = match.start()
            end = _frame_end(buf, start)
            if end is None:  # the bytes after DLE SOH are not a J-CLIP header
                self.stats.skipped += 1
                pos = start + 1
                continue
            if end < 0:
                if final or len(buf) - start > MAX_FRAME:
                    self._invalid("length", buf[start : start + MAX_FRAME], out)
                    pos = start + 2
                    continue
                self._buf = buf[start:]
                return
            self._frame(buf[start:end], out)
            pos = end

    def _frame(self, raw: bytes, out: list[Frame]) -> None:
        # The two CRC bytes are 8-bit values, not characters: no parity on them.
        chars = raw[:-2]
        if any(b & 0x80 for b in chars):
            if not all(_even(b) for b in chars):
                self._invalid("parity", raw, out)
                return
            checked = raw[2:]
        else:
            checked = chars[2:].translate(WITH_PARITY) + raw[-2:]  # a device stripped parity
        if crc16_kermit(checked):
            self._invalid("crc", raw, out)
            return
        plain = raw.translate(bytes(range(128)) * 2)
        body = plain[7:-4].replace(b"\x10\x10", b"\x10")
        if len(body) != plain[6]:
            self._invalid("length", raw, out)
            return
        params = split_params(body, 0, len(body))
        if params is None:
            self._invalid("param", raw, out)
            return
        number = name = None
        number_absence = name_absence = None
        month = day = hour = minute = None
        extra = []
        for param, value in params:
            if param == 0x02 and number is None:
                number = value
            elif param == 0x04 and value:
                number_absence = ABSENCE_CODES.get(chr(value[0]))
            elif param == 0x07 and name is None:
                name = value
            elif param == 0x08 and value:
                name_absence = ABSENCE_CODES.get(chr(value[0]))
            elif param == 0x01:
                month, day, hour, minute = parse_datetime(value)
            elif param == 0x09:
                extra.append(("called_number", value.decode("latin-1").strip()))
        number_text, absence = value_or_absence(number)
        name_text, name_abs = value_or_absence(name)
        self.stats.frames += 1
        out.append(
            CidFrame(
                FORMAT,
                number_text,
                number_absence or absence,
                name_text,
                name_absence or name_abs,
                month,
                day,
                hour,
                minute,
                None,
                tuple(extra),
            )
        )

    def _invalid(self, reason: str, raw: bytes, out: list[Frame]) -> None:
        self.stats.frames += 1
        self.stats.invalid += 1
        out.append(InvalidFrame(FORMAT, reason, raw))


def _frame_end(buf: bytes, start: int) -> int | None:
    """End of the frame whose DLE SOH is at ``start``: -1 if incomplete, None if not a frame."""
    n = len(buf)
    if start + 7 > n:
        header = zip(buf[start + 2 :], (0x07, DLE, STX), strict=False)
        return -1 if all(b & 0x7F == c for b, c in header) else None
    if buf[start + 2] & 0x7F != 0x07 or buf[start + 3] & 0x7F != DLE or buf[start + 4] & 0x7F != STX:
        return None
    i = start + 7
    while i + 1 < n:
        if buf[i] & 0x7F == DLE:
            following = buf[i + 1] & 0x7F
            if following == ETX:
                return i + 4 if i + 4 <= n else -1
            if following != DLE:
                return i + 2  # a DLE that is neither stuffing nor ETX: the frame ends broken
            i += 2
        else:
            i += 1
    return -1


def encode_frame(
    number: str | None = None,
    *,
    absence: str | None = None,
    dialled: str | None = None,
    parity: bool = True,
) -> bytes:
    """A J-CLIP frame for a number (or an absence reason), with its parity bits and CRC."""
    codes = {v: k for k, v in ABSENCE_CODES.items() if k != "A"}
    body = b""
    if number is not None:
        body += bytes((0x02, len(number))) + number.encode()
    else:
        body += bytes((0x04, 1)) + codes.get(absence or "", "O").encode()
    if dialled is not None:
        body += bytes((0x09, len(dialled))) + dialled.encode()
    plain = bytes((DLE, SOH, 0x07, DLE, STX, 0x40, len(body))) + body.replace(b"\x10", b"\x10\x10")
    plain += bytes((DLE, ETX))
    sent = plain.translate(WITH_PARITY) if parity else plain
    crc = crc16_kermit(plain[2:].translate(WITH_PARITY))
    return sent + bytes((crc & 0xFF, crc >> 8))
