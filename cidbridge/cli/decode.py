"""``cidbridge decode``: replay bytes (a capture, a file, stdin) through the daemon's decoder."""

from __future__ import annotations

import binascii
import sys
from pathlib import Path
from typing import Annotated

import typer

from cidbridge.cli.errors import USAGE, fail
from cidbridge.cli.show import json_safe
from cidbridge.core.formats import FORMATS, UnknownFormatError, make_decoder

#: Bytes fed per call, so the decoder sees input split the way a port delivers it.
CHUNK = 64


def decode(
    source: Annotated[str, typer.Argument(help="File to decode, or - for standard input.")],
    format: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")] = "auto",
    hex_input: Annotated[
        bool, typer.Option("--hex", help="The input is hex text; unhexlify it first.")
    ] = False,
) -> None:
    """Print one JSON object per decoded frame (see docs/formats.md).  Invalid frames are data: exit 0."""
    try:
        decoder = make_decoder(format)
    except UnknownFormatError as exc:
        fail(str(exc), USAGE)
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        fail(f"cannot read {source} ({exc.strerror or exc})", USAGE)
    if hex_input:
        text = b"".join(data.split())
        try:
            data = binascii.unhexlify(text)
        except (binascii.Error, ValueError) as exc:
            fail(f"{source} is not hex text ({exc})", USAGE)
    out = sys.stdout
    now = 0.0
    for start in range(0, len(data), CHUNK):
        for frame in decoder.feed(data[start : start + CHUNK], now):
            out.write(json_safe(frame.to_json()) + "\n")
    for frame in decoder.flush(now):
        out.write(json_safe(frame.to_json()) + "\n")
    out.flush()
