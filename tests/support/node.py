"""The real ``socket.io-client`` v4, under Node, as a test peer (tests/js/client.js)."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parent.parent / "js"


def node_or_skip() -> str:
    """Path of ``node``, or skip the test saying what is missing and how to get it."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm)")
    if not (JS / "node_modules" / "socket.io-client").is_dir():
        pytest.skip("socket.io-client is not installed (cd tests/js && npm ci)")
    return node


class NodeClient:
    """One socket.io-client connection; every line it prints lands in :attr:`seen`."""

    def __init__(self, url: str, **options: Any) -> None:
        node = node_or_skip()
        self.proc = subprocess.Popen(
            [node, str(JS / "client.js"), url, json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.seen: list[dict[str, Any]] = []
        self._new: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._new.put(json.loads(line))

    def _drain(self, timeout: float) -> None:
        try:
            item = self._new.get(timeout=timeout)
        except queue.Empty:
            return
        self.seen.append(item)
        while True:
            try:
                self.seen.append(self._new.get_nowait())
            except queue.Empty:
                return

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        """The first line (already seen or coming) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self.seen:
                if predicate(item):
                    return item
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching line within {timeout}s; saw {self.seen[-10:]}")
            self._drain(min(left, 0.2))

    def wait_connected(self, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_for(lambda m: m["ev"] in ("connect", "connect_error"), timeout)

    def events(self) -> list[dict[str, Any]]:
        self._drain(0)
        return [m["data"] for m in self.seen if m["ev"] == "event"]

    def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        return self.wait_for(lambda m: m["ev"] == "event" and predicate(m["data"]), timeout)["data"]

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
