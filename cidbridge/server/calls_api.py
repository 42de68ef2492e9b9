"""The call log over HTTP: history, export, catch-up, and the panel's live stream.

Routes (all need the token when tokens are configured):

* ``GET /api/calls`` — calls, newest first, one page at a time:
  ``{"calls": [...], "next_before": N | null}``.  Filters: ``since``, ``until``
  (``2h``, ``7d``, ``today``, ``2025-11-26``, ``2025-11-26T09:30``, …), ``line``,
  ``number`` (digits anywhere in it), ``limit`` (≤ 500, default 50); the next page is
  ``before=<next_before>``, a cursor that stays right while new calls arrive.
* ``GET /api/calls.csv`` — the same filters (``limit`` ≤ 100,000, default 10,000) as a
  CSV file for a spreadsheet (UTF-8 with a byte-order mark, so Excel shows Korean).
* ``GET /api/events?after=N`` — committed events after id ``N``, oldest first
  (``limit`` ≤ 500): catch-up by polling.
* ``GET /api/stream`` — Server-Sent Events, one ``cti-event`` message per event with
  the event id as the SSE id.  A reconnecting browser sends ``Last-Event-ID`` by
  itself and first gets everything after it; ``?after=N`` does the same by hand;
  with neither, the events of the last ``replay_calls`` calls.  No gap and no
  duplicate: the stream subscribes to the hub *before* reading the log, and skips
  ids it already sent.  Changes that are not call events (a contact edited, a
  missed call returned, the block list changed) come as ``cti-directory`` messages
  without an SSE id (see :mod:`cidbridge.server.directory_api`).

``/api/calls`` and ``/api/calls.csv`` also take ``q`` (a number or name fragment),
``name`` (a name fragment) — see :mod:`cidbridge.store.search`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cidbridge.hub import Announcement, Hub
from cidbridge.store import CallQuery
from cidbridge.store.export import calls_csv
from cidbridge.store.timespec import TimeSpecError, parse_time

#: Seconds between SSE keep-alive comments (keeps proxies and dead-peer detection honest).
SSE_KEEPALIVE = 15.0
PAGE_LIMIT = 500
CSV_LIMIT = 100_000
CSV_DEFAULT = 10_000
#: What the browser waits before reconnecting a dropped stream (the SSE ``retry:`` field).
SSE_RETRY_MS = 1000
#: The SSE event (and Socket.IO event) name of announcements: phonebook, missed calls, blocks.
DIRECTORY_EVENT = "cti-directory"


class BadRequest(ValueError):
    """A query parameter is wrong; the message names it."""


class CallsApi:
    """The routes above, over one hub.  ``authorised`` checks a request's token."""

    def __init__(self, hub: Hub, *, authorised: Callable[[Request], bool], replay_calls: Callable[[], int]):
        self.hub = hub
        self.authorised = authorised
        self.replay_calls = replay_calls
        self.routes = [
            Route("/api/events", self._guard(self.events)),
            Route("/api/calls", self._guard(self.calls)),
            Route("/api/calls.csv", self._guard(self.calls_csv)),
            Route("/api/stream", self._guard(self.stream)),
        ]

    def _guard(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """Token check and 400s for bad parameters, in one place for every route."""

        async def guarded(request: Request) -> Response:
            if not self.authorised(request):
                return JSONResponse({"error": "invalid or missing token"}, status_code=401)
            try:
                return await handler(request)
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        guarded.__name__ = handler.__name__
        return guarded

    # -- routes ------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        after = _int(request, "after", 0)
        limit = min(_int(request, "limit", PAGE_LIMIT), PAGE_LIMIT)
        return JSONResponse(self.hub.store.events_after(after, limit))

    async def calls(self, request: Request) -> Response:
        query = _call_query(request, default_limit=50, max_limit=PAGE_LIMIT)
        calls = self.hub.store.calls(query)
        more = len(calls) == query.limit and query.limit > 0
        return JSONResponse({"calls": calls, "next_before": calls[-1]["first_event"] if more else None})

    async def calls_csv(self, request: Request) -> Response:
        query = _call_query(request, default_limit=CSV_DEFAULT, max_limit=CSV_LIMIT)
        body = "\ufeff" + calls_csv(self.hub.store.calls(query))
        filename = f"calls-{datetime.now():%Y%m%d-%H%M}.csv"
        return Response(
            body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def stream(self, request: Request) -> Response:
        raw = request.headers.get("last-event-id") or request.query_params.get("after")
        after = int(raw) if raw and raw.isdigit() else None
        return StreamingResponse(
            self._sse(after, lambda: self.authorised(request)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse(self, after: int | None, allowed: Callable[[], bool]) -> AsyncIterator[bytes]:
        """The stream: replay after ``after``, then live events, while ``allowed()`` holds.

        ``allowed`` is asked again before every batch, event and keep-alive, so a token
        revoked by a reload ends the stream before anything more is sent (the browser's
        EventSource then reconnects, is refused with 401, and stops).
        """
        hub = self.hub
        subscription = hub.subscribe()  # first, so nothing committed from now on is missed
        try:
            if after is None:
                after = hub.store.recent_calls_start(self.replay_calls())
            yield f"retry: {SSE_RETRY_MS}\n\n".encode()
            while allowed() and (events := hub.store.events_after(after, PAGE_LIMIT)):
                for event in events:
                    yield _sse_message(event)
                after = events[-1]["id"]
            while allowed():
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), SSE_KEEPALIVE)
                except TimeoutError:
                    if allowed():
                        yield b": keep-alive\n\n"
                    continue
                if event is None:
                    return  # fell too far behind: the browser reconnects and catches up
                if isinstance(event, Announcement):
                    if allowed():
                        yield _sse_announcement(event.payload)
                    continue
                if event["id"] > after and allowed():
                    after = event["id"]
                    yield _sse_message(event)
        finally:
            subscription.close()


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)


def _time(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except TimeSpecError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def _call_query(request: Request, *, default_limit: int, max_limit: int) -> CallQuery:
    params = request.query_params
    before = _int(request, "before", 0) or None
    return CallQuery(
        limit=min(_int(request, "limit", default_limit), max_limit),
        before=before,
        since=_time(request, "since"),
        until=_time(request, "until"),
        line=params.get("line") or None,
        number=params.get("number") or None,
        name=_text(request, "name"),
        text=_text(request, "q"),
    )


def _text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if not raw or not raw.strip():
        return None
    if len(raw) > 100:
        raise BadRequest(f"{name} must be at most 100 characters")
    return raw


def _sse_announcement(payload: dict[str, Any]) -> bytes:
    # No SSE id: announcements are not in the call log, and must not move Last-Event-ID.
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {DIRECTORY_EVENT}\ndata: {data}\n\n".encode()


def _sse_message(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event['id']}\nevent: cti-event\ndata: {data}\n\n".encode()
