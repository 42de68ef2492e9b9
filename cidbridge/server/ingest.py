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

The endpoint only parses: the line's tracker, its timers and the bound on line
names belong to the posted-calls source the daemon made
(:func:`cidbridge.lines.pushed.posted_calls`).  A call nobody reports as ended is
ended by the tracker's own timers, like a box that sends only caller ID.  Line names
must not be the daemon's serial lines (two trackers must not claim one line; 409);
the default is ``"api"``.  At most :data:`~cidbridge.lines.pushed.MAX_LINES` names
are kept: an idle one is forgotten, with its metric series, after
:data:`~cidbridge.lines.pushed.IDLE_FORGET` seconds, or sooner when a new name needs
its place (least recently used first); a new name while every place has a call in
progress is refused (429).  Control characters in a posted name are removed like
those from a serial device (the call tracker does it).

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

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cidbridge.core.frames import ABSENCES, UNAVAILABLE, CidFrame, Frame, HookFrame, RingFrame
from cidbridge.core.source import TooManyLines
from cidbridge.lines.pushed import MAX_LINES, LineTaken
from cidbridge.server.auth import Refused
from cidbridge.server.security import BodyError, RateLimiter, read_json

if TYPE_CHECKING:
    from cidbridge.lines.pushed import PushedCalls
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
    """The endpoint: parses a posted call and hands its frame to the posted-calls source."""

    def __init__(self, source: PushedCalls, *, auth: Auth, metrics: Metrics | None = None) -> None:
        self.source = source
        self.auth = auth
        self.metrics = metrics
        self._limiter = RateLimiter(POST_BURST, POST_RATE)

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
        try:
            committed = await self.source.receive(frame, line)
        except LineTaken:
            raise IngestError(
                409, f"line {line!r} is a serial line of this daemon; post under another name"
            ) from None
        except TooManyLines:
            raise IngestError(
                429, f"{MAX_LINES} ingest lines have calls in progress; end one or reuse a line name"
            ) from None
        call_id = committed[-1]["call_id"] if committed else None
        return {"call_id": call_id, "events": [{"id": e["id"], "type": e["type"]} for e in committed]}
