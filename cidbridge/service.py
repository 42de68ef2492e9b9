"""What systemd sees of the daemon: readiness, status, the watchdog, and reloads.

systemd's notify protocol is one datagram per message, sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (``sd_notify(3)``): ``READY=1`` once the service works,
``STATUS=…`` for ``systemctl status``, ``WATCHDOG=1`` at least every
``$WATCHDOG_USEC`` microseconds, ``RELOADING=1``/``STOPPING=1`` around those phases.
It is a few lines, so cidbridge speaks it itself instead of pulling in a library.
Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.

:class:`ReloadPlan` decides what a changed configuration means for a running
daemon: what applies live and what needs a restart.  The daemon applies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cidbridge.config import Config, LineConfig

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


# -- reload --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a new configuration changes in a running daemon.

    Applied live: tokens (clients of a removed token are disconnected and must
    reconnect with a valid one), CORS origins, the event name, the region, the
    replay size, the log level, and the lines: added lines start, removed lines stop,
    changed lines restart; untouched lines keep their port open.  Needs a restart:
    the listening address (``server.host``/``port``), the call log path and sync mode.
    """

    new: Config
    lines_added: tuple[LineConfig, ...] = ()
    lines_removed: tuple[str, ...] = ()
    lines_changed: tuple[LineConfig, ...] = ()
    tokens_revoked: bool = False
    #: Keys that changed but only take effect after a restart.
    needs_restart: tuple[str, ...] = ()
    changed: tuple[str, ...] = field(default=())

    @classmethod
    def between(cls, old: Config, new: Config) -> ReloadPlan:
        old_lines = {line.name: line for line in old.lines}
        new_lines = {line.name: line for line in new.lines}
        added = tuple(line for name, line in new_lines.items() if name not in old_lines)
        removed = tuple(name for name in old_lines if name not in new_lines)
        changed_lines = tuple(
            line for name, line in new_lines.items() if name in old_lines and old_lines[name] != line
        )
        # Going from "no token" to tokens revokes the open door, too.
        revoked = (not old.server.tokens and bool(new.server.tokens)) or any(
            new.server.tokens.get(name) != value for name, value in old.server.tokens.items()
        )
        restart = [
            key
            for key, before, after in (
                ("server.host", old.server.host, new.server.host),
                ("server.port", old.server.port, new.server.port),
                ("store.path", old.store.path, new.store.path),
                ("store.synchronous", old.store.synchronous, new.store.synchronous),
            )
            if before != after
        ]
        changed = [
            key
            for key, before, after in (
                ("server.tokens", old.server.tokens, new.server.tokens),
                ("server.cors_origins", old.server.cors_origins, new.server.cors_origins),
                ("server.event_name", old.server.event_name, new.server.event_name),
                ("calls", old.calls, new.calls),
                ("store.retention_days", old.store.retention_days, new.store.retention_days),
                ("log.level", old.log_level, new.log_level),
            )
            if before != after
        ]
        if added or removed or changed_lines:
            changed.append("lines")
        return cls(new, added, removed, changed_lines, revoked, tuple(restart), tuple(changed))

    def summary(self) -> str:
        """One line for the log: what changed, and what waits for a restart."""
        parts = []
        if self.lines_added:
            parts.append("lines added: " + ", ".join(line.name for line in self.lines_added))
        if self.lines_removed:
            parts.append("lines removed: " + ", ".join(self.lines_removed))
        if self.lines_changed:
            parts.append("lines restarted: " + ", ".join(line.name for line in self.lines_changed))
        others = [key for key in self.changed if key != "lines"]
        if others:
            parts.append("changed: " + ", ".join(others))
        if not parts:
            parts.append("nothing changed")
        text = "; ".join(parts)
        if self.needs_restart:
            text += (
                f" ({', '.join(self.needs_restart)} changed too: that takes a restart, "
                "`systemctl restart cidbridge`)"
            )
        return text
