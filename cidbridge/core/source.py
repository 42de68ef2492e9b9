"""One source's calls: its decoder, a call tracker per phone line, their deadlines.  No I/O.

A source — a serial port, the posted-calls endpoint, the UDP listener — may carry
several phone lines (a 4-line box's channels, several Ethernet units, the names
posted to the endpoint).  :class:`CallSource` is everything such a source decides,
with the loop and the clock left to its owner (the h11 way):

* bytes (:meth:`CallSource.feed`, with a decoder) or frames
  (:meth:`CallSource.receive`) and the time in; a :class:`Batch` out: the frames
  decoded, the call events they caused, the line names forgotten;
* :attr:`CallSource.deadline`: when :meth:`CallSource.tick` must run next (a call
  whose ringing stopped, a decoder waiting for silence, an idle line to forget);
* channel → line name (:func:`channel_name`), a tracker per line created on first
  use with the source's ring timings, which :meth:`CallSource.set_timing` changes
  for the calls in progress too (a reload);
* optionally a bound on the lines kept (``max_lines``, least recently used idle
  line forgotten first; :class:`TooManyLines` when every one has a call) and a time
  after which an idle line is forgotten (``idle_forget``).

Call ids come from ``call_ids(line)``, a factory per line: the tracker reads no clock,
so a source whose calls are logged passes restart-safe ids
(:func:`cidbridge.call_ids.restart_safe`).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cidbridge.core.frames import Frame
from cidbridge.core.tracker import CallEvent, CallTracker, sequential_ids

__all__ = ["Batch", "CallSource", "TooManyLines", "channel_name"]


class FrameDecoder(Protocol):
    """What :class:`CallSource` needs of a decoder (:class:`cidbridge.core.formats.Decoder`)."""

    def feed(self, data: bytes, now: float) -> list[Frame]: ...

    def timeout(self, now: float) -> list[Frame]: ...

    @property
    def deadline(self) -> float | None: ...


class TooManyLines(Exception):
    """A new line name, while every one of the ``max_lines`` kept has a call in progress."""


@dataclass(slots=True)
class Batch:
    """What one input (or one :meth:`CallSource.tick`) caused."""

    #: Frames the decoder completed, as it gave them (control characters included).
    frames: list[Frame] = field(default_factory=list)
    #: Call events, in order: commit and send each one.
    events: list[CallEvent] = field(default_factory=list)
    #: Line names whose tracker was dropped (idle, or to make room): forget their series.
    forgotten: list[str] = field(default_factory=list)


def _normal(key: str) -> str:
    """``"1:01"`` → ``"1:1"``: every group of digits without its leading zeros."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), key)


def channel_name(base: str, channel: str | None, names: Mapping[str, str]) -> str:
    """The line name calls on ``channel`` show under: ``names``' entry, else ``base:channel``.

    ``"01"`` and ``"1"`` are the same channel to a person writing the config.  No
    channel (a single-line device) is ``base`` itself.
    """
    if channel is None:
        return base
    if channel in names:
        return names[channel]
    wanted = _normal(channel)
    for key, name in names.items():
        if _normal(key) == wanted:
            return name
    return f"{base}:{channel}" if base else channel


