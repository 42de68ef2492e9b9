"""The call tracker: frames from one line in, call events out.  No I/O, clock injected.

One :class:`CallTracker` follows one phone line.  A call starts at the first RING or
caller-ID frame; caller ID may come before the first ring (UK, Korean boxes) or
between rings (US).  The call ends when ringing stops (no ring for ``ring_gap``
seconds) or, on boxes that see the handset, when it is hung up.

Events (DESIGN.md §3.2): ``ring`` (each ring, with the count), ``call`` (caller ID
known, or known to be missing), ``update`` (a later frame added something: the
name, an answer), ``end`` (with ``outcome`` and ``duration_s`` where known).

The owner calls :meth:`CallTracker.receive` for every frame and
:meth:`CallTracker.tick` at :attr:`CallTracker.deadline` (or any time after).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

from cidbridge.core.frames import UNAVAILABLE, CidFrame, Frame, HookFrame, RingFrame

RING = "ring"
CALL = "call"
UPDATE = "update"
END = "end"

ANSWERED = "answered"
MISSED = "missed"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CallEvent:
    """Something happened to a call.  The hub adds ``id``, ``time`` and ``display``."""

    type: str
    call_id: str
    line: str
    number: str | None = None
    name: str | None = None
    number_absence: str | None = None
    name_absence: str | None = None
    ring_count: int = 0
    outcome: str | None = None
    duration_s: float | None = None


@dataclass(slots=True)
class _Call:
    call_id: str
    started: float
    last_ring: float | None = None
    rings: int = 0
    cid: CidFrame | None = None
    announced: bool = False
    answered_at: float | None = None
    hung_up_at: float | None = None


def _counter_ids(line: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{line}-{next(counter)}"


class CallTracker:
    """Follows the calls on one line.  See the module doc for the rules."""

    def __init__(
        self,
        line: str,
        *,
        ring_gap: float = 8.0,
        no_cid_after_rings: int = 2,
        new_call_id: Callable[[], str] | None = None,
    ) -> None:
        self.line = line
        #: Seconds without a ring (or caller ID) after which ringing has stopped.
        self.ring_gap = ring_gap
        #: Ring on which a call with no caller ID yet is announced as "No caller ID".
        self.no_cid_after_rings = no_cid_after_rings
        self._new_call_id = new_call_id or _counter_ids(line)
        self._call: _Call | None = None
        #: Whether this line's device reports the handset (then outcomes are known).
        self.sees_hook = False

    @property
    def active(self) -> bool:
        """True while a call is ringing or in progress."""
        return self._call is not None

    @property
    def deadline(self) -> float | None:
        """Monotonic time at which :meth:`tick` may end the current call, or None."""
        call = self._call
        if call is None or (call.answered_at is not None and call.hung_up_at is None):
            return None
        return (call.last_ring if call.last_ring is not None else call.started) + self.ring_gap

    # -- input -------------------------------------------------------------------

    def receive(self, frame: Frame, now: float) -> list[CallEvent]:
        """Apply one frame seen at monotonic time ``now``; return the events it caused."""
        events = self.tick(now)
        if isinstance(frame, RingFrame):
            self._ring(now, events)
        elif isinstance(frame, CidFrame):
            self._cid(frame, now, events)
        elif isinstance(frame, HookFrame):
            self._hook(frame, now, events)
        return events

    def tick(self, now: float) -> list[CallEvent]:
        """End the current call if ringing stopped before ``now``."""
        call = self._call
        deadline = self.deadline
        if call is None or deadline is None or now < deadline:
            return []
        return [self._end(call, deadline)]

    # -- rules -------------------------------------------------------------------

    def _start(self, now: float) -> _Call:
        call = _Call(self._new_call_id(), started=now)
        self._call = call
        return call

    def _ring(self, now: float, events: list[CallEvent]) -> None:
        call = self._call or self._start(now)
        call.rings += 1
        call.last_ring = now
        events.append(self._event(RING, call))
        if not call.announced and call.rings >= self.no_cid_after_rings:
            call.announced = True
            events.append(self._event(CALL, call))

    def _cid(self, frame: CidFrame, now: float, events: list[CallEvent]) -> None:
        call = self._call
        if call is None:
            call = self._start(now)
        old = call.cid
        call.cid = frame if old is None else _merge(old, frame)
        if not call.announced:
            call.announced = True
            events.append(self._event(CALL, call))
        elif call.cid != old:
            events.append(self._event(UPDATE, call))

    def _hook(self, frame: HookFrame, now: float, events: list[CallEvent]) -> None:
        self.sees_hook = True
        call = self._call
        if call is None:
            return  # an outgoing call or handset noise: not a caller
        if frame.state == "off" and call.answered_at is None:
            call.answered_at = now
            events.append(replace(self._event(UPDATE, call), outcome=ANSWERED))
        elif frame.state == "on" and call.answered_at is not None:
            call.hung_up_at = now
            events.append(self._end(call, now))

    def _end(self, call: _Call, now: float) -> CallEvent:
        self._call = None
        if call.answered_at is not None:
            outcome = ANSWERED
            end = call.hung_up_at if call.hung_up_at is not None else now
            duration: float | None = round(end - call.answered_at, 3)
        else:
            outcome = MISSED if self.sees_hook else UNKNOWN
            duration = None
        return replace(self._event(END, call), outcome=outcome, duration_s=duration)

    def _event(self, kind: str, call: _Call) -> CallEvent:
        cid = call.cid
        if cid is None:
            return CallEvent(
                kind,
                call.call_id,
                self.line,
                number_absence=UNAVAILABLE if call.announced else None,
                ring_count=call.rings,
            )
        return CallEvent(
            kind,
            call.call_id,
            self.line,
            number=cid.number,
            name=cid.name,
            number_absence=cid.number_absence,
            name_absence=cid.name_absence,
            ring_count=call.rings,
        )


def _merge(old: CidFrame, new: CidFrame) -> CidFrame:
    """A second report within one call adds what was missing; it never erases."""
    number, number_absence = _keep(old.number, old.number_absence, new.number, new.number_absence)
    name, name_absence = _keep(old.name, old.name_absence, new.name, new.name_absence)
    return old._replace(number=number, number_absence=number_absence, name=name, name_absence=name_absence)


def _keep(
    value: str | None, absence: str | None, new_value: str | None, new_absence: str | None
) -> tuple[str | None, str | None]:
    if value is not None:
        return value, None
    if new_value is not None:
        return new_value, None
    return None, absence or new_absence
