"""Footprint: what cidbridge costs a front-desk PC that runs it all day, next to Node.

    .venv/bin/python bench/footprint.py [--idle-seconds 60] [--clients 200]

Measured for ``cidbridge serve`` with four simulated modems on ptys (the lines open,
initialised, idle), and for the seed design's Node socket.io server
(``bench/fanout/seed_server.js``; ``cd bench/fanout && npm ci`` first, or that column
is left out):

- **start-up to ready**: process start to systemd's ``READY=1`` (cidbridge, through a
  ``$NOTIFY_SOCKET`` this script holds) or to the listening line (Node);
- **idle RSS** with no client, 5 s after ready;
- **CPU time in N s of idling** (user + system, from /proc; cidbridge's target is
  under 0.5 s a minute: no busy polling);
- **wake-ups per second while idle**: voluntary context switches over the same N s,
  from ``/proc/<pid>/task/*/status`` (``voluntary_ctxt_switches``): each is a thread
  going to sleep, to be woken again; given for the whole process and for its main
  thread (the event loop's).  Target: under 1 a second with the four lines open;
- **RSS per connected client**: (RSS with ``--clients`` socket.io-client connections −
  idle RSS) / clients, the clients in one Node process (tests/reliability/clients.js).

A benchmark, not a test: it prints figures and the machine and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402

from cidbridge.sim.modem import SimulatedModem  # noqa: E402
from cidbridge.sim.pty import PtyDevice  # noqa: E402
from tests.reliability.support import ClientFleet, ProcessProbe  # noqa: E402
from tests.support.daemon import write_config  # noqa: E402

SEED_SERVER = ROOT / "bench" / "fanout" / "seed_server.js"
LINES = 4


def voluntary_switches(pid: int) -> tuple[int, int]:
    """Voluntary context switches of every thread of ``pid``, and of its main thread."""
    total = main = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # a thread that just ended
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                count = int(line.split()[1])
                total += count
                if task.name == str(pid):
                    main = count
    return total, main


def measure(
    pid: int, url: str, started: float, ready_at: float, idle_seconds: float, clients: int
) -> dict[str, Any]:
    """The figures for one running server (see the module doc)."""
    probe = ProcessProbe(pid)
    time.sleep(5)
    idle_rss = probe.rss_mb()
    cpu_before = probe.cpu_s()
    switches_before = voluntary_switches(pid)
    time.sleep(idle_seconds)
    idle_cpu = probe.cpu_s() - cpu_before
    switches_after = voluntary_switches(pid)
    switches = [after - before for after, before in zip(switches_after, switches_before, strict=True)]
    fleet = ClientFleet(url, clients)
    try:
        fleet.wait_connected(120)
        time.sleep(3)
        with_clients = probe.rss_mb()
    finally:
        fleet.close()
    return {
        "startup_to_ready_s": round(ready_at - started, 2),
        "idle_rss_mb": round(idle_rss, 1),
        f"cpu_s_in_{idle_seconds:g}_s_idle": round(idle_cpu, 3),
        "idle_wakeups_per_s": round(switches[0] / idle_seconds, 2),
        "idle_wakeups_per_s_main_thread": round(switches[1] / idle_seconds, 2),
        "rss_kb_per_client": round((with_clients - idle_rss) * 1024 / clients, 1),
        f"rss_mb_with_{clients}_clients": round(with_clients, 1),
    }


@contextmanager
def cidbridge(folder: Path) -> Iterator[tuple[subprocess.Popen[str], str, float, float]]:
    """``cidbridge serve`` on four idle simulated modems; READY timed through sd_notify."""
    devices = [PtyDevice(SimulatedModem().receive, link=folder / f"ttyCID-{i}") for i in range(LINES)]
    config = write_config(
        folder / "footprint.toml",
        lines=[{"name": f"line{i}", "port": d.path} for i, d in enumerate(devices)],
        db=folder / "calls.sqlite",
        # All the clients come from one address at once: lift the per-address connect limit.
        server={
            "connect_burst": 100_000,
            "connect_rate": 10_000.0,
            # Every client comes from 127.0.0.1: lift the per-address connection cap.
            "max_connections_per_address": 100_000,
            "max_connections": 100_000,
        },
        log={"level": "warning"},
    )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(folder / "notify.sock"))
    notify.settimeout(60)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cidbridge", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "NOTIFY_SOCKET": str(folder / "notify.sock")},
    )
    try:
        while b"READY=1" not in notify.recv(4096):
            pass
        ready_at = time.monotonic()
        assert proc.stdout is not None
        url = proc.stdout.readline().split("panel at ", 1)[1].strip()
        yield proc, url, started, ready_at
    finally:
        proc.terminate()
        proc.wait(15)
        notify.close()
        for device in devices:
            device.close()


@contextmanager
def node_seed_server() -> Iterator[tuple[subprocess.Popen[str], str, float, float]]:
    """The seed design's Node socket.io server, timed to its "listening" line."""
    started = time.monotonic()
    proc = subprocess.Popen(
        ["node", str(SEED_SERVER)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]
        yield proc, f"http://127.0.0.1:{port}/", started, time.monotonic()
    finally:
        proc.terminate()
        proc.wait(15)


def run(name: str, server: Callable[[], Any], idle_seconds: float, clients: int) -> dict[str, Any]:
    print(f"{name}: starting, idling {idle_seconds:g} s, then {clients} clients …", flush=True)
    with server() as (proc, url, started, ready_at):
        return measure(proc.pid, url, started, ready_at, idle_seconds, clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if shutil.which("node") is None:
        sys.exit("footprint: node is not installed (apt-get install nodejs npm); it runs the clients")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cidbridge-footprint-") as folder:
        results[f"cidbridge ({LINES} lines open)"] = run(
            "cidbridge", lambda: cidbridge(Path(folder)), args.idle_seconds, args.clients
        )
    if (SEED_SERVER.parent / "node_modules" / "socket.io").is_dir():
        results["Node socket.io 4 (seed server, no lines)"] = run(
            "node", node_seed_server, args.idle_seconds, args.clients
        )
    else:
        print("node: skipped; run `cd bench/fanout && npm ci` for the Node column")

    print(f"\nmachine: {machine(node=True)}\n")
    names = list(results)
    keys = list(next(iter(results.values())))
    width = max(len(k) for k in keys)
    print(f"{'':{width}}  " + "  ".join(f"{n:>40}" for n in names))
    for key in keys:
        print(f"{key:{width}}  " + "  ".join(f"{results[n].get(key)!s:>40}" for n in names))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(node=True), "results": results}, indent=2))


if __name__ == "__main__":
    main()