class CallSource:
    """The decoder and call trackers of one source.  See the module doc."""

    def __init__(
        self,
        base: str = "",
        channels: Mapping[str, str] | None = None,
        *,
        decoder: FrameDecoder | None = None,
        ring_gap: float = 8.0,
        ringless_timeout: float = 45.0,
        call_ids: Callable[[str], Callable[[], str]] = sequential_ids,
        max_lines: int | None = None,
        idle_forget: float | None = None,
    ) -> None:
        #: The line name of frames without a channel, and the prefix of unnamed channels.
        self.base = base
        self.channels = dict(channels or {})
        self.decoder = decoder
        self.ring_gap = ring_gap
        self.ringless_timeout = ringless_timeout
        self.call_ids = call_ids
        self.max_lines = max_lines
        self.idle_forget = idle_forget
        #: Line name → its tracker, least recently used first.
        self.trackers: OrderedDict[str, CallTracker] = OrderedDict()
        self._used: dict[str, float] = {}

    # -- input -------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> Batch:
        """Bytes read at monotonic ``now``: decode them, and track each frame on its channel."""
        assert self.decoder is not None, "a CallSource without a decoder takes frames (receive)"
        batch = Batch()
        self._track(self.decoder.feed(data, now), now, batch)
        return batch

    def receive(self, frame: Frame, now: float, channel: str | None = None) -> Batch:
        """One frame seen at ``now`` on ``channel`` (None: the source's own line).

        Raises :class:`TooManyLines` (and changes nothing) when the frame needs a new
        line and the bound is reached with a call on every line kept.
        """
        batch = Batch()
        batch.events = self._tracker(self.line_name(channel), now, batch.forgotten).receive(frame, now)
        return batch

    def tick(self, now: float) -> Batch:
        """Whatever time alone does by ``now``: a decoder's silence, calls ending, idle lines going."""
        batch = Batch()
        if self.decoder is not None:
            self._track(self.decoder.timeout(now), now, batch)
        for tracker in list(self.trackers.values()):
            batch.events += tracker.tick(now)
        if self.idle_forget is not None:
            for name, tracker in list(self.trackers.items()):
                if not tracker.active and now - self._used.get(name, now) >= self.idle_forget:
                    self._forget(name, batch.forgotten)
        return batch

    def _track(self, frames: list[Frame], now: float, batch: Batch) -> None:
        batch.frames += frames
        for frame in frames:
            tracker = self._tracker(self.line_name(getattr(frame, "line", None)), now, batch.forgotten)
            batch.events += tracker.receive(frame, now)

    # -- state -------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """Monotonic time :meth:`tick` must run by, or None (nothing will happen by itself)."""
        times = [self.decoder.deadline] if self.decoder is not None else []
        for name, tracker in self.trackers.items():
            times.append(tracker.deadline)
            if self.idle_forget is not None and not tracker.active:
                times.append(self._used.get(name, 0.0) + self.idle_forget)
        return min((t for t in times if t is not None), default=None)

    @property
    def active(self) -> bool:
        """True while a call rings or is in progress on any line."""
        return any(tracker.active for tracker in self.trackers.values())

    def line_name(self, channel: str | None) -> str:
        return channel_name(self.base, channel, self.channels)

    def tracker(self, channel: str | None = None) -> CallTracker:
        """The tracker of ``channel``'s line, made now if it has none yet."""
        return self._tracker(self.line_name(channel), None, [])

    def set_timing(self, ring_gap: float, ringless_timeout: float) -> None:
        """New ``[calls]`` timings (a reload), for the calls in progress too."""
        self.ring_gap, self.ringless_timeout = ring_gap, ringless_timeout
        for tracker in self.trackers.values():
            tracker.ring_gap, tracker.ringless_timeout = ring_gap, ringless_timeout

    def _tracker(self, name: str, now: float | None, forgotten: list[str]) -> CallTracker:
        tracker = self.trackers.get(name)
        if tracker is None:
            if self.max_lines is not None and len(self.trackers) >= self.max_lines:
                idle = next((n for n, t in self.trackers.items() if not t.active), None)
                if idle is None:
                    raise TooManyLines(f"{self.max_lines} lines have calls in progress")
                self._forget(idle, forgotten)
            tracker = self.trackers[name] = CallTracker(
                name,
                ring_gap=self.ring_gap,
                ringless_timeout=self.ringless_timeout,
                new_call_id=self.call_ids(name),
            )
        self.trackers.move_to_end(name)
        if now is not None:
            self._used[name] = now
        return tracker

    def _forget(self, name: str, forgotten: list[str]) -> None:
        self.trackers.pop(name, None)
        self._used.pop(name, None)
        forgotten.append(name)
