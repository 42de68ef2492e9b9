"""The call trackers of one source: one :class:`CallTracker` per line it reports.

A source — a serial port, a posted-calls endpoint, a UDP listener — may carry several
phone lines (a 4-line box, several Ethernet units).  :class:`TrackerSet` keeps a
tracker per line name, feeds each frame to its line's tracker, and answers the one
question the source's loop needs for timers: when must :meth:`TrackerSet.tick` run
next (:attr:`TrackerSet.deadline`).  No I/O: the source owns the loop and the clock.

:func:`channel_name` is the naming rule for channels of multi-line devices: a name
from the configured map (``"01"`` and ``"1"`` are the same channel to a person),
else ``<base>:<channel>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cidbridge.call_ids import restart_safe
from cidbridge.core.frames import Frame
from cidbridge.core.tracker import CallEvent, CallTracker

__all__ = ["TrackerSet", "channel_name"]


def _normal(key: str) -> str:
    """``"1:01"`` → ``"1:1"``: every group of digits without its leading zeros."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), key)


def channel_name(base: str, channel: str, names: Mapping[str, str]) -> str:
    """The line name calls on ``channel`` show under: ``names``' entry, else ``base:channel``."""
    if channel in names:
        return names[channel]
    wanted = _normal(channel)
    for key, name in names.items():
        if _normal(key) == wanted:
            return name
    return f"{base}:{channel}" if base else channel


class TrackerSet:
    """A :class:`CallTracker` per line name, created on first use, with shared timings.

    Call ids are :func:`~cidbridge.call_ids.restart_safe`: the calls are logged.
    """

    def __init__(self, *, ring_gap: float = 8.0, ringless_timeout: float = 45.0) -> None:
        self.ring_gap = ring_gap
        self.ringless_timeout = ringless_timeout
        self.trackers: dict[str, CallTracker] = {}

    def receive(self, line: str, frame: Frame, now: float) -> list[CallEvent]:
        """Feed ``frame`` (seen at monotonic ``now``) to ``line``'s tracker."""
        tracker = self.trackers.get(line)
        if tracker is None:
            tracker = self.trackers[line] = CallTracker(
                line,
                ring_gap=self.ring_gap,
                ringless_timeout=self.ringless_timeout,
                new_call_id=restart_safe(line),  # logged: unique across restarts
            )
        return tracker.receive(frame, now)

    def tick(self, now: float) -> list[CallEvent]:
        """End the calls whose time ran out, on every line."""
        return [event for tracker in self.trackers.values() for event in tracker.tick(now)]

    @property
    def deadline(self) -> float | None:
        """Monotonic time of the earliest tracker deadline, or None."""
        deadlines = [t.deadline for t in self.trackers.values() if t.deadline is not None]
        return min(deadlines, default=None)

    @property
    def active(self) -> bool:
        return any(tracker.active for tracker in self.trackers.values())

    def set_timing(self, ring_gap: float, ringless_timeout: float) -> None:
        """New ``[calls]`` timings (a reload), for the calls in progress too."""
        self.ring_gap, self.ringless_timeout = ring_gap, ringless_timeout
        for tracker in self.trackers.values():
            tracker.ring_gap, tracker.ringless_timeout = ring_gap, ringless_timeout
