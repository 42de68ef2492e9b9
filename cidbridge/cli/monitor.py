"""``cidbridge monitor PORT``: the raw bytes (hex and text) and the decoded frames, live, until Ctrl-C.

On a terminal the two are shown side by side in a live view; piped or redirected,
one line per chunk and per frame is printed instead (frames as the same JSON that
``cidbridge decode`` prints), so the output can be saved and grepped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Annotated

import serial
import typer
from rich.console import Console, Group
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from cidbridge.cli.errors import PORT, USAGE, fail
from cidbridge.cli.show import json_safe
from cidbridge.core.formats import FORMATS, Decoder, UnknownFormatError, make_decoder
from cidbridge.core.frames import Frame, visible_frame
from cidbridge.core.modem import InitDialogue, ModemError, init_sequence
from cidbridge.core.source import CallSource
from cidbridge.lines.at_channel import AtChannel
from cidbridge.lines.capture import DEFAULT_MAX_BYTES, RawCapture
from cidbridge.lines.diagnose import describe_open_error
from cidbridge.lines.port import close_port, open_port

#: Bytes per hex row.
ROW = 16
#: Rows kept on screen in the live view.
KEEP = 200
#: What control bytes look like in the text column (the rest of the non-printables are dots).
SHOWN = {0x0D: "␍", 0x0A: "␊", 0x02: "␂", 0x03: "␃", 0x10: "␐"}


def hex_rows(data: bytes) -> list[str]:
    """``52 49 4e 47 0d 0a ...   RING␍␊``, :data:`ROW` bytes a row."""
    rows = []
    for start in range(0, len(data), ROW):
        chunk = data[start : start + ROW]
        text = "".join(SHOWN.get(b, chr(b) if 32 <= b < 127 else ".") for b in chunk)
        rows.append(f"{chunk.hex(' '):<{ROW * 3}}  {text}")
    return rows


class PlainView:
    """One printed line per hex row and per frame; for pipes, files and tests."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def raw(self, data: bytes) -> None:
        for row in hex_rows(data):
            print(f"{_now()}  raw    {row}", flush=True)

    def frame(self, frame: Frame) -> None:
        print(f"{_now()}  frame  {json_safe(frame.to_json())}", flush=True)

    def note(self, text: str) -> None:
        print(f"{_now()}  note   {text}", flush=True)


class LiveView(PlainView):
    """Raw bytes on the left, frames on the right, the latest at the bottom."""

    def __init__(self, console: Console, port: str) -> None:
        super().__init__(console)
        self.port = port
        self.raw_rows: deque[Text] = deque(maxlen=KEEP)
        self.frame_rows: deque[Text] = deque(maxlen=KEEP)
        self.live = Live(self._render(), console=console, refresh_per_second=8, screen=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def raw(self, data: bytes) -> None:
        for row in hex_rows(data):
            self.raw_rows.append(Text(f"{_now()} {row}"))
        self.live.update(self._render())

    def frame(self, frame: Frame) -> None:
        shown = visible_frame(frame)  # a caller's name may hold terminal escapes
        fields = {k: v for k, v in shown.to_json().items() if v not in (None, "") and k != "kind"}
        text = Text(f"{_now()} ")
        text.append(frame.kind, style="bold green" if frame.kind == "cid" else "bold")
        text.append(" " + " ".join(f"{k}={v}" for k, v in fields.items()))
        self.frame_rows.append(text)
        self.live.update(self._render())

    def note(self, text: str) -> None:
        self.frame_rows.append(Text(f"{_now()} {text}", style="dim"))
        self.live.update(self._render())

    def _render(self) -> Layout:
        height = max(5, self.console.size.height - 4)
        layout = Layout()
        layout.split_row(
            Layout(Panel(Group(*list(self.raw_rows)[-height:]), title=f"raw bytes: {self.port}"), ratio=3),
            Layout(
                Panel(Group(*list(self.frame_rows)[-height:]), title="decoded frames (Ctrl-C stops)"), ratio=2
            ),
        )
        return layout


def monitor(
    port: Annotated[str, typer.Argument(help="Device path or pyserial URL (`cidbridge ports` lists them).")],
    baudrate: Annotated[int, typer.Option(help="Serial speed.")] = 115200,
    format: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")] = "auto",
    init: Annotated[
        bool,
        typer.Option("--init", help="Initialise a modem first (reset, caller ID on), as the daemon does."),
    ] = False,
    capture: Annotated[
        Path | None, typer.Option(help="Also write every byte read to this file (replay it with `decode`).")
    ] = None,
    capture_max_bytes: Annotated[
        int, typer.Option(help="Rotate the capture at this size.")
    ] = DEFAULT_MAX_BYTES,
) -> None:
    """Show raw bytes and decoded frames from PORT live, until Ctrl-C."""
    try:
        decoder = make_decoder(format)
    except UnknownFormatError as exc:
        fail(str(exc), USAGE)
    console = Console()
    recorder = RawCapture(capture, capture_max_bytes) if capture else None
    view = LiveView(console, port) if console.is_terminal else PlainView(console)
    counts = {"bytes": 0, "frames": 0}
    try:
        with view:
            asyncio.run(_watch(port, baudrate, decoder, init, view, recorder, counts))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a monitor ends
    except (serial.SerialException, OSError, ValueError) as exc:
        fail(describe_open_error(port, exc), PORT)
    except (ModemError, DeviceGone) as exc:
        fail(str(exc), PORT)
    finally:
        if recorder is not None:
            recorder.close()
    where = f"; raw bytes in {capture}" if capture else ""
    Console(stderr=True).print(f"monitor: {counts['bytes']} bytes, {counts['frames']} frames{where}")


class DeviceGone(Exception):
    """The port failed while being monitored; the message says how."""


async def _watch(
    port: str,
    baudrate: int,
    decoder: Decoder,
    init: bool,
    view: PlainView,
    recorder: RawCapture | None,
    counts: dict[str, int],
) -> None:
    reader, writer = await open_port(port, baudrate)
    at = AtChannel(writer)
    # The daemon's decoding and timing, bytes to frames; the frames are what is shown.
    calls = CallSource(port, decoder=decoder)

    def frames(found: list[Frame]) -> None:
        for frame in found:
            counts["frames"] += 1
            view.frame(frame)

    async def read() -> None:
        while True:
            deadline = calls.deadline
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(4096)
            except TimeoutError:
                frames(calls.tick(time.monotonic()).frames)
                continue
            except (serial.SerialException, OSError) as exc:
                raise DeviceGone(f"{port} went away while monitoring ({exc}); unplugged?") from None
            if not data:
                view.note("the port closed")
                return
            counts["bytes"] += len(data)
            if recorder is not None:
                recorder.write(data)
            at.feed(data)
            view.raw(data)
            frames(calls.feed(data, time.monotonic()).frames)

    reading = asyncio.create_task(read())
    try:
        if init:
            dialogue = await at.run(InitDialogue(init_sequence()), 3.0)
            view.note(f"modem initialised: {', '.join(dialogue.accepted)}")
        view.note(f"listening on {port}")
        await reading
    finally:
        await close_port(writer, reading)


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]
