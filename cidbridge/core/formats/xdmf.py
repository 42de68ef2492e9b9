"""``xdmf``: SDMF/MDMF messages as raw bytes (FSK decoder modules) or as a modem's hex lines.

Two inputs, one format (docs/formats.md):

* **Binary**, from FSK decoder modules (Holtek HT9032D, CTI Comet): noise, a channel
  seizure of ``0x55`` bytes ("U"), sometimes one random byte, the message, more
  noise.  A message is looked for after a run of at least :data:`MIN_SEIZURE` U's
  (at the byte right after it, or the one after that), at the very start of the
  stream, and right after a previous message (back-to-back messages, a file of
  vectors).  Anything else is noise, skipped and counted.
* **Hex lines**, from a modem in ``AT+VCID=2`` / ``AT#CID=2`` mode: the message as
  ASCII hex, upper or lower case, possibly wrapped over several lines.  Lines that
  are not hex (``RING``, result codes) are skipped; a modem-text decoder handles
  those and hands its hex lines to the same :class:`HexAssembler`.

Every message is cut by its length byte and its checksum verified; a bad one is an
``invalid`` frame (reason ``checksum``, ``length`` or ``param``), never a call.  The
decoder settles on binary or hex with the first message it finds and then reads
only that way, so noise in a binary stream cannot pass for hex lines.
"""

from __future__ import annotations

import re

from cidbridge.core.formats.base import MAX_BUFFER, MAX_LINE, Decoder, LineBuffer
from cidbridge.core.formats.fsk import MESSAGE_TYPES, decode_message, mdmf_call
from cidbridge.core.frames import Frame, InvalidFrame

FORMAT = "xdmf"

#: Fewest 0x55 bytes that count as a channel seizure (China sends ``55 55 AA AA 55 55 55``).
MIN_SEIZURE = 3
# Spelled "UUU+" rather than "U{3,}": the literal prefix makes the search 2.5× faster.
_SEIZURE = re.compile(b"U" * MIN_SEIZURE + b"+")
#: Bytes that may sit between the seizure and the message: mark idle decoded as 0xFF.
_MARK = 0xFF

_TYPE_BYTES = frozenset(bytes((t,)) for t in MESSAGE_TYPES)
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_HEX_TYPES = frozenset({b"04", b"06", b"80", b"82"})


class HexAssembler:
    """Joins a modem's hex lines into whole messages (a message may wrap over lines).

    Feed it every line with :meth:`line`; it says whether the line was hex it used.
    A message completes when the hex holds ``length + 3`` bytes; a line that ends
    past that, or a non-hex line while a message still wants bytes, makes the message
    ``invalid`` (``length``).
    """

    __slots__ = ("_fmt", "_hex", "stats")

    def __init__(self, stats, fmt: str = FORMAT) -> None:
        self._hex = b""
        self._fmt = fmt
        self.stats = stats

    @property
    def pending(self) -> bool:
        """True while a wrapped message waits for its next line."""
        return bool(self._hex)

    def line(self, raw: bytes, out: list[Frame]) -> bool:
        """Use ``raw`` if it is hex; return False (and leave it alone) if it is not."""
        digits = raw.replace(b" ", b"").strip()
        if not digits or digits.translate(None, _HEX_DIGITS):
            self.interrupt(out)
            return False
        if not self._hex:
            if len(digits) < 4 or digits[:2] not in _HEX_TYPES:
                return False
            self._hex = digits
        else:
            self._hex += digits
        hexed = self._hex
        need = (int(hexed[2:4], 16) + 3) * 2
        if len(hexed) < need:
            if len(hexed) > 2 * 258:  # cannot happen with a one-byte length; belt and braces
                self.interrupt(out)
            return True
        self._hex = b""
        if len(hexed) > need or len(hexed) % 2:
            self._invalid(hexed, out)
        else:
            frame = decode_message(bytes.fromhex(hexed.decode()), self._fmt)
            self.stats.frames += 1
            if frame.kind == "invalid":
                self.stats.invalid += 1
            out.append(frame)
        return True

    def interrupt(self, out: list[Frame]) -> None:
        """A non-hex line or end of input: a message still waiting for bytes is truncated."""
        if self._hex:
            hexed, self._hex = self._hex, b""
            self._invalid(hexed, out)

    def _invalid(self, hexed: bytes, out: list[Frame]) -> None:
        raw = bytes.fromhex(hexed[: len(hexed) & ~1].decode())
        self.stats.frames += 1
        self.stats.invalid += 1
        out.append(InvalidFrame(self._fmt, "length", raw))


