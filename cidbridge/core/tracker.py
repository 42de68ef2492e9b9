"""The call tracker: frames from one line in, call events out.  No I/O, clock injected.

One :class:`CallTracker` follows one phone line (one channel of a multi-line box).
The owner calls :meth:`CallTracker.receive` for every frame and :meth:`CallTracker.tick`
at :attr:`CallTracker.deadline` (or any time after); both return the events caused.

Events (the README's "cti-event schema"): ``ring`` (each ring, with the count), ``call`` (caller ID
known, or known to be missing), ``update`` (a later frame added something: the name,
an answer, the box's end-of-call record), ``end`` (with ``outcome`` and ``duration_s``
where known).  Every event carries everything known about the call so far.

The rules, and why:

* **A call starts** at the first ring or caller ID on an idle line.  Caller ID may
  come before the first ring (UK, Korean boxes) or between rings (US).
* **Ringing stops** when no ring has come for ``ring_gap`` seconds (about 1.5 ring
  cadences).  A device that never reports rings (Korean adapters send only the
  caller ID) cannot show the ringing stopping, so such a call waits ``ringless_timeout``
  for a pick-up before it is ended: ending it early would turn a late answer into a
  false "missed" call.
* **No caller ID by the second ring**: the call is announced anyway, with
  ``number_absence = "unavailable"`` (the panel shows "No caller ID").
* **One caller, one call.**  A repeated caller ID within a call (a box's start and end
  records, a repeated packet) updates the call, never starts a second one.  A caller ID
  that *contradicts* the ringing call (another number) is a second caller: ringing of
  the first must have stopped, so it ends and a new call starts.  Losing the second
  caller would be worse than cutting the first one's ring count short.
* **Hook state** (Korean adapters ``S``/``E``, Whozz Calling ``F``/``N``): off hook while
  ringing = answered; on hook = the conversation ended (``duration_s`` from the
  answer).  A line that reports the handset gives ``missed`` for unanswered calls; a
  modem cannot see the handset and gives ``unknown``.
* **Call waiting**: caller ID for another number while the handset is off hook is a
  second call (``waiting = True``).  A hook flash answers it; hanging up lets the
  exchange ring it again, so it goes back to ringing.
* **Lost frames never keep a call open forever**: a ring while the handset is
  supposedly off hook means the on-hook was missed (a line cannot ring off hook), and
  an answered call ends after ``max_call`` seconds without an on-hook.

Decoders of boxes that send call records may put these keys in ``CidFrame.extra``
(the ``callerid-com`` decoder does): ``event`` (``"start"``/``"end"``: Whozz
Calling's S/E); on an end record ``duration_s`` (seconds off hook, 0 = not
answered) and ``rings`` (as the box counted them); ``direction`` (``"in"``/``"out"``;
outbound calls are not callers and are ignored).  An end record closes its call, or
corrects the outcome of a call already ended; an end record for a call never seen
(the daemon started mid-call) still gives the call, so none is lost.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cidbridge.core.caller_match import merge_reports, same_caller, same_number
from cidbridge.core.frames import UNAVAILABLE, CidFrame, Frame, HookFrame, RingFrame, clean_frame

RING = "ring"
CALL = "call"
UPDATE = "update"
END = "end"

ANSWERED = "answered"
MISSED = "missed"
UNKNOWN = "unknown"

#: ``CidFrame.extra`` keys the tracker understands (see the module doc).
RECORD = "event"
DURATION = "duration_s"
RINGS = "rings"
DIRECTION = "direction"
_OUTBOUND = frozenset({"out", "o", "outbound", "outgoing"})
_END_RECORD = frozenset({"end", "e"})

#: Ended calls remembered for duplicate reports and end records.
_REMEMBERED = 8
#: ``_end``'s default duration: from the answer to the end (None if never answered).
_FROM_ANSWER: Any = object()


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
    #: The call arrived while the line was busy with another one (call waiting).
    waiting: bool = False


@dataclass(slots=True)
class _Call:
    call_id: str
    started: float
    #: Last ring or caller ID: ringing is timed from here.
    last_seen: float
    rings: int = 0
    cid: CidFrame | None = None
    announced: bool = False
    waiting: bool = False
    answered_at: float | None = None
    outcome: str | None = None
    duration_s: float | None = None
    ended_at: float | None = None


def sequential_ids(line: str) -> Callable[[], str]:
    """Ids ``<line>-1``, ``<line>-2``, …: the default, for a tracker whose calls are not logged.

    They repeat after a restart; a source whose calls go to the call log passes
    :func:`cidbridge.call_ids.restart_safe` instead (the tracker reads no clock).
    """
    counter = itertools.count(1)
    return lambda: f"{line}-{next(counter)}"


class CallTracker:
    """Follows the calls on one line.  See the module doc for the rules."""

    def __init__(
        self,
        line: str,
        *,
        ring_gap: float = 8.0,
        ringless_timeout: float = 45.0,
        no_cid_after_rings: int = 2,
        duplicate_window: float = 3.0,
        max_call: float = 4 * 3600.0,
        new_call_id: Callable[[], str] | None = None,
    ) -> None:
        self.line = line
        #: Seconds without a ring after which ringing has stopped.
        self.ring_gap = ring_gap
        #: Seconds an unanswered call waits for a pick-up when no rings can be seen.
        self.ringless_timeout = ringless_timeout
        #: Ring on which a call with no caller ID yet is announced as "No caller ID".
        self.no_cid_after_rings = no_cid_after_rings
        #: Seconds after a call ended in which the same caller ID is a repeat, not a call.
        self.duplicate_window = duplicate_window
        #: Longest conversation before a lost on-hook is assumed.
        self.max_call = max_call
        self._new_call_id = new_call_id or sequential_ids(line)
        #: The unanswered call now ringing (or waiting), if any: at most one per line.
        self._ringing: _Call | None = None
        #: Answered calls not yet hung up (two after a waiting call was taken).
        self._talking: list[_Call] = []
        self._ended: deque[_Call] = deque(maxlen=_REMEMBERED)
        self._off_hook = False
        #: Whether this line's device reports the handset (then outcomes are known).
        self.sees_hook = False
        #: Whether this line's device reports rings (then silence means ringing stopped).
        self.sees_rings = False

    @property
    def active(self) -> bool:
        """True while a call is ringing or in progress."""
        return self._ringing is not None or bool(self._talking)

    @property
    def deadline(self) -> float | None:
        """Monotonic time at which :meth:`tick` may end a call, or None."""
        times = [call.answered_at + self.max_call for call in self._talking if call.answered_at is not None]
        if self._ringing is not None:
            times.append(self._ringing_deadline(self._ringing))
        return min(times, default=None)

    def _ringing_deadline(self, call: _Call) -> float:
        # Silence only means "stopped ringing" on a line that shows rings and can ring now.
        rings_visible = self.sees_rings and not self._off_hook
        return call.last_seen + (self.ring_gap if rings_visible else self.ringless_timeout)

    # -- input -------------------------------------------------------------------

    def receive(self, frame: Frame, now: float) -> list[CallEvent]:
        """Apply one frame seen at monotonic time ``now``; return the events it caused.

        Control characters in the frame's text never reach an event (:func:`clean_frame`),
        whatever the frame's source.
        """
        frame = clean_frame(frame)
        events = self.tick(now)
        if isinstance(frame, RingFrame):
            self._ring(now, events)
        elif isinstance(frame, CidFrame):
            self._cid(frame, now, events)
        elif isinstance(frame, HookFrame):
            self._hook(frame.state, now, events)
        return events

    def tick(self, now: float) -> list[CallEvent]:
        """End the calls whose time ran out before ``now``."""
        events: list[CallEvent] = []
        call = self._ringing
        if call is not None and now >= (stopped := self._ringing_deadline(call)):
            self._ringing = None
            events.append(self._end(call, stopped))
        for talking in list(self._talking):
            assert talking.answered_at is not None
            if now >= talking.answered_at + self.max_call:
                # The on-hook was lost; the real length is unknown.
                self._talking.remove(talking)
                events.append(self._end(talking, now, duration=None))
                self._off_hook = bool(self._talking)
        return events

    # -- rings -------------------------------------------------------------------

    def _ring(self, now: float, events: list[CallEvent]) -> None:
        self.sees_rings = True
        if self._off_hook:
            # A line cannot ring with the handset off hook: the on-hook was lost.
            self._hang_up(now, events, duration_known=False)
        call = self._ringing or self._ring_new(now)
        call.rings += 1
        call.last_seen = now
        events.append(self._event(RING, call))
        if not call.announced and call.rings >= self.no_cid_after_rings:
            call.announced = True
            events.append(self._event(CALL, call))

    # -- caller ID ---------------------------------------------------------------

    def _cid(self, frame: CidFrame, now: float, events: list[CallEvent]) -> None:
        extra = dict(frame.extra)
        if str(extra.get(DIRECTION, "")).lower() in _OUTBOUND:
            return  # a call made from this line: not a caller
        if str(extra.get(RECORD, "")).lower() in _END_RECORD:
            self._end_record(frame, extra, now, events)
            return
        call = self._ringing
        if call is not None:
            if same_caller(call.cid, frame):
                self._merge(call, frame, events)
                call.last_seen = now
                return
            # Another caller: the first one's ringing has stopped.
            self._ringing = None
            events.append(self._end(call, call.last_seen))
        repeat = self._find(frame, now, include_ended=True)
        if repeat is not None:
            self._merge(repeat, frame, events)
            return
        call = self._ring_new(now, waiting=self._off_hook)
        self._merge(call, frame, events)

    def _merge(self, call: _Call, frame: CidFrame, events: list[CallEvent]) -> None:
        """Add what ``frame`` says to ``call``; announce it, or report what changed."""
        old = call.cid
        call.cid = frame if old is None else merge_reports(old, frame)
        if not call.announced:
            call.announced = True
            events.append(self._event(CALL, call))
        elif call.cid != old:
            events.append(self._event(UPDATE, call))

    def _find(
        self, frame: CidFrame, now: float, *, include_ended: bool, any_age: bool = False
    ) -> _Call | None:
        """The call in progress (or just ended) that ``frame`` repeats, if any."""
        candidates: list[_Call] = list(reversed(self._talking))
        if include_ended:
            candidates += [
                call
                for call in reversed(self._ended)
                if any_age or (call.ended_at is not None and now - call.ended_at <= self.duplicate_window)
            ]
        for call in candidates:
            if call.cid is not None and same_number(call.cid, frame):
                return call
        return None

    def _end_record(
        self, frame: CidFrame, extra: dict[str, Any], now: float, events: list[CallEvent]
    ) -> None:
        """A box's end-of-call record: close the call it belongs to, or correct it."""
        duration, box_rings = _number(extra, DURATION), _number(extra, RINGS)
        call = self._ringing
        if call is not None and same_caller(call.cid, frame):
            self._ringing = None
        else:
            call = self._find(frame, now, include_ended=True, any_age=True)
        if call is None:
            # Its start was never seen (the daemon started mid-call): still a call.
            call = self._new_call(now)
            self._merge(call, frame, events)
        else:
            old = call.cid
            call.cid = frame if old is None else merge_reports(old, frame)
            if not call.announced:
                call.announced = True
                events.append(self._event(CALL, call))
        # The box times the conversation itself (0 s: never answered); a seen answer
        # outranks its "0 s".
        outcome = None if duration is None else (ANSWERED if duration > 0 else MISSED)
        talked = duration if duration else None
        if call.answered_at is not None:
            outcome = ANSWERED
        # A box without ring records counts the rings in its end record.
        more_rings = box_rings is not None and box_rings > call.rings
        if more_rings:
            call.rings = int(box_rings or 0)
        if call.ended_at is None:
            if call in self._talking:
                self._talking.remove(call)
                self._off_hook = bool(self._talking)
            events.append(
                self._end(call, now, outcome=outcome, duration=_FROM_ANSWER if talked is None else talked)
            )
        elif more_rings or (outcome is not None and (outcome != call.outcome or call.duration_s is None)):
            # Ended on ring silence as "unknown"; the box knows what happened.
            call.outcome = outcome or call.outcome
            if call.duration_s is None:
                call.duration_s = talked
            events.append(self._event(UPDATE, call))

    # -- the handset -------------------------------------------------------------

    def _hook(self, state: str, now: float, events: list[CallEvent]) -> None:
        self.sees_hook = True
        ringing = self._ringing
        if state == "off":
            was_off = self._off_hook
            self._off_hook = True
            if ringing is not None and not was_off:
                self._answer(ringing, now, events)
            # Off hook with nothing ringing: an outgoing call, or a pick-up after ringing stopped.
        elif state == "flash":
            if ringing is not None and self._off_hook:
                self._answer(ringing, now, events)  # switched to the waiting call
        elif state == "on":
            self._hang_up(now, events, duration_known=True)
            if ringing is not None and ringing.waiting:
                # A waiting caller is rung again once the line is free.
                ringing.last_seen = now

    def _answer(self, call: _Call, now: float, events: list[CallEvent]) -> None:
        self._ringing = None
        call.answered_at = now
        call.outcome = ANSWERED
        self._talking.append(call)
        events.append(self._event(UPDATE, call))

    def _hang_up(self, now: float, events: list[CallEvent], *, duration_known: bool) -> None:
        self._off_hook = False
        for call in self._talking:
            events.append(self._end(call, now, duration=_FROM_ANSWER if duration_known else None))
        self._talking.clear()

    # -- calls and events --------------------------------------------------------

    def _new_call(self, now: float, *, waiting: bool = False) -> _Call:
        return _Call(self._new_call_id(), started=now, last_seen=now, waiting=waiting)

    def _ring_new(self, now: float, *, waiting: bool = False) -> _Call:
        """Start a call and make it the line's ringing one."""
        call = self._ringing = self._new_call(now, waiting=waiting)
        return call

    def _end(
        self, call: _Call, at: float, *, outcome: str | None = None, duration: Any = _FROM_ANSWER
    ) -> CallEvent:
        call.ended_at = at
        if outcome is None:
            outcome = self._unanswered_outcome() if call.answered_at is None else ANSWERED
        if duration is _FROM_ANSWER:
            duration = round(at - call.answered_at, 3) if call.answered_at is not None else None
        call.outcome, call.duration_s = outcome, duration
        self._ended.append(call)
        return self._event(END, call)

    def _unanswered_outcome(self) -> str:
        # Only a device that reports the handset can tell "nobody answered".
        return MISSED if self.sees_hook else UNKNOWN

    def _event(self, kind: str, call: _Call) -> CallEvent:
        cid = call.cid
        common: dict[str, Any] = {
            "ring_count": call.rings,
            "outcome": call.outcome,
            "duration_s": call.duration_s,
            "waiting": call.waiting,
        }
        if cid is None:
            absence = UNAVAILABLE if call.announced else None
            return CallEvent(kind, call.call_id, self.line, number_absence=absence, **common)
        return CallEvent(
            kind,
            call.call_id,
            self.line,
            number=cid.number,
            name=cid.name,
            number_absence=cid.number_absence,
            name_absence=cid.name_absence,
            **common,
        )


def _number(extra: dict[str, Any], key: str) -> float | None:
    value = extra.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
