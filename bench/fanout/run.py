"""Fan-out benchmark: cidbridge against the seed design's Node socket.io server.

    .venv/bin/python bench/fanout/run.py [--clients 1,100,1000,3000] [--quick]

(``cd bench/fanout && npm ci`` first.)  For each N, each server in turn is started
alone, pinned to CPU 0; one Node load generator (``loadgen.js``, N socket.io-client
websocket connections) runs pinned to CPU 1 and triggers calls by HTTP POST, the
seed's way in.  Reported per N and server: median time from the trigger to the
first and to the last client receiving a call, deliveries/s for bursts of K calls,
lost events, and server memory per client.  Then serial-to-browser latency: the
last byte of a caller-ID block written into a pty → the event callback in a client,
for cidbridge reading the pty itself and for the seed path (``seed_bridge.js``
reading the pty and POSTing to ``seed_server.js``).

This is a benchmark, not a test: it prints figures and ratios and asserts nothing.
The machine is printed with them; compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
from machine import machine  # noqa: E402  (bench/machine.py, shared by every bench)

TOKEN = "bench-token-0123456789abcdef"
NODE = shutil.which("node") or "node"
#: The call log's ``[store] synchronous`` for cidbridge (``--store-sync``).
STORE_SYNC = ["normal"]
#: cidbridge's ring gap in the latency run: the smallest the config allows.
RING_GAP = 1.0
#: Tokens the load generator posts calls under, in turn: cidbridge lets one token post
#: 50 at once and 20 a second (server/ingest.py), and each call takes three posts.
POST_TOKENS = [f"bench-post-{i}-0123456789abcdef" for i in range(8)]


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """``argv`` run on one CPU (taskset), when there are two CPUs to separate."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def read_json_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The next JSON line ``proc`` prints (skipping others), within ``timeout`` seconds."""
    lines = _LINES.get(proc.pid)
    if lines is None:
        lines = _LINES[proc.pid] = queue.Queue()
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            raise RuntimeError(f"process {proc.args} exited ({proc.poll()})")
        if line.startswith("{"):
            return json.loads(line)
    raise TimeoutError(f"no output from {proc.args} within {timeout}s")


_LINES: dict[int, queue.Queue[str | None]] = {}


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the two servers -------------------------------------------------------------------


