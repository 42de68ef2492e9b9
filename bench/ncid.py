"""NCID delivery time next to Socket.IO's, for the same calls from one daemon.

    .venv/bin/python bench/ncid.py [--calls 100] [--sio-clients 1]

(``cd bench/fanout && npm ci`` first: the Socket.IO side is that benchmark's load
generator.)  One ``cidbridge serve`` (pinned to CPU 0) reads a caller-ID box on a
pseudo-terminal and has its NCID server on; connected at once:

* the NCID project's own client, ``tclsh ncid --no-gui`` (on its own pty; the time is
  when this script reads the line it printed),
* a raw NCID client (a TCP socket in this script: when the ``CID:`` line arrives),
* ``--sio-clients`` socket.io-client connections in one Node process (``loadgen.js``
  on CPU 1; the time is client 0's ``cti-event`` callback).

Each call is a RING, then 0.1 s later the caller-ID block; the clock starts at its
last byte written into the pty (CLOCK_MONOTONIC, which Node's hrtime reads too) and
stops at each client.  This is a benchmark, not a test: it prints figures and the
machine and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "fanout"))
sys.path.insert(0, str(ROOT))
import run as fanout  # noqa: E402  (the fan-out bench's helpers: load generator, pinning)
from machine import machine  # noqa: E402

from tests.support.ncid_client import ncid_client_script as find_ncid_client  # noqa: E402

#: The daemon's ring gap (``fanout.cidbridge_server`` sets the smallest the config allows).
RING_GAP = fanout.RING_GAP


def ncid_client_script() -> Path:
    script = find_ncid_client()
    if script is None:
        sys.exit("bench/ncid: no NCID client (shared/peers/ncid/ncid); set CIDBRIDGE_NCID_CLIENT")
    return script


#: Config lines that turn the NCID server on, on a free port (``fanout.cidbridge_server(extra=...)``).
NCID_CONFIG = ["[ncid]", "enabled = true", "port = 0"]


def health(url: str) -> dict[str, Any]:
    """The daemon's /healthz (also when it answers 503: a line down)."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def ncid_port(url: str) -> int:
    """The TCP port the daemon's NCID server listens on (from /healthz)."""
    return int(health(url)["outputs"]["ncid"]["listen"].rsplit(":", 1)[1])


class Seen:
    """number → monotonic ns when a client saw it; ``wait`` for one."""

    def __init__(self) -> None:
        self.times: dict[str, int] = {}
        self.cond = threading.Condition()

    def add(self, number: str, t_ns: int) -> None:
        with self.cond:
            self.times.setdefault(number, t_ns)
            self.cond.notify_all()

    def wait(self, number: str, timeout: float = 15) -> int:
        with self.cond:
            if not self.cond.wait_for(lambda: number in self.times, timeout):
                raise TimeoutError(f"no client line for {number}")
            return self.times[number]


def tcl_client(port: int, seen: Seen) -> subprocess.Popen[bytes]:
    tclsh = shutil.which("tclsh") or sys.exit("bench/ncid: tclsh is not installed (apt-get install tcl)")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        fanout.pinned(1, [tclsh, str(ncid_client_script()), "--no-gui", "127.0.0.1", str(port)]),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)

    def pump() -> None:
        pending = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            now = time.monotonic_ns()
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                # CID: mm/dd/yyyy  hh:mm LINE NUMBER NAME (the number formatted its way)
                match = re.match(rb"CID: \S+  \S+ \S+ (\S+)", line)
                if match:
                    seen.add(re.sub(rb"\D", b"", match.group(1)).decode(), now)

    threading.Thread(target=pump, daemon=True).start()
    return proc


def raw_client(port: int, seen: Seen) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"HELLO: IDENT: bench raw client\nHELLO: CMD: no_log\n")

    def pump() -> None:
        pending = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic_ns()
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.startswith(b"CID: "):
                    seen.add(line.split(b"*NMBR*")[1].split(b"*")[0].decode(), now)

    threading.Thread(target=pump, daemon=True).start()
    return sock


