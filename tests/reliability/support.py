"""Real parts for the reliability suite: a fleet of Node clients, process probes, the log.

Everything here observes the daemon from outside, through its public behaviour:
Socket.IO events, ``/healthz``, the SQLite call log (read-only), and ``/proc`` for
memory, file descriptors and CPU time.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cidbridge.core.formats.modem_text import encode_block
from tests.support.node import node_or_skip

HERE = Path(__file__).resolve().parent


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def cid_block(number: str, name: str | None = None) -> bytes:
    """One caller-ID block as a modem prints it, ending with the blank line that completes it."""
    return encode_block(number, name, month=11, day=26, hour=9, minute=30) + b"\r\n"


class ClientFleet:
    """``count`` socket.io-client connections in one Node process (``clients.js``)."""

    def __init__(self, url: str, count: int, **options: Any) -> None:
        node = node_or_skip()
        self.count = count
        self.proc = subprocess.Popen(
            [node, str(HERE / "clients.js"), url, json.dumps({"count": count, **options})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(json.loads(line))

    def _next(self, key: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if key in item or item.get("ev") == key:
                return item
        stderr = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise TimeoutError(f"client fleet: no {key!r} within {timeout:g} s {stderr}")

    def wait_connected(self, timeout: float = 60.0) -> None:
        self._next("connected", timeout)

    def report(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("report\n")
        self.proc.stdin.flush()
        return self._next("report", timeout)["report"]

    def reset_latencies(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("reset\n")
        self.proc.stdin.flush()
        self._next("reset", 30)

    def wait_all_received(self, last_id: int, timeout: float) -> list[dict[str, Any]]:
        """Poll reports until every client has seen ``last_id``; return the last report."""
        report: list[dict[str, Any]] = []

        def done() -> bool:
            nonlocal report
            report = self.report()
            return all((c["last"] or 0) >= last_id for c in report)

        try:
            wait_until(done, timeout, f"every client receiving event {last_id}", interval=1.0)
        except TimeoutError:
            behind = [(c["index"], c["last"]) for c in report if (c["last"] or 0) < last_id]
            raise TimeoutError(f"clients behind event {last_id}: {behind[:10]}") from None
        return report

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class ProcessProbe:
    """Memory, file descriptors and CPU time of one process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks  # utime + stime


class CallLogReader:
    """Read-only queries on the daemon's SQLite call log while it runs (WAL allows it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def scalar(self, sql: str, *args: Any) -> Any:
        rows = self.query(sql, *args)
        return rows[0][0] if rows else None

    def max_id(self) -> int:
        return self.scalar("SELECT coalesce(max(id), 0) FROM events")


def healthz_line(daemon: Any, line: str) -> str | None:
    """The state /healthz reports for ``line`` (None while the daemon does not answer)."""
    try:
        _, status = daemon.get("/healthz")
    except OSError:
        return None
    return status.get("lines", {}).get(line, {}).get("state")


class RawSocketIO:
    """A hand-made Socket.IO client on a bare TCP socket, for clients that misbehave.

    It speaks just enough of the protocols (an HTTP upgrade, RFC 6455 frames, Engine.IO
    v4 and Socket.IO v5 packets) to connect, and then does what real clients must not:
    stop reading, send oversized or malformed packets.
    """

    def __init__(self, url: str, *, receive_buffer: int | None = None, timeout: float = 10.0) -> None:
        host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self.sock = socket.socket()
        if receive_buffer is not None:
            # Before connect, so the TCP window is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))

    def send(self, payload: bytes | str, opcode: int = 1) -> None:
        """One masked frame (clients must mask): text by default, ``opcode=2`` for binary."""
        data = payload.encode() if isinstance(payload, str) else payload
        size = len(data)
        header = bytes([0x80 | opcode])
        if size < 126:
            header += bytes([0x80 | size])
        elif size < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        keystream = (mask * (size // 4 + 1))[:size]
        masked = (int.from_bytes(data, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")
        self.sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def receive(self) -> tuple[int, bytes]:
        """The next frame as ``(opcode, payload)``; EOFError when the server has closed."""
        first, second = self._read(2)
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read(8))[0]
        return first & 0x0F, self._read(size)

    def connect(self, auth: dict[str, Any] | None = None) -> str:
        """Engine.IO open, then Socket.IO CONNECT; returns the Socket.IO sid."""
        opcode, packet = self.receive()
        assert opcode == 1 and packet.startswith(b"0"), packet
        self.send("40" + (json.dumps(auth) if auth else ""))
        while True:
            opcode, packet = self.receive()
            if packet.startswith(b"40"):
                return json.loads(packet[2:])["sid"]
            if packet.startswith(b"44"):
                raise ConnectionRefusedError(packet.decode())

    def closed_by_server(self, timeout: float) -> bool:
        """Read (and discard) until the server closes; False if it is still open after ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                opcode, _ = self.receive()
                if opcode == 8:
                    return True
        except TimeoutError:
            return False
        except (EOFError, ConnectionError):
            return True

    def close(self) -> None:
        self.sock.close()