class XdmfDecoder(Decoder):
    """Incremental SDMF/MDMF decoder for binary streams and hex lines.  See the module doc."""

    format = FORMAT

    def __init__(self) -> None:
        super().__init__()
        #: "binary" or "hex" once the first message settled it; None before.
        self.mode: str | None = None
        self._buf = b""
        # May a message start at _buf[0] without a seizure (stream start, after a message)?
        self._direct = True
        self._after_message = False
        self._lines = LineBuffer(self.stats)
        self._hex = HexAssembler(self.stats)

    def feed(self, data: bytes, now: float) -> list[Frame]:
        self.stats.bytes_in += len(data)
        mode = self.mode
        if mode == "binary":
            out: list[Frame] = []
            self._binary(data, out, False)
            return out
        if mode == "hex":
            out = []
            self._hex_lines(data, out)
            return out
        binary: list[Frame] = []
        hexed: list[Frame] = []
        self._binary(data, binary, False)
        self._hex_lines(data, hexed)
        return self._settle(binary, hexed)

    def flush(self, now: float) -> list[Frame]:
        binary: list[Frame] = []
        hexed: list[Frame] = []
        if self.mode != "hex":
            self._binary(b"", binary, True)
        if self.mode != "binary":
            tail = self._lines.take_tail()
            if tail:
                self._hex.line(tail, hexed)
            self._hex.interrupt(hexed)
        out = self._settle(binary, hexed) if self.mode is None else binary or hexed
        self._buf = b""
        self._direct = True
        self._after_message = False
        self.mode = None
        return out

    def _settle(self, binary: list[Frame], hexed: list[Frame]) -> list[Frame]:
        if hexed and (not binary or any(f.kind != "invalid" for f in hexed)):
            self.mode = "hex"
            self._buf = b""
            return hexed
        if binary:
            self.mode = "binary"
            self._lines.take_tail()
            self._hex = HexAssembler(self.stats)
        return binary

    # -- hex lines -------------------------------------------------------------------

    def _hex_lines(self, data: bytes, out: list[Frame]) -> None:
        region = self._lines.take(data)
        if region:
            for raw in region.splitlines():
                if len(raw) > MAX_LINE:
                    self.stats.overflows += 1
                    self._hex.interrupt(out)
                elif not self._hex.line(raw, out) and raw.strip() and self.mode == "hex":
                    self.stats.skipped += len(raw)

    # -- binary --------------------------------------------------------------------

    def _binary(self, data: bytes, out: list[Frame], final: bool) -> None:
        """Hunt for messages in what is held plus ``data``; keep what may still become one.

        Written for speed (binary modules are the fastest devices to decode): one
        ``finditer`` over the seizures, the usual case (a good message right after
        the U's, or after the one random byte an HT9032D puts there) inline, the
        rest in :meth:`_after_seizure` and :meth:`_back_to_back`.
        """
        buf = self._buf + data if self._buf else data
        n = len(buf)
        pos = 0
        found = 0  # good messages taken inline (counted once, at the end)
        skipped = 0  # noise bytes, likewise
        if self._direct:
            pos, waiting = self._back_to_back(buf, 0, n, out, final)
            if waiting:
                self._done(buf, pos, True, found, skipped)
                return
        types = MESSAGE_TYPES
        append = out.append
        for match in _SEIZURE.finditer(buf, pos):
            start = match.start()
            if start < pos:
                # U's inside a message already taken; a run that goes on past its end
                # (a checksum of 0x55 right before the next seizure) still counts.
                if match.end() - pos < MIN_SEIZURE:
                    continue
                start = pos
            skipped += start - pos
            after = match.end()
            first = after if after < n and buf[after] in types else after + 1
            if first + 1 < n and buf[first] in types:
                end = first + buf[first + 1] + 3
                message = buf[first:end]
                if end <= n and not sum(message) & 0xFF:
                    # An invalid message goes the slow way below: perhaps the random
                    # byte only looked like a message type.
                    if message[0] == 0x80:
                        # (A long "message" that swallows a seizure is checked there too.)
                        good = mdmf_call(message, FORMAT) if end - first < 48 else _good(buf, first, end)
                    else:
                        good = _good(buf, first, end)
                    if good is not None:
                        found += 1
                        append(good)
                        pos = end
                        if end < n and buf[end] in types:
                            self._after_message = True
                            pos, waiting = self._back_to_back(buf, end, n, out, final)
                            if waiting:
                                self._done(buf, pos, True, found, skipped)
                                return
                        continue
            while after < n and buf[after] == _MARK:
                after += 1
            resume = self._after_seizure(buf, after, n, out, final)
            if resume < 0:
                self._done(buf, match.end() - MIN_SEIZURE, False, found, skipped)
                return
            pos = resume
            if resume > after:
                pos, waiting = self._back_to_back(buf, resume, n, out, final)
                if waiting:
                    self._done(buf, pos, True, found, skipped)
                    return
        # No seizure left: keep a run of U's that the next read may complete.
        keep = n
        while keep > pos and keep > n - MIN_SEIZURE + 1 and buf[keep - 1] == 0x55:
            keep -= 1
        skipped += keep - pos
        self._done(buf, keep, False, found, skipped)

    def _back_to_back(self, buf: bytes, pos: int, n: int, out: list[Frame], final: bool) -> tuple[int, bool]:
        """Messages at ``pos`` with no seizure before them (stream start, right after a
        message); returns where to go on, and whether to wait for more bytes there."""
        while pos < n and buf[pos] in MESSAGE_TYPES:
            end = _end_of(buf, pos, n)
            if _SEIZURE.search(buf, pos + 2, n if end < 0 else end):
                self.stats.skipped += 1  # a "message" that swallows a seizure is noise
                return pos + 1, False
            if end < 0 and not final:
                return pos, True
            if not _plausible(buf, pos, n) or (self._after_message and (end < 0 or sum(buf[pos:end]) & 0xFF)):
                # Only a good message may follow another without a seizure: anything
                # else there is the module's trailing noise.
                self.stats.skipped += 1
                return pos + 1, False
            pos = self._emit(buf, pos, end, out)
        return pos, False

    def _done(self, buf: bytes, keep: int, direct: bool, found: int, skipped: int) -> None:
        """Keep ``buf[keep:]`` for the next read and add up what this one found."""
        self.stats.skipped += skipped
        kept = buf[keep:]
        if len(kept) > MAX_BUFFER:
            # Only endless mark bytes after a seizure get here: give up on that seizure.
            self.stats.overflows += 1
            self.stats.skipped += len(kept)
            kept, direct = b"", False
        self._buf = kept
        self._direct = direct
        if found:
            self.stats.frames += found
            self._after_message = True

    def _after_seizure(self, buf: bytes, start: int, n: int, out: list[Frame], final: bool) -> int:
        """Find the message at ``start`` or ``start + 1``; return where to go on (-1: wait).

        Either may hold it (an HT9032D puts one random byte after the U's, and that
        byte can look like a message type).  A good message is preferred; failing
        that, the first candidate is reported invalid.
        """
        if start >= n:
            return -1 if not final else n
        end0 = _end_of(buf, start, n)
        if end0 < 0 and not final:
            return -1
        frame = _good(buf, start, end0)
        if frame is not None:
            return self._take(frame, end0, out)
        second = start + 1
        end1 = _end_of(buf, second, n) if second < n else (-1 if not final else 0)
        if end1 < 0 and not final:
            return -1
        frame = _good(buf, second, end1)
        if frame is not None:
            return self._take(frame, end1, out)
        if end0 != 0:
            return self._emit(buf, start, end0, out)
        if end1 != 0:
            return self._emit(buf, second, end1, out)
        return start  # no message here: keep hunting

    def _take(self, frame: Frame, end: int, out: list[Frame]) -> int:
        self.stats.frames += 1
        self._after_message = True
        out.append(frame)
        return end

    def _emit(self, buf: bytes, start: int, end: int, out: list[Frame]) -> int:
        """Decode the message ``buf[start:end]`` (end < 0: truncated by end of input)."""
        self.stats.frames += 1
        self._after_message = True
        if end < 0:
            self.stats.invalid += 1
            out.append(InvalidFrame(FORMAT, "length", buf[start:]))
            return len(buf)
        frame = decode_message(buf[start:end])
        if frame.kind == "invalid":
            self.stats.invalid += 1
            # A message cut short (a corrupted length) must not swallow the next seizure.
            seizure = _SEIZURE.search(buf, start + 2, end)
            if seizure is not None:
                end = seizure.start()
                frame = InvalidFrame(FORMAT, "length", buf[start:end])
        out.append(frame)
        return end


