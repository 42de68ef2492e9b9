"""Decoder throughput: frames/s per format, a mixed stream, phone_modem 0.1.2, a regex floor.

    .venv/bin/pip install -e '.[bench]'      # phone_modem 0.1.2, for the comparison
    .venv/bin/python bench/decode.py          # --calls N for a longer run

Every stream is generated from the formats' own encoders with a fixed seed (a mix
of callers: names and no names, withheld numbers), fed in 4096-byte reads like the
daemon's, on one core; the best of several runs is reported.  It prints, and
asserts nothing: the figures go to bench/README.md.

* per format: frames/s (rings, caller IDs, hook changes, … whatever the stream holds);
* mixed: a modem that prints formatted blocks, hex lines after ``AT+VCID=2``,
  distinctive rings and AT chatter, decoded by ``auto``;
* phone_modem 0.1.2 (Home Assistant's parser) on the same modem-text stream, driven
  line by line through an in-memory fake of its aioserial port, and the cases it
  decodes wrongly next to ours;
* the floor: a bare ``re.finditer`` over the same modem-text bytes that finds every
  RING and KEY=value line and builds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
from collections.abc import Callable

from machine import machine

from cidbridge.core.formats import fsk, make_decoder
from cidbridge.core.formats.modem_text import encode_block
from cidbridge.core.formats.xdmf import hex_lines
from cidbridge.sim.boxes import Box
from cidbridge.sim.callers import korean_number, random_caller
from cidbridge.sim.modem import Caller

READ = 4096
NAMES = ["KIM MINJI", "LEE JUNHO", "PARK SEOYEON", "A N OTHER", "CHOI WOOJIN"]


def callers(n: int, rng: random.Random) -> list[Caller]:
    return [random_caller(rng) for _ in range(n)]


def modem_stream(n: int, rng: random.Random) -> bytes:
    """RING, a block (85 % with NAME), RING: what a US line prints, call after call."""
    out = []
    for _ in range(n):
        name = rng.choice(NAMES) if rng.random() < 0.85 else None
        block = encode_block(
            korean_number(rng),
            name,
            month=rng.randint(1, 12),
            day=rng.randint(1, 28),
            hour=rng.randint(0, 23),
            minute=rng.randint(0, 59),
        )
        out.append(b"RING\r\n\r\n" + block + b"\r\nRING\r\n\r\n")
    return b"".join(out)


def mixed_stream(n: int, rng: random.Random) -> bytes:
    """One modem's day: formatted blocks, then hex output, distinctive rings, AT chatter."""
    out = [b"ATZ\r\nOK\r\nAT+VCID=1\r\nOK\r\n"]
    for i in range(n):
        c = random_caller(rng)
        if i == n // 2:
            out.append(b"AT+VCID=2\r\nOK\r\n")
        ring = rng.choice([b"RING\r\n", b"RING A\r\n", b"RING 2\r\n"])
        if i < n // 2:
            body = encode_block(c.number, c.name, month=c.month, day=c.day, hour=c.hour, minute=c.minute,
                                number_absence=c.number_absence, name_absence=c.name_absence)  # fmt: skip
        else:
            message = fsk.encode_mdmf(c.number, c.name, number_absence=c.number_absence,
                                      name_absence=c.name_absence, month=c.month, day=c.day, hour=c.hour,
                                      minute=c.minute)  # fmt: skip
            body = hex_lines(message, lower=i % 2 == 0)
        out.append(ring + b"\r\n" + body + b"\r\n" + ring)
    return b"".join(out)


def box_stream(fmt: str, n: int, rng: random.Random) -> bytes:
    box = Box(fmt, answered=True, rng=rng)
    return b"".join(step for c in callers(n, rng) for _, step in box.call_script(c))


def best_of(runs: int, work: Callable[[], int]) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        count = work()
        best = min(best, time.perf_counter() - start)
    return best, count


def decode_all(fmt: str, data: bytes) -> int:
    decoder = make_decoder(fmt)
    frames = 0
    for i in range(0, len(data), READ):
        frames += len(decoder.feed(data[i : i + READ], 0.0))
    return frames + len(decoder.flush(0.0))


# -- phone_modem 0.1.2 ------------------------------------------------------------------


class FakePort:
    """The part of aioserial.AioSerial that PhoneModem._modem_sm uses, over a list of lines."""

    def __init__(self, modem, lines: list[bytes], suspend: bool) -> None:
        self._modem = modem
        self._lines = iter(lines)
        self._suspend = suspend
        self.timeout = None
        self.writes = 0

    async def readline_async(self) -> bytes:
        if self._suspend:
            # A real read suspends the reader (aioserial hands every readline to a
            # thread pool, which costs far more than this one trip round the loop).
            await asyncio.sleep(0)
        line = next(self._lines, None)
        if line is None:
            self._modem.ser = None  # ends _modem_sm's `while self.ser` loop
            return b""
        return line

    async def write_async(self, data: bytes) -> int:
        self.writes += 1
        return len(data)

    def close(self) -> None:
        pass


def phone_modem_run(data: bytes, suspend: bool = False) -> tuple[list[tuple[str, str, str]], str | None]:
    """Feed ``data`` to phone_modem's decoder; return its events and the exception, if any."""
    from phone_modem import PhoneModem

    modem = PhoneModem(port="fake://")
    events: list[tuple[str, str, str]] = []
    modem.registercallback(lambda state: events.append((state, modem.cid_number, modem.cid_name)))
    modem.ser = FakePort(modem, data.splitlines(keepends=True), suspend)
    modem.state = modem.STATE_IDLE
    try:
        asyncio.run(modem._modem_sm())
    except Exception as exc:  # the peer's reader task dies on these: that is the finding
        return events, f"{type(exc).__name__}: {exc}"
    return events, None