def socketio_watcher(gen: subprocess.Popen[str], seen: Seen) -> None:
    """From now on, each event the load generator's client 0 gets goes into ``seen``."""
    fanout.command(gen, {"cmd": "watch"}, 10)

    def pump() -> None:
        while True:
            try:
                event = fanout.read_json_line(gen, 3600)
            except (TimeoutError, RuntimeError):
                return
            if event.get("number"):
                seen.add(str(event["number"]), int(event["t_ns"]))

    threading.Thread(target=pump, daemon=True).start()


def open_pty() -> tuple[int, int, str]:
    """A raw pseudo-terminal: (master fd, slave fd, the slave's path for ``[[lines]] port``)."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def time_call(master: int, number: str, paths: dict[str, Seen]) -> dict[str, float]:
    """One call into the pty: RING, 0.1 s later the caller-ID block for ``number``.

    Returns the milliseconds from the block's last byte to each path having the call.
    Wait :data:`RING_GAP` (+0.15 s) after the block before the next call on the same
    pty, so that each timed block is one new call.
    """
    os.write(master, b"RING\r\n")
    time.sleep(0.1)
    os.write(master, fanout.cid_block(number))
    written = time.monotonic_ns()
    return {name: (seen.wait(number) - written) / 1e6 for name, seen in paths.items()}


def report(latencies: dict[str, list[float]], width: int = 28) -> None:
    """p50, p90, p99 and max of each path's milliseconds, one line each."""
    for name, values in latencies.items():
        print(
            f"  {name:<{width}} p50 {statistics.median(values):6.2f}  "
            f"p90 {fanout.percentile(values, 90):6.2f}  p99 {fanout.percentile(values, 99):6.2f}  "
            f"max {max(values):6.2f}  ({len(values)} calls)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--sio-clients", type=int, default=1, help="socket.io-client connections")
    args = parser.parse_args()
    if not (HERE / "fanout" / "node_modules" / "socket.io-client").is_dir():
        sys.exit("bench/ncid: run `npm ci` in bench/fanout first")
    print(f"machine: {machine(node=True)}")
    print(f"cidbridge on CPU 0; Node ({args.sio_clients} socket.io clients) and the Tcl client on CPU 1\n")
    master, slave, tty_path = open_pty()
    paths = {
        "ncid (Tcl client printed)": Seen(),
        "ncid (raw TCP line)": Seen(),
        "socket.io (client 0)": Seen(),
    }
    tcl, raw, sio = paths.values()
    with tempfile.TemporaryDirectory(prefix="cidbridge-bench-") as tmp, ExitStack() as stack:
        url, _ = stack.enter_context(
            fanout.cidbridge_server(Path(tmp), line_port=tty_path, extra=NCID_CONFIG)
        )
        port = ncid_port(url)
        client = tcl_client(port, tcl)
        stack.callback(client.kill)
        sock = raw_client(port, raw)
        stack.callback(sock.close)
        gen = stack.enter_context(fanout.loadgen(url, args.sio_clients))
        socketio_watcher(gen, sio)
        time.sleep(1.0)  # every client connected and past its start-up
        latencies: dict[str, list[float]] = {name: [] for name in paths}
        for i in range(args.calls):
            started = time.monotonic()
            for name, ms in time_call(master, f"0109{i:07d}", paths).items():
                latencies[name].append(ms)
            time.sleep(max(0.0, RING_GAP + 0.25 - (time.monotonic() - started)))
    os.close(master)
    os.close(slave)
    print("last byte into the pty -> the client has the call (ms):")
    report(latencies)
    sio_p50 = statistics.median(latencies["socket.io (client 0)"])
    for name in list(paths)[:2]:
        print(f"  ratio {name} / socket.io, p50: {statistics.median(latencies[name]) / sio_p50:.2f}")
    print(f"\nmachine after: {machine(node=True)}")


if __name__ == "__main__":
    main()
