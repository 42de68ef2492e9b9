"""Coverage-guided fuzzing of every decoder with atheris (libFuzzer for Python).

Each input is split into reads at offsets taken from its first bytes, fed with a
moving clock, then timed out and flushed; every frame must serialise to JSON.  Any
exception, or a decoder buffering more than its hard limit, is a crash that
libFuzzer reports with the input that caused it.

    pip install atheris
    python fuzz/fuzz_decoders.py --format kr-adapter -runs=1000000
    fuzz/run_all.sh            # every format, 1,000,000 inputs each, in the background

The seed corpus is made from the formats' own encoders (written to a temporary
folder), so the fuzzer starts from valid frames and mutates them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from cidbridge.core.formats import FORMATS, make_decoder
    from cidbridge.core.formats.base import MAX_BUFFER, MAX_LINE

FORMAT = "auto"
#: The most bytes any decoder may hold between calls (the limits in base.py, plus slack
#: for a whole frame in flight).
HELD_LIMIT = MAX_BUFFER + MAX_LINE + 1024


def held_bytes(decoder: object) -> int:
    """Bytes a decoder (or the one auto delegates to) holds in its buffers right now."""
    total = 0
    for value in vars(decoder).values():
        if isinstance(value, bytes | bytearray):
            total += len(value)
        elif hasattr(value, "pending") and isinstance(getattr(value, "pending", None), bytes):
            total += len(value.pending)
    current = getattr(decoder, "current", None)
    return total + (held_bytes(current) if current is not None else 0)


def one_input(data: bytes) -> None:
    decoder = make_decoder(FORMAT)
    cuts = sorted({b % (len(data) + 1) for b in data[:4]})
    now = 0.0
    frames = []
    start = 0
    for cut in [*cuts, len(data)]:
        frames += decoder.feed(data[start:cut], now)
        start = max(start, cut)
        now += 0.4
        if held_bytes(decoder) > HELD_LIMIT:
            raise AssertionError(f"{FORMAT} holds {held_bytes(decoder)} bytes")
    frames += decoder.timeout(now + 5)
    frames += decoder.flush(now + 5)
    for frame in frames:
        json.dumps(frame.to_json())


def seeds() -> list[bytes]:
    """Valid inputs of every format, from the encoders the simulator uses."""
    import random

    from cidbridge.sim.boxes import BOX_FORMATS, Box
    from cidbridge.sim.modem import Caller

    out = []
    rng = random.Random(7)
    for fmt in BOX_FORMATS:
        for caller in (
            Caller("01012345678", "KIM MINJI", month=3, day=4, hour=5, minute=6),
            Caller(None, None, "private", "private"),
        ):
            box = Box(fmt, answered=True, rng=rng)
            out.append(b"".join(step for _, step in box.call_script(caller)))
    return out


def main() -> None:
    global FORMAT
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--format", default="auto", choices=FORMATS)
    args, rest = parser.parse_known_args()
    FORMAT = args.format
    corpus = Path(tempfile.mkdtemp(prefix=f"cidbridge-fuzz-{FORMAT}-"))
    for i, seed in enumerate(seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup([sys.argv[0], *rest, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