PEER_CASES = {
    "no NAME line (UK, no name service)": b"RING\r\nDATE = 0124\r\nNMBR = 02071234123\r\n\r\nRING\r\n",
    "NAME before NMBR": b"RING\r\nDATE = 0124\r\nNAME = SMITH\r\nNMBR = 4075551212\r\nRING\r\n",
    "a name with '='": b"RING\r\nNMBR = 4075551212\r\nNAME = A=B\r\nRING\r\n",
    "one non-UTF-8 byte": b"RING\r\nNMBR = 4075551212\r\nNAME = CAF\xc9\r\nRING\r\n",
    "DDN_NMBR (Rockwell)": b"RING\r\nDDN_NMBR= 9196278340\r\nNAME = JONES\r\nRING\r\n",
    "distinctive ring 'RING A'": b"RING A\r\nNMBR = 4075551212\r\nNAME = JONES\r\nRING A\r\n",
    "withheld number 'P'": b"RING\r\nNMBR = P\r\nNAME = WITHHELD\r\nRING\r\n",
}


def ours(data: bytes) -> str:
    decoder = make_decoder("modem-text")
    frames = decoder.feed(data, 0.0) + decoder.flush(0.0)
    parts = []
    for f in frames:
        if f.kind == "cid":
            number = f.number if f.number is not None else f"({f.number_absence})"
            parts.append(f"cid {number} / {f.name or f.name_absence or '-'}")
        else:
            parts.append(f.kind + (f" {f.tag}" if getattr(f, "tag", None) else ""))
    return ", ".join(parts)


def theirs(data: bytes) -> str:
    events, error = phone_modem_run(data)
    parts = [f"callerid {n or '(empty)'} / {m or '-'}" if s == "callerid" else s for s, n, m in events]
    return ", ".join(parts) + (f" → {error} (reader task dies)" if error else "")


# -- the report -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000, help="calls per stream (default 20000)")
    parser.add_argument("--runs", type=int, default=5, help="best of this many runs (default 5)")
    args = parser.parse_args()
    rng = random.Random(2024)
    n = args.calls
    print(f"machine: {machine()}")
    print(f"{n} calls per stream, {READ}-byte reads, best of {args.runs}\n")

    modem = modem_stream(n, rng)
    streams = [
        ("modem-text", "modem-text", modem),
        ("xdmf (binary, HT9032D-style noise)", "xdmf", box_stream("xdmf", n, rng)),
        ("xdmf (modem hex lines)", "modem-text", box_stream("xdmf-hex", n, rng)),
        ("kr-adapter", "kr-adapter", box_stream("kr-adapter", n, rng)),
        ("callerid-com", "callerid-com", box_stream("callerid-com", n, rng)),
        ("tci", "tci", box_stream("tci", n, rng)),
        ("netcallerid", "netcallerid", box_stream("netcallerid", n, rng)),
        ("dtmf", "dtmf", box_stream("dtmf", n, rng)),
        ("jclip", "jclip", box_stream("jclip", n, rng)),
        ("mixed modem stream, via auto", "auto", mixed_stream(n, rng)),
    ]
    print(f"{'stream':<38} {'decoder':<13} {'frames':>8} {'MB/s':>7} {'frames/s':>11}")
    results = {}
    for label, fmt, data in streams:
        seconds, frames = best_of(args.runs, lambda fmt=fmt, data=data: decode_all(fmt, data))
        results[label] = (seconds, frames)
        print(
            f"{label:<38} {fmt:<13} {frames:>8} {len(data) / seconds / 1e6:>7.1f} {frames / seconds:>11,.0f}"
        )

    our_s, our_frames = results["modem-text"]
    print("\nfloor: a bare regex scan of the same modem-text bytes (finds every RING and KEY=value line)")
    floor = re.compile(rb"^(?:RING|(DATE|TIME|NMBR|NAME) ?= ?([^\r\n]*))", re.M)
    regex_s, matches = best_of(args.runs, lambda: sum(1 for _ in floor.finditer(modem)))
    print(f"  regex: {regex_s * 1e3:.1f} ms ({matches} matches); decoder: {our_s * 1e3:.1f} ms "
          f"→ the decoder takes {our_s / regex_s:.2f}× the regex's time (target ≤ 3×)")  # fmt: skip

    print("\nphone_modem 0.1.2 (Home Assistant) on the same modem-text stream, line by line:")
    try:
        import phone_modem  # noqa: F401
    except ImportError:
        print("  not installed: pip install -e '.[bench]'")
        return
    for suspend, how in (
        (False, "a fake port that never suspends"),
        (True, "a fake port that yields once per line"),
    ):
        peer_s, _ = best_of(max(1, args.runs // 2), lambda s=suspend: len(phone_modem_run(modem, s)[0]))
        theirs_rate, ours_rate = our_frames / peer_s, our_frames / our_s
        print(f"  {how}: phone_modem {peer_s * 1e3:.0f} ms = {theirs_rate:,.0f} frames/s of the stream;")
        ratio = peer_s / our_s
        print(f"    cidbridge {our_s * 1e3:.0f} ms = {ours_rate:,.0f} frames/s → {ratio:.1f}× (target ≥ 3×)")
    print("\n  where phone_modem decodes wrongly (input → phone_modem's events | cidbridge's frames):")
    for label, data in PEER_CASES.items():
        print(f"  - {label}:\n      phone_modem: {theirs(data)}\n      cidbridge:   {ours(data)}")


if __name__ == "__main__":
    main()
