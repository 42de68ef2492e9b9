"""``dtmf``: DTMF caller-ID strings, as a DTMF receiver prints the digits it hears.

The four variants (docs/formats.md), each a run of DTMF symbols
(``0-9 A-D * #``, any case):

1. ``A<number>`` ``D<redirecting>`` ``B<info>`` fields in any order, ended by ``C``
   (``A12345678B10D87654321C``); ``B00`` = number not available, ``B10`` = private;
2. ``A<number>#``, and the Danish codes ``D1#`` (private), ``D2#`` / ``D3#`` (unavailable);
3. ``D<number>C`` (Taiwan, Kuwait), also ``D<number>#``;
4. ``<number>#`` with no start code (Denmark, Holland).

A message ends at ``C`` or ``#``.  A message that began with a start code and is cut
by a line break (or the end of input) is decoded as if terminated; bare digits need
their ``#``.  Any other byte ends a message in progress: a byte that is not a DTMF
symbol or a separator (space, CR, LF, tab) drops it as noise.  There is no checksum.
Frames: ``cid`` with ``redirecting_number`` / ``info`` extra keys where sent.
"""

from __future__ import annotations

from typing import Any

from cidbridge.core.formats.base import Decoder
from cidbridge.core.frames import PRIVATE, UNAVAILABLE, CidFrame, Frame

FORMAT = "dtmf"

#: Longest message kept; spandsp and Asterisk cap theirs well below this.
MAX_MESSAGE = 64
#: Symbols inside a message (the terminators C and # are handled apart).
_SYMBOLS = frozenset(b"0123456789ABDabd*")
_SEPARATORS = frozenset(b" \t\r\n")
_END = frozenset(b"C#c")
INFO_CODES = {"00": UNAVAILABLE, "10": PRIVATE}
DANISH_CODES = {"1": PRIVATE, "2": UNAVAILABLE, "3": UNAVAILABLE}


def parse_message(message: str, terminator: str) -> CidFrame | None:
    """Decode one message (without its terminator); None if it holds nothing."""
    if not message:
        return None
    if message[0].isdigit():
        if terminator != "#":
            return None
        return CidFrame(FORMAT, message)
    fields: dict[str, str] = {}
    key = ""
    for char in message:
        if char in "ABD":
            key = char
            fields.setdefault(key, "")
        elif key:
            fields[key] += char
    number = fields.get("A")
    absence: str | None = None
    extra: list[tuple[str, Any]] = []
    redirect = fields.get("D")
    if "A" not in fields and redirect is not None:
        # D first: a Danish code (D1#) or the Taiwan/Kuwait form D<number>C.
        if terminator == "#" and redirect in DANISH_CODES:
            absence = DANISH_CODES[redirect]
        else:
            number = redirect
        redirect = None
    if redirect:
        extra.append(("redirecting_number", redirect))
    info = fields.get("B")
    if info is not None:
        extra.append(("info", info))
        if not number:
            absence = INFO_CODES.get(info[:2])
    if not number and absence is None and info is None:
        return None
    return CidFrame(FORMAT, number or None, absence, None, None, extra=tuple(extra))


class DtmfDecoder(Decoder):
    """Incremental decoder for DTMF caller-ID strings.  See the module doc."""

    format = FORMAT

    def __init__(self) -> None:
        super().__init__()
        self._message = bytearray()
        self._noise = False  # inside a run of non-DTMF text: ignore until a separator

    def feed(self, data: bytes, now: float) -> list[Frame]:
        self.stats.bytes_in += len(data)
        out: list[Frame] = []
        message = self._message
        for byte in data:
            if self._noise:
                if byte in _SEPARATORS:
                    self._noise = False
                else:
                    self.stats.skipped += 1
            elif byte in _END:
                if message:
                    self._emit(message.decode(), chr(byte).upper(), out)
                    message.clear()
            elif byte in _SYMBOLS:
                if len(message) >= MAX_MESSAGE:
                    self.stats.overflows += 1
                    self.stats.skipped += len(message)
                    message.clear()
                    self._noise = True
                else:
                    message.append(byte)
            elif byte in _SEPARATORS:
                if message:
                    self._cut(message, out)
            else:
                self.stats.skipped += 1 + len(message)
                message.clear()
                self._noise = True
        return out

    def flush(self, now: float) -> list[Frame]:
        out: list[Frame] = []
        if self._message:
            self._cut(self._message, out)
        self._noise = False
        return out

    def _cut(self, message: bytearray, out: list[Frame]) -> None:
        """A message cut by a line break: decodable only if it began with a start code."""
        if message[0] in b"ADad":
            self._emit(message.decode(), "", out)
        else:
            self.stats.skipped += len(message)
        message.clear()

    def _emit(self, message: str, terminator: str, out: list[Frame]) -> None:
        frame = parse_message(message.upper(), terminator)
        if frame is None:
            self.stats.skipped += len(message)
            return
        self.stats.frames += 1
        out.append(frame)


def encode_message(
    number: str | None,
    *,
    absence: str | None = None,
    variant: int = 1,
    redirecting: str | None = None,
    eol: bytes = b"\r\n",
) -> bytes:
    """A DTMF caller-ID string in one of the four variants (for tests and the simulator)."""
    if number is None:
        if variant == 2:
            body = "D1#" if absence == PRIVATE else "D2#"
        else:
            body = "B10C" if absence == PRIVATE else "B00C"
    elif variant == 1:
        body = f"A{number}" + (f"D{redirecting}" if redirecting else "") + "C"
    elif variant == 2:
        body = f"A{number}#"
    elif variant == 3:
        body = f"D{number}C"
    else:
        body = f"{number}#"
    return body.encode() + eol
