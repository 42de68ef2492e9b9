"""Redis pub/sub (what server/cluster.py uses) against Redis Streams, for the cluster's traffic.

Starts its own redis-server on a free loopback port (no persistence, like the tests),
then for each transport: publishes N event-sized JSON messages from one client while
another receives them, and reports messages/s end to end; then restarts Redis in the
middle of a second run and reports what the receiver got.  Run by hand:

    .venv/bin/python bench/redis_transport.py [N]

Prints the machine, both transports side by side, and the ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis.asyncio as aioredis
from machine import machine

EVENT = {"v": 1, "type": "call", "call_id": "front-18bcfe56800-1", "line": "front", "number": "01012345678",
         "name": "KIM MINJI", "display": "010-1234-5678", "e164": "+821012345678", "ring_count": 1,
         "time": "2026-11-26T10:00:00.000+09:00", "node": "a"}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


async def pubsub_run(url: str, n: int, restart: Redis | None = None) -> tuple[float, int]:
    sub = aioredis.Redis.from_url(url)
    pubsub = sub.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("bench")
    got = 0

    async def receive() -> None:
        nonlocal got, pubsub
        while got < n:
            try:
                message = await pubsub.get_message(timeout=1.0)
            except Exception:
                # Resubscribe, as cidbridge's link does; what was published meanwhile is gone.
                await asyncio.sleep(0.05)
                with contextlib.suppress(Exception):
                    pubsub = sub.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe("bench")
                continue
            if message is not None:
                json.loads(message["data"])
                got += 1

    receiver = asyncio.create_task(receive())
    pub = aioredis.Redis.from_url(url)
    started = time.perf_counter()
    for i in range(n):
        if restart is not None and i == n // 2:
            restart.stop()
            restart.start()
        with contextlib.suppress(Exception):
            await pub.publish("bench", json.dumps({**EVENT, "id": i + 1}))
    try:
        await asyncio.wait_for(receiver, 5)
    except TimeoutError:
        receiver.cancel()
    elapsed = time.perf_counter() - started
    for client in (sub, pub):
        await client.aclose()
    return n / elapsed, got


async def streams_run(url: str, n: int, restart: Redis | None = None) -> tuple[float, int]:
    reader = aioredis.Redis.from_url(url)
    got, last = 0, "0-0"

    async def receive() -> None:
        nonlocal got, last
        while got < n:
            try:
                answer = await reader.xread({"bench": last}, count=500, block=1000)
            except Exception:
                await asyncio.sleep(0.05)  # reconnects on the next call, resumes from `last`
                continue
            for _, entries in answer:
                for entry_id, fields in entries:
                    json.loads(fields[b"e"])
                    last, got = entry_id, got + 1

    receiver = asyncio.create_task(receive())
    writer = aioredis.Redis.from_url(url)
    started = time.perf_counter()
    for i in range(n):
        if restart is not None and i == n // 2:
            restart.stop()
            restart.start()
        # The event id as the stream id: idempotent re-adds after a loss, ordered reads.
        with contextlib.suppress(Exception):
            payload = {"e": json.dumps({**EVENT, "id": i + 1})}
            await writer.xadd("bench", payload, id=f"{i + 1}-0", maxlen=10_000)
    try:
        await asyncio.wait_for(receiver, 5)
    except TimeoutError:
        receiver.cancel()
    elapsed = time.perf_counter() - started
    for client in (reader, writer):
        await client.aclose()
    return n / elapsed, got


async def main(n: int) -> None:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (apt install redis-server)")
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    print(f"machine: {machine(extra=f'redis {version}')}")
    print(f"{n} event-sized messages (about {len(json.dumps(EVENT))} bytes), one publisher, one receiver\n")
    rows = []
    for name, run in (("pub/sub", pubsub_run), ("streams", streams_run)):
        server = Redis()
        server.start()
        try:
            rate, got = await run(server.url, n)
            restarted = Redis()
            restarted.start()
            _, got_restart = await run(restarted.url, n, restart=restarted)
            restarted.stop()
        finally:
            server.stop()
        rows.append((name, rate, got, got_restart))
        restarted_text = f"Redis restarted half-way: received {got_restart}/{n}"
        print(f"{name:8} {rate:10,.0f} msg/s  received {got}/{n};  {restarted_text}")
    print(f"\nstreams / pub-sub throughput: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
