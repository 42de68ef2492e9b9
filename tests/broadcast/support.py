"""Helpers for the broadcaster's tests: HTTP posts, a raw Socket.IO peer, Redis, an in-process daemon."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from cidbridge.config import Config
from cidbridge.core.tracker import CallEvent
from cidbridge.daemon import Daemon

INGEST = "/api/cti/incoming-call"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    url: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    insecure: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: status, headers (lower-case names), body.  Never raises on 4xx/5xx."""
    request = urllib.request.Request(url.rstrip("/") + path, data=body, method=method, headers=headers or {})
    context = ssl._create_unverified_context() if insecure else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def post_call(url: str, call: Any, token: str | None, **headers: str) -> tuple[int, Any]:
    """POST a call to the ingest endpoint; (status, decoded JSON answer)."""
    all_headers = {"Content-Type": "application/json", **headers}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    body = call if isinstance(call, bytes) else json.dumps(call).encode()
    status, _, answer = http(url, INGEST, method="POST", body=body, headers=all_headers)
    return status, json.loads(answer or b"null")


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded; no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout}s")
        time.sleep(0.05)


class RawSocketIO:
    """A bare Engine.IO/Socket.IO v4 client over WebSocket: sees every frame the server sends."""

    def __init__(self, url: str) -> None:
        ws_url = url.replace("http://", "ws://").rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        self._connection = connect(ws_url, compression=None, open_timeout=10)
        self.ws: ClientConnection = self._connection.__enter__()
        opening = self.ws.recv(timeout=10)
        assert isinstance(opening, str) and opening.startswith("0"), opening
        self.frames: list[str] = []

    def send(self, text: str) -> None:
        self.ws.send(text)

    def connect(self, auth: dict[str, Any]) -> None:
        self.send("40" + json.dumps(auth))

    def receive_until(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        """Frames up to the first matching one (pings answered); all kept in :attr:`frames`."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            assert isinstance(frame, str)
            if frame == "2":
                self.send("3")
                continue
            self.frames.append(frame)
            if predicate(frame):
                return frame

    def close(self) -> None:
        self._connection.__exit__(None, None, None)


class RedisServer:
    """A real ``redis-server`` on a free loopback port, no persistence; restartable."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, "redis-server answering PING")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class InProcessDaemon:
    """The real :class:`Daemon` on its own event loop in a thread, for tests that reach inside."""

    def __init__(self, config: Config) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.url = ""
        self.error: BaseException | None = None
        self.daemon = Daemon(config, on_ready=self._on_ready)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(20) or self.error is not None:
            raise RuntimeError(f"in-process daemon did not start: {self.error!r}")

    def _on_ready(self, url: str) -> None:
        self.url = url
        self.ready.set()

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.daemon.serve())
        except BaseException as exc:  # reported by __init__ or stop()
            self.error = exc
            self.ready.set()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run ``coro`` on the daemon's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def publish_calls(self, count: int, start: int = 0) -> list[int]:
        """Commit ``count`` synthetic calls through the hub; their ids."""

        async def publish() -> list[int]:
            ids = []
            for i in range(start, start + count):
                event = CallEvent("call", f"t-{i}", "test", number=f"0101234{i:04d}")
                ids.append((await self.daemon.hub.publish(event))["id"])
            return ids

        return self.run(publish(), timeout=60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.daemon.stop)
        self.thread.join(15)