@contextmanager
def cidbridge_server(
    workdir: Path, *, line_port: str | None = None, extra: Sequence[str] = ()
) -> Iterator[tuple[str, int]]:
    """``cidbridge serve`` on CPU 0; yields (base URL, pid).  ``extra``: config lines appended."""
    config = workdir / "bench.toml"
    text = [
        "[server]",
        'host = "127.0.0.1"',
        "port = 0",
        f'token = "{TOKEN}"',
        "tokens = { " + ", ".join(f'p{i} = "{token}"' for i, token in enumerate(POST_TOKENS)) + " }",
        # One address opens thousands of connections here: lift the per-address limit.
        "connect_burst = 1000000",
        "connect_rate = 1000000.0",
        # ... and the connection caps (the total still fits the open-file limit, see README).
        "max_connections = 1000000",
        "max_connections_per_address = 1000000",
        "[store]",
        f'path = "{workdir / "calls.sqlite"}"',
        f'synchronous = "{STORE_SYNC[0]}"',
        "[log]",
        'level = "warning"',
    ]
    if line_port:
        text += [
            "[calls]",
            f"ring_gap = {RING_GAP}",
            "[[lines]]",
            'name = "bench"',
            f'port = "{line_port}"',
            'device = "box"',
            'format = "modem-text"',
        ]
    text += extra
    config.write_text("\n".join(text) + "\n")
    proc = subprocess.Popen(
        pinned(0, [sys.executable, "-m", "cidbridge", "serve", "--config", str(config)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "panel at" in line:
                yield line.rsplit("panel at", 1)[1].strip().rstrip("/"), proc.pid
                return
            if not line and proc.poll() is not None:
                break
        raise RuntimeError("cidbridge did not start")
    finally:
        stop(proc)


@contextmanager
def node_server() -> Iterator[tuple[str, int]]:
    """The seed's Node socket.io server on CPU 0; yields (base URL, pid)."""
    proc = subprocess.Popen(
        pinned(0, [NODE, str(HERE / "seed_server.js")]), stdout=subprocess.PIPE, text=True
    )
    try:
        port = read_json_line(proc, 20)["port"]
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        stop(proc)


@contextmanager
def loadgen(url: str, clients: int, *, event_shaped: bool = False) -> Iterator[subprocess.Popen[str]]:
    """The load generator; ``event_shaped`` for the seed server (see loadgen.js)."""
    options = {
        "token": TOKEN,
        "trigger": f"{url}/api/cti/incoming-call",
        "post_tokens": POST_TOKENS,
        "event_shaped": event_shaped,
    }
    proc = subprocess.Popen(
        pinned(
            1,
            [
                NODE,
                "--max-old-space-size=4096",
                str(HERE / "loadgen.js"),
                url,
                str(clients),
                json.dumps(options),
            ],
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = read_json_line(proc, 120)
        if not ready.get("ready"):
            raise RuntimeError(f"load generator failed: {ready}")
        yield proc
    finally:
        stop(proc)


def command(proc: subprocess.Popen[str], cmd: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(cmd) + "\n")
    proc.stdin.flush()
    return read_json_line(proc, timeout)


# -- fan-out -----------------------------------------------------------------------------


def fanout_run(server: str, clients: int, args: argparse.Namespace, base: int) -> dict[str, Any]:
    """One server, N clients: singles, bursts, memory."""
    with tempfile.TemporaryDirectory(prefix="cidbridge-bench-") as tmp:
        serve = cidbridge_server(Path(tmp)) if server == "cidbridge" else node_server()
        with serve as (url, pid):
            time.sleep(0.5)  # let the server settle before the baseline
            before = rss_kib(pid)
            with loadgen(url, clients, event_shaped=server == "node") as gen:
                time.sleep(0.5)
                after = rss_kib(pid)
                singles, lost = [], 0
                for i in range(args.trials):
                    result = command(gen, {"cmd": "trial", "k": 1, "base": base + i, "timeout_ms": 20_000})
                    singles.append(result)
                    lost += result["expected"] - result["delivered"]
                    time.sleep(args.gap)
                bursts = []
                for i in range(args.bursts):
                    start = base + 1000 + i * args.burst
                    result = command(
                        gen, {"cmd": "trial", "k": args.burst, "base": start, "timeout_ms": 60_000}, 90
                    )
                    bursts.append(result)
                    lost += result["expected"] - result["delivered"]
                    time.sleep(args.gap * 4)
                emit_ms = mean_emit_ms(url) if server == "cidbridge" else None
    done = [r for r in singles if r["last_ms"] is not None]
    rates = [clients * args.burst / (r["last_ms"] / 1000) for r in bursts if r["last_ms"]]
    return {
        "first_ms": statistics.median(r["first_ms"] for r in done) if done else None,
        "last_ms": statistics.median(r["last_ms"] for r in done) if done else None,
        "last_p90_ms": sorted(r["last_ms"] for r in done)[int(0.9 * (len(done) - 1))] if done else None,
        "burst_per_s": statistics.median(rates) if rates else None,
        "lost": lost,
        "kib_per_client": (after - before) / clients,
        "emit_ms": emit_ms,
    }


def mean_emit_ms(url: str) -> float | None:
    """cidbridge's own mean time to hand one event to every client (its /metrics)."""
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    values = dict(
        line.split(" ", 1) for line in text.splitlines() if line.startswith("cidbridge_emit_seconds_")
    )
    count = float(values.get("cidbridge_emit_seconds_count", 0))
    return float(values["cidbridge_emit_seconds_sum"]) / count * 1000 if count else None


# -- serial to browser --------------------------------------------------------------------


def cid_block(number: str) -> bytes:
    return f"\r\nDATE = 1126\r\nTIME = 0930\r\nNMBR = {number}\r\nNAME = BENCH\r\n\r\n".encode()


def latency_run(path: str, calls: int) -> list[float]:
    """Milliseconds from the last byte written to the pty to client 0's callback, per call.

    Each call is a RING, then 0.1 s later the caller-ID block (timed), then a pause
    longer than cidbridge's ring gap (1 s here) so the call has ended before the next
    one: every timed block is exactly one new call, as at a real front desk.
    """
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    tty_path = os.ttyname(slave)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cidbridge-bench-") as tmp, ExitStack() as stack:
        if path == "cidbridge":
            url, _ = stack.enter_context(cidbridge_server(Path(tmp), line_port=tty_path))
        else:
            url, _ = stack.enter_context(node_server())
            bridge = subprocess.Popen(
                pinned(0, [NODE, str(HERE / "seed_bridge.js"), tty_path, url]),
                stdout=subprocess.PIPE,
                text=True,
            )
            stack.callback(stop, bridge)
            assert bridge.stdout is not None and bridge.stdout.readline().strip() == "ready"
        gen = stack.enter_context(loadgen(url, 1))
        command(gen, {"cmd": "watch"})
        for i in range(calls):
            number = f"0109{i:07d}"
            os.write(master, b"RING\r\n")
            time.sleep(0.1)
            os.write(master, cid_block(number))
            written = time.monotonic_ns()
            while True:
                seen = read_json_line(gen, 10)
                if seen.get("number") == number:
                    latencies.append((int(seen["t_ns"]) - written) / 1e6)
                    break
            time.sleep(max(0.0, RING_GAP + 0.15 - (time.monotonic_ns() - written) / 1e9))
    os.close(master)
    os.close(slave)
    return latencies


def commit_cost(synchronous: str, samples: int = 200) -> list[float]:
    """Milliseconds per call-log commit on this disk (cidbridge commits before it sends)."""
    sys.path.insert(0, str(ROOT))
    from cidbridge.store import CallLog

    times = []
    with (
        tempfile.TemporaryDirectory(prefix="cidbridge-bench-") as tmp,
        CallLog(Path(tmp) / "c.sqlite", synchronous=synchronous) as log,
    ):
        for i in range(samples):
            event = {"time": "2026-01-01T09:00:00.000+09:00", "type": "call", "call_id": f"c{i}", "line": "x"}
            started = time.perf_counter()
            log.append(event)
            times.append((time.perf_counter() - started) * 1000)
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- report ---------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,100,1000,3000")
    parser.add_argument("--trials", type=int, default=15, help="single-call trials per N")
    parser.add_argument("--burst", type=int, default=20, help="calls per burst (K)")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between trials")
    parser.add_argument("--latency-calls", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a smoke run: N=1,100, few trials")
    parser.add_argument(
        "--store-sync",
        choices=("normal", "full"),
        default="normal",
        help="cidbridge's [store] synchronous: normal (the default) or full (an fsync per event)",
    )
    args = parser.parse_args()
    STORE_SYNC[0] = args.store_sync
    if args.quick:
        args.clients, args.trials, args.bursts, args.latency_calls = "1,100", 5, 1, 10
    if not (HERE / "node_modules" / "socket.io").is_dir():
        sys.exit("bench/fanout: run `npm ci` in bench/fanout first")
    print(f"machine: {machine(node=True)}")
    print(f"cidbridge call log: synchronous={args.store_sync.upper()}")
    print("server pinned to CPU 0, load generator (one Node process) to CPU 1\n")
    header = ("N", "server", "first ms", "last ms", "last p90", "burst/s", "lost", "KiB/client", "emit ms")
    print("{:>6} {:<10} {:>9} {:>9} {:>9} {:>10} {:>5} {:>10} {:>8}".format(*header))
    ratios = []
    base = 1_000_000
    for clients in (int(n) for n in args.clients.split(",")):
        rows = {}
        for server in ("cidbridge", "node"):
            base += 10_000
            rows[server] = row = fanout_run(server, clients, args, base)
            print(
                f"{clients:>6} {server:<10} {fmt(row['first_ms'], 2):>9} {fmt(row['last_ms'], 2):>9} "
                f"{fmt(row['last_p90_ms'], 2):>9} {fmt(row['burst_per_s'], 0):>10} {row['lost']:>5} "
                f"{fmt(row['kib_per_client'], 1):>10} {fmt(row['emit_ms'], 3):>8}",
                flush=True,
            )
        ours, theirs = rows["cidbridge"], rows["node"]
        if ours["last_ms"] and theirs["last_ms"]:
            ratios.append(
                (
                    clients,
                    ours["last_ms"] / theirs["last_ms"],
                    (ours["burst_per_s"] or 0) / (theirs["burst_per_s"] or 1),
                )
            )
    print(
        "\nratio cidbridge / node: last-client time (lower is better), burst deliveries/s (higher is better)"
    )
    for clients, last, burst in ratios:
        print(f"  N={clients:<5} last {last:.2f}   burst {burst:.2f}")
    print("\nserial-to-browser latency, last byte into the pty -> client callback (ms):")
    for path in ("cidbridge", "seed") if args.latency_calls else ():
        values = latency_run(path, args.latency_calls)
        print(
            f"  {path:<10} p50 {percentile(values, 50):.2f}  p99 {percentile(values, 99):.2f}  "
            f"max {max(values):.2f}  ({len(values)} calls)",
            flush=True,
        )
    commits = commit_cost(args.store_sync)
    print(
        f"\ncall-log commit (SQLite WAL, synchronous={args.store_sync.upper()}) on this disk: "
        f"p50 {percentile(commits, 50):.2f} ms, p99 {percentile(commits, 99):.2f} ms "
        "(part of every cidbridge time above, none of node's)"
    )
    print(f"\nmachine after: {machine(node=True)}")


if __name__ == "__main__":
    main()