def _good(buf: bytes, start: int, end: int) -> Frame | None:
    """The frame of a message that checks in every way (sum, parameters, no seizure
    inside it), or None."""
    if end <= 0:
        return None
    message = buf[start:end]
    if sum(message) & 0xFF or message[1] not in PLAUSIBLE_LENGTHS[message[0]] or _SEIZURE.search(message, 2):
        return None
    frame = decode_message(message, verified=True)
    return None if frame.kind == "invalid" else frame


#: Payload lengths a message of each type can have (SDMF: 8 date digits and 1-20
#: number characters; SDMF message waiting: exactly 3; MDMF: at least one parameter).
PLAUSIBLE_LENGTHS = {0x04: range(9, 29), 0x06: range(3, 4), 0x80: range(3, 256), 0x82: range(3, 256)}


def _plausible(buf: bytes, start: int, n: int) -> bool:
    """Could a message start here without a seizure?  (Noise at the start of a capture
    often opens with a type byte; its length byte rarely fits the type.)"""
    return start + 1 >= n or buf[start + 1] in PLAUSIBLE_LENGTHS[buf[start]]


def _end_of(buf: bytes, start: int, n: int) -> int:
    """End of a message starting at ``start``: 0 if no message type there, -1 if incomplete."""
    if buf[start] not in MESSAGE_TYPES:
        return 0
    if start + 1 >= n:
        return -1
    end = start + buf[start + 1] + 3
    return end if end <= n else -1


# -- encoders ------------------------------------------------------------------------


def binary_burst(message: bytes, *, seizure: int = 30, random_byte: bytes = b"", noise: bytes = b"") -> bytes:
    """What an FSK decoder module prints for one message: noise, U's, the message."""
    return noise + b"U" * seizure + random_byte + message


def hex_lines(message: bytes, *, wrap: int = 0, lower: bool = False, eol: bytes = b"\r\n") -> bytes:
    """A message as a modem prints it in hex mode, optionally wrapped every ``wrap`` digits."""
    digits = message.hex() if lower else message.hex().upper()
    if wrap <= 0:
        return digits.encode() + eol
    return b"".join(digits[i : i + wrap].encode() + eol for i in range(0, len(digits), wrap))
