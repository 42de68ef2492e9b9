"""Helpers for line tests: a recording event sink and bounded waits.

The sink is the hub's interface (``publish``, ``line_state``) recording what it is
given; everything below it (ptys, pyserial, the transport) is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cidbridge.config import LineConfig
from cidbridge.core.tracker import CallEvent
from cidbridge.lines.serial_line import Line


@dataclass
class Recorded:
    kind: str  # "call" (a CallEvent) or "line"
    line: str
    at: float
    event: CallEvent | None = None
    state: str | None = None
    reason: str | None = None


@dataclass
class RecordingSink:
    """Records every call event and line state change, with the monotonic time it arrived."""

    items: list[Recorded] = field(default_factory=list)

    async def publish(self, event: CallEvent) -> None:
        self.items.append(Recorded("call", event.line, time.monotonic(), event=event))

    async def line_state(self, line: str, state: str, reason: str | None = None) -> None:
        self.items.append(Recorded("line", line, time.monotonic(), state=state, reason=reason))

    def states(self, line: str | None = None) -> list[str]:
        return [i.state or "" for i in self.items if i.kind == "line" and line in (None, i.line)]

    def calls(self, type_: str | None = None) -> list[CallEvent]:
        return [
            i.event for i in self.items if i.event is not None and (type_ is None or i.event.type == type_)
        ]

    async def wait_for(
        self, predicate: Callable[[Recorded], bool], timeout: float = 10.0, *, after: int = 0
    ) -> Recorded:
        """The first recorded item from index ``after`` on that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self.items[after:]:
                if predicate(item):
                    return item
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing matched within {timeout}s; recorded: {self.items}")
            await asyncio.sleep(0.005)

    async def wait_state(self, state: str, line: str | None = None, *, after: int = 0, timeout: float = 10.0):
        return await self.wait_for(
            lambda i: i.kind == "line" and i.state == state and line in (None, i.line),
            timeout,
            after=after,
        )

    async def wait_call(self, type_: str, *, after: int = 0, timeout: float = 10.0) -> CallEvent:
        item = await self.wait_for(
            lambda i: i.event is not None and i.event.type == type_, timeout, after=after
        )
        assert item.event is not None
        return item.event


def line_config(port: str, **overrides: Any) -> LineConfig:
    """A modem line on ``port`` with test-friendly timeouts."""
    values: dict[str, Any] = {"name": "desk", "port": port, "command_timeout": 0.5, "keepalive": 0}
    values.update(overrides)
    return LineConfig(**values)


class RunningLine:
    """``async with RunningLine(config) as (line, sink)``: a Line task, cancelled on exit."""

    def __init__(
        self, config: LineConfig, *, ring_gap: float = 1.0, sink: RecordingSink | None = None
    ) -> None:
        self.sink = sink or RecordingSink()
        self.line = Line(config, self.sink, ring_gap=ring_gap)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> tuple[Line, RecordingSink]:
        self.task = asyncio.create_task(self.line.run())
        return self.line, self.sink

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
