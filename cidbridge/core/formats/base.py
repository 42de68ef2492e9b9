"""What every decoder is: bytes and a clock in, frames out, no I/O.

A decoder is fed whatever the port delivered (one byte or a thousand, split
anywhere) with the monotonic time it arrived, and returns the frames completed by
those bytes.  It never raises on input: bytes it cannot use are skipped and counted
in :class:`DecoderStats`.  Its buffers have hard limits (:data:`MAX_LINE`,
:data:`MAX_BUFFER`), so endless garbage costs bounded memory.

Some formats finish a frame on silence rather than on a byte (a modem block with no
NAME and no following RING).  For those the owner asks :attr:`Decoder.deadline` when
the decoder next wants to be woken and calls :meth:`Decoder.timeout` then; at end of
input it calls :meth:`Decoder.flush`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cidbridge.core.frames import Frame

#: Longest text line a line-based decoder keeps; a longer one is dropped and counted.
MAX_LINE = 512
#: Most bytes any decoder buffers while waiting for the rest of a frame.
MAX_BUFFER = 4096


@dataclass(slots=True)
class DecoderStats:
    """Counters a decoder keeps about its input; read them, never reset them."""

    bytes_in: int = 0
    frames: int = 0
    invalid: int = 0
    #: Bytes thrown away as noise (between frames, unknown lines, overflowed buffers).
    skipped: int = 0
    #: Times a buffer hit its hard limit and was cut.
    overflows: int = 0


class Decoder:
    """Base class and interface of every format's decoder.

    Subclasses set :attr:`format` and implement :meth:`feed`; the other methods have
    safe defaults for formats that complete every frame on a byte.
    """

    format: str = ""

    def __init__(self) -> None:
        self.stats = DecoderStats()

    def feed(self, data: bytes, now: float) -> list[Frame]:
        """Consume ``data`` (any length, any content); return the frames it completed."""
        raise NotImplementedError

    def timeout(self, now: float) -> list[Frame]:
        """Return frames whose completion was waiting for silence up to ``now``."""
        return []

    def flush(self, now: float) -> list[Frame]:
        """End of input: return whatever pending data still forms a frame, and reset."""
        return []

    @property
    def deadline(self) -> float | None:
        """Monotonic time at which :meth:`timeout` should be called, or None."""
        return None


class LineSplitter:
    """Splits a byte stream into lines on CR, LF or CRLF, with a hard length limit.

    Returns complete lines without terminators (blank lines included, as ``b""``);
    keeps the unterminated tail for the next call.  A CR LF split across two reads is
    still one terminator.  A line longer than :data:`MAX_LINE` is dropped: its bytes
    are counted as skipped, one overflow is counted, and the rest of it, up to the
    next terminator, is discarded too.
    """

    __slots__ = ("_after_cr", "_discarding", "_tail", "stats")

    def __init__(self, stats: DecoderStats) -> None:
        self._tail = b""
        self._after_cr = False
        self._discarding = False
        self.stats = stats

    @property
    def pending(self) -> bytes:
        """The unterminated bytes held since the last terminator."""
        return self._tail

    def split(self, data: bytes) -> list[bytes]:
        if self._after_cr and data[:1] == b"\n":
            data = data[1:]
        if not data:
            return []
        self._after_cr = data[-1] == 13
        if self._tail:
            data = self._tail + data
        # CR LF, lone CR and lone LF all end a line.
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        tail = lines.pop()
        if self._discarding and lines:
            self.stats.skipped += len(lines[0])
            del lines[0]
            self._discarding = False
        if len(data) > MAX_LINE:
            self._cut_long(lines)
        if self._discarding:
            self.stats.skipped += len(tail)
            tail = b""
        elif len(tail) > MAX_LINE:
            self.stats.skipped += len(tail)
            self.stats.overflows += 1
            tail = b""
            self._discarding = True
        self._tail = tail
        return lines

    def _cut_long(self, lines: list[bytes]) -> None:
        for i in range(len(lines) - 1, -1, -1):
            if len(lines[i]) > MAX_LINE:
                self.stats.skipped += len(lines[i])
                self.stats.overflows += 1
                del lines[i]

    def take_tail(self) -> bytes:
        """Return and forget the unterminated tail (end of input)."""
        tail, self._tail = self._tail, b""
        self._discarding = False
        self._after_cr = False
        return tail
