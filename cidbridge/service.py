"""What systemd sees of the daemon: readiness, status, the watchdog, and reloads.

systemd's notify protocol is one datagram per message, sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (``sd_notify(3)``): ``READY=1`` once the service works,
``STATUS=…`` for ``systemctl status``, ``WATCHDOG=1`` at least every
``$WATCHDOG_USEC`` microseconds, ``RELOADING=1``/``STOPPING=1`` around those phases.
It is a few lines, so cidbridge speaks it itself instead of pulling in a library.
Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.

What a reload changes is :mod:`cidbridge.reload`'s (one table of config keys); the
name :class:`ReloadPlan` stays importable from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from cidbridge.reload import ReloadPlan

__all__ = [
    "EventLogSink",
    "Notifier",
    "ReloadPlan",
    "StatusSink",
    "describe",
    "keep_alive",
    "keep_status",
    "watchdog_interval",
]

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages to ``address`` (``$NOTIFY_SOCKET`` by default)."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._last_status = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments as one message; False if it could not be sent.

        Never raises: losing a status line must not take the daemon down (systemd's
        own ``sd_notify`` behaves the same way).
        """
        if self.address is None:
            return False
        # "@name" is a socket in the abstract namespace (Linux): a leading NUL byte.
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(assignments).encode(), target)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """Update ``systemctl status``'s Status line (only when it changed)."""
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}", "STATUS=reloading")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between watchdog pings systemd asks for (half of ``WatchdogSec=``), or None."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (we were started by a wrapper)
    return int(usec) / 1_000_000 / 2


async def keep_alive(notifier: Notifier, interval: float, status: Callable[[], str]) -> None:
    """Ping the watchdog (and refresh STATUS) every ``interval`` seconds, from the event loop.

    The ping runs on the loop on purpose: if the loop hangs (a blocking call, a busy
    loop), the pings stop and systemd restarts the service.
    """
    while True:
        notifier.watchdog()
        with contextlib.suppress(Exception):
            notifier.status(status())
        await asyncio.sleep(interval)


async def keep_status(notifier: Notifier, interval: float, status: Callable[[], str]) -> None:
    """Refresh STATUS every ``interval`` seconds (for a service without a watchdog)."""
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(Exception):
            notifier.status(status())


class StatusSink:
    """A hub sink that updates STATUS= as soon as a line goes up or down."""

    def __init__(self, notifier: Notifier, status: Callable[[], str]) -> None:
        self.notifier = notifier
        self.status = status

    async def deliver(self, event: Mapping[str, object]) -> None:
        if event.get("type") == "line":
            self.notifier.status(self.status())


class EventLogSink:
    """A hub sink that logs every committed event in full, at debug level only.

    Caller numbers and names are personal data: at info level and above the log
    names lines, event types and ids, never who called (tests/service/test_logging.py).
    """

    async def deliver(self, event: Mapping[str, object]) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("event %s: %s", event.get("id"), dict(event))


def describe(lines: Mapping[str, Mapping[str, object]], clients: int) -> str:
    """The STATUS= line: ``2/2 lines up; 3 clients`` or which lines are down and why."""
    down = {name: info for name, info in lines.items() if info.get("state") != "up"}
    text = f"{len(lines) - len(down)}/{len(lines)} lines up; {clients} client{'s' if clients != 1 else ''}"
    for name, info in down.items():
        text += f"; {name} {info.get('state')}: {info.get('reason') or 'starting'}"
    return text
