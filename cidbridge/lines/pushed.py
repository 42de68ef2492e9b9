"""Sources whose frames are pushed in from outside: posted calls, UDP packets.

A serial line reads in a loop and runs its call timers in that loop.  The posted-calls
endpoint (``POST /api/cti/incoming-call``) and the UDP listener have no read loop:
frames arrive when a request or a packet does.  :class:`PushedCalls` drives their
:class:`~cidbridge.core.source.CallSource`: :meth:`PushedCalls.receive` takes one
frame and sends the events it caused to the sink (the hub), and
:meth:`PushedCalls.run` sleeps until the source's deadline, then ends the calls
nobody ended and forgets idle lines.  With nothing pending it waits on an event: no
timer, no wake-up.

The daemon makes one for the posted calls (:func:`posted_calls`) and hands it to the
web server, whose endpoint only parses requests; the UDP source makes its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from cidbridge.core.frames import Frame
from cidbridge.core.source import CallSource
from cidbridge.lines.status import EventSink

__all__ = ["IDLE_FORGET", "MAX_LINES", "LineTaken", "PushedCalls", "posted_calls"]

#: Posted line names kept at once, and seconds an idle one is kept (README: "Posting calls").
MAX_LINES = 32
IDLE_FORGET = 600.0


class LineTaken(Exception):
    """The line name belongs to another source of this daemon (a serial line)."""


class PushedCalls:
    """A :class:`CallSource` fed frame by frame, and its timers.  See the module doc."""

    def __init__(
        self,
        calls: CallSource,
        sink: EventSink,
        *,
        taken: Callable[[], set[str]] = set,
        on_forget: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls = calls
        self.sink = sink
        #: Line names this source may not take (the daemon's serial lines).
        self.taken = taken
        #: Called with each line name the source forgets (its metric series go).
        self.on_forget = on_forget
        self.clock = clock
        self._wake = asyncio.Event()
        #: One frame at a time, from the tracker to the last event committed: a report's
        #: events reach the hub together and in order, and a tracker is not re-entrant.
        self._lock = asyncio.Lock()

    async def receive(self, frame: Frame, channel: str | None, now: float | None = None) -> list[Any]:
        """Track ``frame`` on ``channel``'s line; what the sink committed for each event it caused.

        Raises :class:`LineTaken` for a name in ``taken`` and
        :class:`~cidbridge.core.source.TooManyLines` when the source's bound is reached.
        """
        if channel is not None and channel in self.taken():
            raise LineTaken(channel)
        async with self._lock:
            batch = self.calls.receive(frame, self.clock() if now is None else now, channel)
            committed = [await self.sink.publish(event) for event in batch.events]
            self._forgotten(batch.forgotten)
        self._wake.set()  # the deadline may have moved
        return committed

    def set_timing(self, ring_gap: float, ringless_timeout: float) -> None:
        """New ``[calls]`` timings (a reload), for the calls in progress too."""
        self.calls.set_timing(ring_gap, ringless_timeout)
        self._wake.set()

    async def tick(self) -> None:
        """Do now what time alone does: end calls whose time ran out, forget idle lines."""
        async with self._lock:
            batch = self.calls.tick(self.clock())
            for event in batch.events:
                await self.sink.publish(event)
            self._forgotten(batch.forgotten)

    async def run(self) -> None:
        """Run the timers until cancelled: asleep until the next deadline, or a new frame."""
        while True:
            deadline = self.calls.deadline
            self._wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            await self.tick()

    def _forgotten(self, names: list[str]) -> None:
        if self.on_forget is not None:
            for name in names:
                self.on_forget(name)


def _random_ids(line: str) -> Callable[[], str]:
    # A posted line's call ids must not collide with another source's, nor with its own
    # from before a restart: random, not counted.
    return lambda: f"{line}-{uuid.uuid4().hex[:12]}"


def posted_calls(
    sink: EventSink,
    *,
    ring_gap: float,
    ringless_timeout: float,
    taken: Callable[[], set[str]],
    on_forget: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PushedCalls:
    """The source behind ``POST /api/cti/incoming-call``: a line per posted name.

    At most :data:`MAX_LINES` names are kept; an idle one is forgotten after
    :data:`IDLE_FORGET` seconds, or sooner when a new name needs its place.
    """
    calls = CallSource(
        ring_gap=ring_gap,
        ringless_timeout=ringless_timeout,
        call_ids=_random_ids,
        max_lines=MAX_LINES,
        idle_forget=IDLE_FORGET,
    )
    return PushedCalls(calls, sink, taken=taken, on_forget=on_forget, clock=clock)
