"""Hot-plug recovery: how long from a device reappearing to its line being ``up`` again.

    .venv/bin/python bench/replug.py            # --cycles N, --loop asyncio

A simulated modem on a pseudo-terminal sits behind a ``/dev/serial/by-id``-style
symlink.  Each cycle unplugs it (the pty closes under the reader, the symlink goes)
and, once the line has reported ``down``, plugs a new pty in behind the same link.
Measured, per cycle, on the daemon's event loop (uvloop) with the daemon's
:class:`~cidbridge.lines.serial_line.Line` and its default settings:

* unplug → ``down``: noticing the hang-up;
* plug → ``up``: noticing the path again, reopening, the full AT initialisation
  (ATZ, ATE0V1, AT+VCID=1), and the ``up`` event.

It prints, and asserts nothing (tests/lines/test_line_faults.py holds the 2 s
target); the figures go to the README.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import machine

from cidbridge.config import LineConfig
from cidbridge.lines.serial_line import Line
from cidbridge.sim.modem import SimulatedModem
from cidbridge.sim.pty import PtyDevice


class Timings:
    """The sink: records when each line state arrives."""

    def __init__(self) -> None:
        self.states: list[tuple[str, float]] = []
        self.changed = asyncio.Event()

    async def publish(self, event: object) -> None:
        pass

    async def line_state(self, line: str, state: str, reason: str | None = None) -> None:
        self.states.append((state, time.monotonic()))
        self.changed.set()

    async def wait(self, state: str, after: int) -> float:
        while True:
            for seen, at in self.states[after:]:
                if seen == state:
                    return at
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


async def run(cycles: int, link: Path) -> tuple[list[float], list[float]]:
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=link)
    sink = Timings()
    line = Line(LineConfig(name="bench", port=str(link)), sink)
    task = asyncio.create_task(line.run())
    downs, ups = [], []
    try:
        await sink.wait("up", 0)
        for _ in range(cycles):
            mark = len(sink.states)
            pulled = time.monotonic()
            await asyncio.to_thread(device.unplug)
            downs.append(await sink.wait("down", mark) - pulled)
            mark = len(sink.states)
            model.cid_enabled = False
            plugged = time.monotonic()
            await asyncio.to_thread(device.plug)
            ups.append(await sink.wait("up", mark) - plugged)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        device.close()
    return downs, ups


def describe(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"{name:<16} median {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms   max {ms[-1]:6.1f} ms"


def main() -> None:
    logging.getLogger("cidbridge").setLevel(logging.ERROR)  # the down/up lines are the point
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    runner = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    with tempfile.TemporaryDirectory() as folder:
        downs, ups = runner(run(args.cycles, Path(folder) / "usb-Sim_Modem-if00"))
    print(f"cidbridge replug bench: {args.cycles} cycles, {args.loop}, Python {sys.version.split()[0]}")
    print(f"machine: {machine()}")
    print(describe("unplug → down", downs))
    print(describe("plug → up", ups))


if __name__ == "__main__":
    main()
