"""Where a connected Socket.IO client's memory goes in ``cidbridge serve``.

    .venv/bin/python bench/client_memory.py [--clients 500] [--no-trace] [--frames 1] [--top 25]

(``cd bench/fanout && npm ci`` first: the clients are ``bench/fanout/loadgen.js``, N real
socket.io-client websocket connections in one Node process.)

The daemon runs in this process, on uvloop as ``cidbridge serve`` runs it, with no
lines; this script waits until it is ready, takes a baseline, connects the clients,
waits for them to settle, and reports per client:

- **RSS** (VmRSS from /proc) after minus before, / N: what bench/fanout/run.py's
  ``KiB/client`` column measures (run with ``--no-trace`` for the figure without
  tracemalloc's own bookkeeping, which adds to RSS);
- **Python allocations** (tracemalloc, the difference of two snapshots), grouped by
  file and line, or by traceback with ``--frames N`` (N > 1), top ``--top`` sites; the
  rest of the RSS growth is memory Python does not allocate (uvloop/libuv, OpenSSL,
  the kernel's socket buffers are not in RSS) and malloc's and pymalloc's overhead;
- **objects** (``gc.get_objects()``, container objects only) that grew, by type, per client.

A benchmark tool, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import linecache
import logging
import os
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cidbridge import config as config_module  # noqa: E402
from cidbridge.daemon import Daemon  # noqa: E402

LOADGEN = ROOT / "bench" / "fanout" / "loadgen.js"
TOKEN = "bench-token-0123456789abcdef"


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def object_counts() -> collections.Counter[str]:
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def write_config(folder: Path) -> Path:
    path = folder / "memory.toml"
    path.write_text(
        "\n".join(
            [
                "[server]",
                'host = "127.0.0.1"',
                "port = 0",
                f'token = "{TOKEN}"',
                # Every client comes from 127.0.0.1 at once: lift the per-address limits.
                "connect_burst = 1000000",
                "connect_rate = 1000000.0",
                "max_connections = 1000000",
                "max_connections_per_address = 1000000",
                "[store]",
                f'path = "{folder / "calls.sqlite"}"',
                "[log]",
                'level = "warning"',
            ]
        )
        + "\n"
    )
    return path


def short(filename: str) -> str:
    for prefix in sorted(sys.path, key=len, reverse=True):
        if prefix and filename.startswith(prefix + os.sep):
            return filename[len(prefix) + 1 :]
    return filename


async def measure(daemon: Daemon, ready: asyncio.Event, args: argparse.Namespace) -> None:
    await ready.wait()
    await asyncio.sleep(0.5)
    url = daemon.url.rstrip("/")
    gc.collect()
    counts_before = object_counts()
    before = tracemalloc.take_snapshot() if args.trace else None
    rss_before = rss_kib()
    options = json.dumps({"token": TOKEN, "trigger": f"{url}/api/cti/incoming-call"})
    gen = await asyncio.create_subprocess_exec(
        "node",
        str(LOADGEN),
        url,
        str(args.clients),
        options,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert gen.stdout is not None and gen.stdin is not None
        line = await asyncio.wait_for(gen.stdout.readline(), 300)
        status = json.loads(line)
        if not status.get("ready"):
            raise SystemExit(f"client_memory: the clients did not connect: {status}")
        await asyncio.sleep(args.settle)
        gc.collect()
        rss_after = rss_kib()
        after = tracemalloc.take_snapshot() if args.trace else None
        counts_after = object_counts()
        report(args, daemon, rss_before, rss_after, before, after, counts_before, counts_after)
        gen.stdin.write(b'{"cmd": "exit"}\n')
        await gen.stdin.drain()
        await asyncio.wait_for(gen.wait(), 30)
    finally:
        if gen.returncode is None:
            gen.kill()
            await gen.wait()
        daemon.stop()


def report(
    args: argparse.Namespace,
    daemon: Daemon,
    rss_before: int,
    rss_after: int,
    before: tracemalloc.Snapshot | None,
    after: tracemalloc.Snapshot | None,
    counts_before: collections.Counter[str],
    counts_after: collections.Counter[str],
) -> None:
    n = args.clients
    clients = daemon.broadcaster.clients
    print(f"{n} clients connected ({clients} in the live room)")
    per_client = (rss_after - rss_before) / n
    print(f"RSS: {rss_before:,} KiB before, {rss_after:,} KiB after: {per_client:.1f} KiB/client")
    if before is not None and after is not None:
        key = "traceback" if args.frames > 1 else "lineno"
        diffs = after.compare_to(before, key)
        traced = sum(d.size_diff for d in diffs)
        print(
            f"tracemalloc: {traced / n / 1024:.1f} KiB/client traced by Python's allocators "
            f"(the rest of RSS: {((rss_after - rss_before) * 1024 - traced) / n / 1024:.1f} KiB/client)"
        )
        print(f"\ntop {args.top} allocation sites, bytes and blocks per client:")
        for diff in diffs[: args.top]:
            frames = list(diff.traceback)
            head = frames[-1] if key == "traceback" else frames[0]
            where = f"{short(head.filename)}:{head.lineno}"
            source = linecache.getline(head.filename, head.lineno).strip()[:70]
            print(f"{diff.size_diff / n:9.0f} B {diff.count_diff / n:6.1f}  {where}  {source}")
            if key == "traceback":
                for frame in reversed(frames[:-1]):
                    print(f"{'':20}<- {short(frame.filename)}:{frame.lineno}")
        by_file = collections.Counter[str]()
        for diff in diffs:
            by_file[short(diff.traceback[-1].filename)] += diff.size_diff
        print("\nby file, bytes per client:")
        for filename, size in by_file.most_common(args.top):
            print(f"{size / n:9.0f} B  {filename}")
    grown = counts_after.copy()
    grown.subtract(counts_before)
    print("\nobjects tracked by the garbage collector, per client:")
    for name, count in grown.most_common(args.top):
        if count / n >= 0.5:
            print(f"{count / n:7.2f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--no-trace", dest="trace", action="store_false", help="RSS and objects only")
    parser.add_argument("--frames", type=int, default=1, help="group by tracebacks this deep (>1)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after connecting")
    args = parser.parse_args()
    if not (LOADGEN.parent / "node_modules" / "socket.io-client").is_dir():
        sys.exit("client_memory: run `npm ci` in bench/fanout first")
    logging.basicConfig(level=logging.WARNING)
    if args.trace:
        tracemalloc.start(max(1, args.frames))
    with tempfile.TemporaryDirectory(prefix="cidbridge-memory-") as folder:
        cfg = config_module.load(write_config(Path(folder)))
        ready = asyncio.Event()
        daemon = Daemon(cfg, on_ready=lambda url: ready.set())

        async def both() -> None:
            task = asyncio.create_task(measure(daemon, ready, args))
            try:
                await daemon.serve()
            finally:
                if not task.done():
                    task.cancel()
            await asyncio.gather(task, return_exceptions=False)

        try:
            import uvloop

            uvloop.run(both())
        except ImportError:
            asyncio.run(both())


if __name__ == "__main__":
    main()
