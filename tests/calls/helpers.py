"""What the call-log tests share: making calls on the simulated modem, reading the log."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from cidbridge.sim.modem import Caller, SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.support.daemon import DaemonProcess

#: The shortest ring gap the config allows: a call ends 1 s after its last ring.
RING_GAP = 1.0


def free_port() -> int:
    """A loopback port free right now (for a daemon that must come back on the same one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(device: PtyDevice, model: SimulatedModem, number: str, name: str | None = None) -> None:
    """One call as the modem prints it (RING, caller ID, RING), at 20× speed."""
    device.play(model.call_script(Caller(number, name), rings=2), speed=20)


def log_events(daemon: DaemonProcess, after: int = 0) -> list[dict[str, Any]]:
    """Every event in the daemon's log after ``after``, via GET /api/events (paged)."""
    events: list[dict[str, Any]] = []
    while True:
        status, page = daemon.get(f"/api/events?after={after}&limit=500")
        assert status == 200, page
        if not page:
            return events
        events += page
        after = page[-1]["id"]


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded; no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)


def wait_for_end(daemon: DaemonProcess, number: str, timeout: float = 15.0) -> dict[str, Any]:
    """The logged ``end`` event of the call from ``number``."""
    return wait_until(
        lambda: next(
            (e for e in log_events(daemon) if e["type"] == "end" and e.get("number") == number), None
        ),
        timeout,
        f"end of the call from {number}",
    )


class CallStream:
    """A thread making call after call (distinct numbers) until stopped."""

    def __init__(self, device: PtyDevice, model: SimulatedModem, prefix: str = "0105555") -> None:
        self.device, self.model, self.prefix = device, model, prefix
        self.numbers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="call-stream", daemon=True)

    def __enter__(self) -> CallStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            number = f"{self.prefix}{len(self.numbers):04d}"
            self.numbers.append(number)
            call(self.device, self.model, number)
