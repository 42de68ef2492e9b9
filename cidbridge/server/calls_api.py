"""The call log over HTTP: history, export, catch-up, and the panel's live stream.

Routes (all need the token or the panel's session cookie when tokens are configured;
see :mod:`cidbridge.server.auth`):

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

``/api/stream`` is the one route that takes ``?token=`` (``EventSource`` in other
systems cannot send a header; the built-in panel uses its cookie).  A malformed
parameter (not a whole number, a number beyond what SQLite stores, a time it cannot
read) is a 400 naming it, never a server error.

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
from cidbridge.server.auth import Auth
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
#: The largest id or cursor there can be (SQLite's integers are 64-bit).
MAX_ID = 2**63 - 1
#: The SSE event (and Socket.IO event) name of announcements: phonebook, missed calls, blocks.
DIRECTORY_EVENT = "cti-directory"


class BadRequest(ValueError):
    """A query parameter is wrong; the message names it."""


class CallsApi:
    """The routes above, over one hub.  ``auth`` checks a request's token or session."""

    def __init__(self, hub: Hub, *, auth: Auth, replay_calls: Callable[[], int]):
        self.hub = hub
        self.auth = auth
        self.replay_calls = replay_calls
        self.routes = [
            Route("/api/events", self._guard(self.events, "/api/events")),
            Route("/api/calls", self._guard(self.calls, "/api/calls")),
            Route("/api/calls.csv", self._guard(self.calls_csv, "/api/calls.csv")),
            Route("/api/stream", self._guard(self.stream, "/api/stream", query=True)),
        ]

    def _guard(
        self, handler: Callable[[Request], Any], where: str, *, query: bool = False
    ) -> Callable[[Request], Any]:
        """Token check and 400s for bad parameters, in one place for every route."""

        async def guarded(request: Request) -> Response:
            refusal = self.auth.refusal(request, where, query=query)
            if refusal is not None:
                return refusal
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
        after = _int(request, "after", None)
        resume = request.headers.get("last-event-id", "").strip()
        if _whole(resume):  # what this daemon sent; anything else is ignored, not an error
            after = int(resume)
        return StreamingResponse(
            self._sse(after, lambda: self.auth.allows(request, query=True)),
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


def _whole(raw: str) -> bool:
    """``raw`` is a whole number SQLite can hold (ASCII digits only: ``"²".isdigit()`` is true)."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_ID


def _int(request: Request, name: str, default: Any) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _whole(raw):
        raise BadRequest(f"{name} must be a whole number from 0 to {MAX_ID}, not {raw[:40]!r}")
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
