"""``auto``: find the format in the stream itself, and follow the device if it changes.

Each format has a *signature*: a short, strict pattern that only its records make
(a modem's ``RING`` or ``NMBR =`` line or hex line, ``STX 1I…ETX``, ``###DATE``, a
run of U's before a message type, …).  Until one is seen the bytes are held
(at most :data:`~cidbridge.core.formats.base.MAX_BUFFER`; older ones are dropped
and counted); the format whose signature starts earliest wins (ties: the order of
:data:`SIGNATURES`), and its decoder is fed everything held so far, so it gives the
same frames as if it had been chosen by name.

Switching: while the chosen decoder finds nothing in what arrives, the bytes since
its last good frame are searched for another format's signature; if one shows up,
the old decoder is flushed and the new one takes over from there.  A modem switched
from formatted to hex output needs no switch: the modem-text decoder reads both.

:attr:`AutoDecoder.stats` are the current decoder's.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cidbridge.core.formats.base import MAX_BUFFER, Decoder, DecoderStats
from cidbridge.core.formats.fsk import MESSAGE_TYPES
from cidbridge.core.formats.xdmf import PLAUSIBLE_LENGTHS
from cidbridge.core.frames import Frame

_LINE_START = rb"(?:^|(?<=[\r\n]))"
_LINE_END = rb"[ \t]*(?=[\r\n])"

#: (format, signature), strictest first.
SIGNATURES: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    ("jclip", re.compile(rb"[\x10\x90][\x01\x81][\x07\x87][\x10\x90][\x02\x82]")),
    ("kr-adapter", re.compile(rb"\x02[0-9][ISEKP][\x20-\x7e]{18,19}\x03")),
    # Only at the start of a run of U's, and possessive: a long run costs one pass, not n².
    ("xdmf", re.compile(rb"(?<!U)UUU++\xff*+[\x00-\xff]?[\x04\x06\x80\x82][\x00-\xff]")),
    ("netcallerid", re.compile(rb"###DATE[0-9]*\.\.\.NMBR")),
    # Before callerid-com, whose limited record ("01 09/26 02:30 PM 8002404637 I NAME") a
    # TCI line also fits when its name starts with "I" or "O".  TCI's fixed columns ("/"
    # at 9, "M" at 24) and its blank columns 44-54 between number and name tell them
    # apart, even from a limited record spaced five apart (its I/O flag falls there);
    # so only a whole line can be taken for TCI.
    (
        "tci",
        re.compile(
            _LINE_START + rb"\d[^\r\n]{8}/[^\r\n]{14}M[^\r\n]{6}(?![^\r\n]{13} {0,10}[^ \r\n])[^\r\n]*[\r\n]"
        ),
    ),
    (
        "callerid-com",
        re.compile(
            _LINE_START
            + rb"(?:\^\^<U>[\x00-\xff]{6,20})?\$?(?:\d\d +[IO] +[ESB] +\d{4} +[GB] +\S\d +\d\d/\d\d"
            rb"|\d\d +[RFNH] +\d\d/\d\d +\d\d:\d\d:\d\d"
            rb"|\d\d +\d\d/\d\d +\d\d:\d\d +[AP]M +\S+ +[IO][^\r\n]*[\r\n]"  # whole, like tci's
            rb"|\d{4} +\d\d +\d\d/\d\d +\d\d:\d\d +[IO] +[ESB] +\d{4} +[GB])"
        ),
    ),
    (
        "modem-text",
        re.compile(
            _LINE_START
            + rb"(?:(?:CID )?RING(?:[ ;][^\r\n]*)?"
            + _LINE_END
            + rb"|(?:DATE|TIME|NMBR|NAME|DDN_NMBR|DDN|NBR|MESG|DATE TIME)[ \t]*="
            rb"|(?:04|06|80|82)[0-9A-Fa-f]{4,}" + _LINE_END + rb")|\x10R"
        ),
    ),
    (
        "dtmf",
        re.compile(_LINE_START + rb"(?:[AD]\d+(?:[BD]\d+)*[C#]|B\d\dC|\d+#)" + _LINE_END),
    ),
)


def message_at_start(data: bytes, final: bool) -> bool:
    """Does ``data`` open with a whole SDMF/MDMF message (no seizure: a file of vectors)?"""
    if not data or data[0] not in MESSAGE_TYPES:
        return False
    if len(data) > 1 and data[1] not in PLAUSIBLE_LENGTHS[data[0]]:
        return False
    return final or (len(data) > 1 and len(data) >= data[1] + 3)


def sniff(data: bytes, exclude: str | None = None) -> tuple[str, int] | None:
    """The format whose signature starts first in ``data``, and where; None if none."""
    best: tuple[str, int] | None = None
    for name, pattern in SIGNATURES:
        if name == exclude:
            continue
        match = pattern.search(data)
        if match is not None and (best is None or match.start() < best[1]):
            best = (name, match.start())
    return best


class AutoDecoder(Decoder):
    """Detects the format, then decodes with that format's decoder.  See the module doc."""

    format = "auto"

    def __init__(self, factories: dict[str, Callable[[], Decoder]]) -> None:
        # No Decoder.__init__: ``stats`` is the current decoder's (a property).
        self._factories = factories
        self._own_stats = DecoderStats()
        #: The decoder in charge, once a format was recognised.
        self.current: Decoder | None = None
        self._held = b""
        self._at_start = True  # _held begins with the first byte of the stream

    @property
    def stats(self) -> DecoderStats:  # type: ignore[override]
        return self.current.stats if self.current is not None else self._own_stats

    @property
    def deadline(self) -> float | None:
        return self.current.deadline if self.current is not None else None

    def feed(self, data: bytes, now: float) -> list[Frame]:
        held = self._held + data if self._held else data
        if len(held) > MAX_BUFFER:
            self._at_start = False
            self._own_stats.overflows += 1
            self._own_stats.skipped += len(held) - MAX_BUFFER
            held = held[-MAX_BUFFER:]
        current = self.current
        if current is None:
            self._own_stats.bytes_in += len(data)
            found = ("xdmf", 0) if self._at_start and message_at_start(held, False) else sniff(held)
            if found is None:
                self._held = held
                return []
            self._held = b""
            self.current = self._factories[found[0]]()
            return self.current.feed(held, now)
        frames = current.feed(data, now)
        for frame in frames:
            if frame.kind != "invalid":
                self._held = b""
                return frames
        found = sniff(held, exclude=current.format)
        if found is None:
            self._held = held
            return frames
        # The device now speaks another format: hand over what came since.
        self._held = b""
        frames = frames + current.flush(now)
        self.current = self._factories[found[0]]()
        return frames + self.current.feed(held[found[1] :], now)

    def timeout(self, now: float) -> list[Frame]:
        return self.current.timeout(now) if self.current is not None else []

    def flush(self, now: float) -> list[Frame]:
        if self.current is None:
            # End of input before any signature: a last record may lack its line end.
            held, self._held = self._held, b""
            at_start, self._at_start = self._at_start, True
            found = ("xdmf", 0) if at_start and message_at_start(held, True) else sniff(held + b"\n")
            if found is None:
                self._own_stats.skipped += len(held)
                return []
            decoder = self._factories[found[0]]()
            return decoder.feed(held, now) + decoder.flush(now)
        frames = self.current.flush(now)
        self.current = None
        self._held = b""
        self._at_start = True
        return frames
