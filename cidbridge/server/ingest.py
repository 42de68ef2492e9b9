"""``POST /api/cti/incoming-call``: calls reported by another system, as JSON.

The seed design's Next.js app received calls this way (a bridge POSTed each caller
ID and the app re-emitted it).  cidbridge keeps the endpoint so a PBX webhook or an
old bridge can keep posting, but a posted call is not re-emitted as-is: it goes
through the same path as a call read from a serial port — a call tracker per
ingest line, the call log (which gives it its id), then every sink.  A posted
source is treated like a caller-ID box on its own line:

=================  =========================================  ===================
``event``          frame fed to the line's tracker             usual event(s)
=================  =========================================  ===================
``"ringing"``      caller ID (``number``, ``name``)            ``call``/``update``
``"ring"``         one ring                                    ``ring``
``"answered"``     handset off hook                            ``update`` answered
``"ended"``        handset on hook                             ``end``
=================  =========================================  ===================

A call nobody reports as ended is ended by the tracker's own timers, like a box
that sends only caller ID.  Line names must not be the daemon's serial lines (two
trackers must not claim one line); the default is ``"api"``.  At most
:data:`MAX_LINES` ingest lines are kept: a tracker with no call in progress is
forgotten, with its metric series, after :data:`IDLE_FORGET` seconds, or sooner
when a new name needs its place (least recently used first); a new name while
every place has a call in progress is refused (429).  Control characters in a
posted name are removed like those from a serial device (the call tracker does it).

Body: a JSON object, at most :data:`~cidbridge.server.security.MAX_HTTP_BODY` bytes::

    {"number": "01012345678", "name": "KIM MINJI", "line": "pbx", "event": "ringing"}

``Content-Type: application/json`` is required, and only ``Authorization: Bearer``
(or the panel's session cookie, same origin only) authenticates: never ``?token=``.

``number_absence`` (``private``, ``unavailable``, ``payphone``, ``conflict``) may
replace ``number``; a ringing report with neither means "no caller ID".
The token is always required (without one any web page a browser on this PC opens
could post fake calls), so the endpoint answers 403 until a token is configured.
Answers: 200 with ``{"call_id", "events": [{"id", "type"}]}``; 400 bad JSON;
401 bad token; 403 no token configured; 409 serial line name; 413 too large;
415 not JSON; 422 invalid fields (every problem listed); 429 too many requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cidbridge.core.frames import ABSENCES, UNAVAILABLE, CidFrame, Frame, HookFrame, RingFrame
from cidbridge.core.tracker import CallEvent, CallTracker
from cidbridge.server.auth import Refused
from cidbridge.server.security import BodyError, RateLimiter, read_json

if TYPE_CHECKING:
    from cidbridge.hub import Hub
    from cidbridge.server.auth import Auth
    from cidbridge.server.metrics import Metrics

FORMAT = "api"
DEFAULT_LINE = "api"
EVENTS = ("ringing", "ring", "answered", "ended")
FIELDS = ("number", "name", "number_absence", "name_absence", "line", "event")
NUMBER = re.compile(r"[0-9+*#()\-. ]{1,32}")
LINE_NAME = re.compile(r"[\w.:@-][\w .:@-]{0,63}")
MAX_NAME = 64
#: Posts a token may make in a burst, then per second.
POST_BURST = 50
POST_RATE = 20.0
#: Ingest line names kept at once, and seconds an idle one is kept (see the module doc).
MAX_LINES = 32
IDLE_FORGET = 600.0


class IngestError(Exception):
    """A request that cannot be accepted; becomes a JSON error answer."""

    def __init__(
        self, status: int, message: str, problems: dict[str, str] | None = None, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems
        self.retry_after = retry_after


def parse_call(body: Any) -> tuple[str, Frame]:
    """The line name and the tracker frame for a decoded JSON body; :class:`IngestError` if invalid."""
    if not isinstance(body, dict):
        raise IngestError(422, "the body must be a JSON object")
    problems: dict[str, str] = {}
    for key in body:
        if key not in FIELDS:
            problems[key] = f"unknown field; expected some of: {', '.join(FIELDS)}"
    event = body.get("event", "ringing")
    if event not in EVENTS:
        problems["event"] = f"must be one of {', '.join(EVENTS)}"
    line = body.get("line", DEFAULT_LINE)
    if not isinstance(line, str) or not LINE_NAME.fullmatch(line):
        problems["line"] = "must be a name of 1-64 letters, digits, spaces or . : @ _ -"
    number = body.get("number")
    if number is not None and (not isinstance(number, str) or not NUMBER.fullmatch(number.strip() or "x")):
        problems["number"] = "must be a string of 1-32 digits, spaces or + * # ( ) - ."
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        problems["name"] = f"must be text of at most {MAX_NAME} characters"
    for key in ("number_absence", "name_absence"):
        value = body.get(key)
        if value is not None and value not in ABSENCES:
            problems[key] = f"must be one of {', '.join(sorted(ABSENCES))}"
    if problems:
        raise IngestError(
            422, "invalid call: " + "; ".join(f"{k}: {v}" for k, v in problems.items()), problems
        )
    frame: Frame
    if event == "ring":
        frame = RingFrame(FORMAT)
    elif event == "answered":
        frame = HookFrame(FORMAT, "off")
    elif event == "ended":
        frame = HookFrame(FORMAT, "on")
    else:
        number = number.strip() if number else None
        absence = body.get("number_absence") or (None if number else UNAVAILABLE)
        frame = CidFrame(
            FORMAT,
            number=number,
            number_absence=None if number else absence,
            name=(name.strip() or None) if name else None,
            name_absence=body.get("name_absence"),
        )
    return line, frame


class Ingest:
    """The endpoint and the call trackers of the ingest lines."""

    def __init__(
        self,
        hub: Hub,
        *,
        auth: Auth,
        serial_lines: Callable[[], set[str]],
        ring_gap: float,
        ringless_timeout: float = 45.0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.auth = auth
        self.serial_lines = serial_lines
        self.ring_gap = ring_gap
        self.ringless_timeout = ringless_timeout
        self.metrics = metrics
        self.clock = clock
        #: Ingest line name -> its tracker, least recently used first.
        self.trackers: OrderedDict[str, CallTracker] = OrderedDict()
        self._used: dict[str, float] = {}
        self._limiter = RateLimiter(POST_BURST, POST_RATE)
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        #: One report at a time: a tracker is not re-entrant.
        self._lock = asyncio.Lock()

    async def endpoint(self, request: Request) -> Response:
        headers = None
        try:
            answer = await self._handle(request)
            status = 200
        except IngestError as exc:
            status = exc.status
            answer = {"error": str(exc)}
            if exc.problems:
                answer["problems"] = exc.problems
            if exc.retry_after:
                headers = {"Retry-After": str(exc.retry_after)}
        if self.metrics is not None:
            self.metrics.ingest_requests.labels(str(status)).inc()
        return JSONResponse(answer, status_code=status, headers=headers)

    async def _handle(self, request: Request) -> dict[str, Any]:
        if not self.auth.required:
            raise IngestError(403, "posting calls needs a token: set [server] token in the config")
        try:
            name = self.auth.check(request, "/api/cti/incoming-call")
        except Refused as refused:
            raise IngestError(refused.status, str(refused), retry_after=refused.retry_after) from None
        if not self._limiter.allow(name):
            raise IngestError(429, "too many calls posted; slow down")
        try:
            data = await read_json(request)
        except BodyError as exc:
            raise IngestError(exc.status, str(exc)) from None
        line, frame = parse_call(data)
        if line in self.serial_lines():
            raise IngestError(409, f"line {line!r} is a serial line of this daemon; post under another name")
        async with self._lock:
            tracker = self._tracker(line)
            events = tracker.receive(frame, self.clock())
            committed = [await self.hub.publish(event) for event in events]
        self._wake.set()
        call_id = committed[-1]["call_id"] if committed else None
        return {"call_id": call_id, "events": [{"id": e["id"], "type": e["type"]} for e in committed]}

    def set_timing(self, ring_gap: float, ringless_timeout: float) -> None:
        """New ``[calls]`` timings (a reload), for the calls in progress too."""
        self.ring_gap, self.ringless_timeout = ring_gap, ringless_timeout
        for tracker in self.trackers.values():
            tracker.ring_gap, tracker.ringless_timeout = ring_gap, ringless_timeout
        self._wake.set()  # deadlines moved

    def _tracker(self, line: str) -> CallTracker:
        now = self.clock()
        tracker = self.trackers.get(line)
        if tracker is None:
            if len(self.trackers) >= MAX_LINES:
                idle = next((name for name, t in self.trackers.items() if not t.active), None)
                if idle is None:
                    raise IngestError(
                        429, f"{MAX_LINES} ingest lines have calls in progress; end one or reuse a line name"
                    )
                self._forget(idle)
            # Random call ids: an ingest line's calls must not collide with another
            # source's, nor with its own from before a restart.
            tracker = CallTracker(
                line,
                ring_gap=self.ring_gap,
                ringless_timeout=self.ringless_timeout,
                new_call_id=lambda: f"{line}-{uuid.uuid4().hex[:12]}",
            )
            self.trackers[line] = tracker
        self.trackers.move_to_end(line)
        self._used[line] = now
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._run_timers(), name="ingest timers")
        return tracker

    def _forget(self, line: str) -> None:
        """Drop an idle ingest line's tracker and its metric series."""
        self.trackers.pop(line, None)
        self._used.pop(line, None)
        if self.metrics is not None:
            self.metrics.forget_line(line)

    def _next_deadline(self) -> float | None:
        """When a call may end, or an idle line may be forgotten."""
        times = []
        for name, tracker in self.trackers.items():
            if tracker.deadline is not None:
                times.append(tracker.deadline)
            elif not tracker.active:
                times.append(self._used.get(name, 0.0) + IDLE_FORGET)
        return min(times, default=None)

    async def _run_timers(self) -> None:
        """End calls whose time ran out (nobody posted ``ended``), like a serial line does;
        forget lines idle for :data:`IDLE_FORGET` seconds."""
        while True:
            deadline = self._next_deadline()
            self._wake.clear()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            async with self._lock:
                now = self.clock()
                for tracker in list(self.trackers.values()):
                    events: list[CallEvent] = tracker.tick(now)
                    for event in events:
                        await self.hub.publish(event)
                for name, tracker in list(self.trackers.items()):
                    if not tracker.active and now - self._used.get(name, now) >= IDLE_FORGET:
                        self._forget(name)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(BaseException):
                await self._timer
