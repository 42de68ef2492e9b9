"""What every source of calls shares: where its events go, and its state as people see it.

A serial line (:mod:`cidbridge.lines.serial_line`) and the UDP listener
(:mod:`cidbridge.lines.udp_source`) are both shown in ``/healthz`` under ``lines`` and
report ``up`` and ``down`` (with the reason) as ``line`` events.  :class:`SourceStatus`
holds that state and sends a ``line`` event only when it changes: a source that stays
down for a new reason updates the reason quietly, it does not repeat the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from cidbridge.core.tracker import CallEvent


class EventSink(Protocol):
    """Where a source sends what happened (the hub)."""

    async def publish(self, event: CallEvent) -> object: ...

    async def line_state(self, line: str, state: str, reason: str | None = None) -> object: ...


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class SourceStatus:
    """A source's ``state`` (``starting``, ``up``, ``down``), its ``reason`` and ``since``."""

    def __init__(self, sink: EventSink, clock: Callable[[], float]) -> None:
        self.sink = sink
        #: Monotonic seconds: the source's call timers run on it.
        self.clock = clock
        self.state = "starting"
        self.reason: str | None = None
        #: When the state last changed, ISO 8601 (for /healthz).
        self.since = now_iso()
        #: Set after the first attempt, up or not (the daemon waits for it at start).
        self.first_attempt_done = asyncio.Event()

    @property
    def names(self) -> list[str]:
        """The line names this source's ``line`` events are sent for."""
        raise NotImplementedError

    def _log_state(self) -> None:
        """Log the state just entered (each source says it its own way)."""

    async def _set_state(self, state: str, reason: str | None) -> None:
        if (state, reason) == (self.state, self.reason):
            return
        if state == "down" and self.state == "down":
            self.reason = reason  # still down, possibly for a new reason: no new event
            return
        self.state, self.reason, self.since = state, reason, now_iso()
        self._log_state()
        for name in self.names:
            await self.sink.line_state(name, state, reason)
