"""What every decoder is: bytes and a clock in, frames out, no I/O.

A decoder is fed whatever the port delivered (one byte or a thousand, split
anywhere) with the monotonic time it arrived, and returns the frames completed by
those bytes.  It never raises on input: bytes it cannot use are skipped and counted
in :class:`DecoderStats`.  Its buffers have hard limits (:data:`MAX_LINE`,
:data:`MAX_BUFFER`), so endless garbage costs bounded memory, and every cut is
counted in :attr:`DecoderStats.overflows`.

Some formats finish a frame on silence rather than on a byte (a modem block with no
NAME and no following RING).  For those the owner asks :attr:`Decoder.deadline` when
the decoder next wants to be woken and calls :meth:`Decoder.timeout` then; at end of
input it calls :meth:`Decoder.flush`.

What a caller can rely on, for every decoder:

* any split of the same bytes into ``feed`` calls (with the same ``now``) gives the
  same frames, in the same order;
* ``feed``, ``timeout`` and ``flush`` never raise on any input;
* after ``flush`` the decoder is as good as new (it can be fed again).
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
    #: Bytes (or, for whole unusable lines and blocks, items) thrown away as noise.
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


def text(raw: bytes) -> str:
    """Decode device text: UTF-8 where valid, else Latin-1 (which never fails)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class LineBuffer:
    """Cuts a byte stream at line ends (CR, LF or CR LF), with a hard length limit.

    :meth:`take` returns the *region* of complete lines the new bytes finish, with
    their terminators, exactly as received (``b""`` when no line ended), and keeps
    the unterminated tail.  A CR LF split across two reads is still one terminator.
    Lines longer than :data:`MAX_LINE` are the parser's to drop (they may sit inside
    a region); a *tail* that grows past it is cut here: its bytes are counted as
    skipped, one overflow is counted, and the rest of that line, up to the next
    terminator, is discarded too.  So the buffer never holds more than
    :data:`MAX_LINE` bytes.
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

    def take(self, data: bytes) -> bytes:
        if self._after_cr and data[:1] == b"\n":
            data = data[1:]  # the LF of a CR LF split across reads
        if not data:
            return b""
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if end < 0:
            self._after_cr = False
            self._grow_tail(data)
            return b""
        self._after_cr = data[end] == 13
        head, rest = data[: end + 1], data[end + 1 :]
        if self._discarding:
            # The first line of this region is the end of an overlong line: drop it.
            cut = _first_eol(head)
            self.stats.skipped += cut
            head = head[cut:]
            self._discarding = False
            head = head[2:] if head[:2] == b"\r\n" else head[1:]
        elif self._tail:
            head = self._tail + head
        self._tail = b""
        if rest:
            self._grow_tail(rest)
        return head

    def _grow_tail(self, data: bytes) -> None:
        if self._discarding:
            self.stats.skipped += len(data)
            return
        tail = self._tail + data if self._tail else data
        if len(tail) > MAX_LINE:
            self.stats.skipped += len(tail)
            self.stats.overflows += 1
            self._discarding = True
            tail = b""
        self._tail = tail

    def take_tail(self) -> bytes:
        """Return and forget the unterminated tail (end of input), and reset."""
        tail, self._tail = self._tail, b""
        self._discarding = False
        self._after_cr = False
        return tail


def _first_eol(data: bytes) -> int:
    """Index of the first CR or LF in ``data`` (which holds at least one)."""
    cr, lf = data.find(b"\r"), data.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


class LineDecoder(Decoder):
    """Base of the formats that speak one record per text line (boxes, DTMF strings).

    Subclasses implement :meth:`line`; this class cuts lines, drops overlong ones
    (counted) and hands the last unterminated line over at :meth:`flush`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lines = LineBuffer(self.stats)

    def feed(self, data: bytes, now: float) -> list[Frame]:
        self.stats.bytes_in += len(data)
        region = self._lines.take(data)
        out: list[Frame] = []
        if region:
            for raw in region.splitlines():
                if len(raw) > MAX_LINE:
                    self.stats.skipped += len(raw)
                    self.stats.overflows += 1
                else:
                    self.line(raw, out)
        return out

    def flush(self, now: float) -> list[Frame]:
        out: list[Frame] = []
        tail = self._lines.take_tail()
        if tail:
            self.line(tail, out)
        self.end(out)
        return out

    def line(self, raw: bytes, out: list[Frame]) -> None:
        """Decode one line (without its terminator), appending any frames to ``out``."""
        raise NotImplementedError

    def end(self, out: list[Frame]) -> None:
        """End of input after the last line: emit and forget any pending state."""
