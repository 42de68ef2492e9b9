"""The HTTP side: the panel, its event stream, the JSON API and the health check.

Routes:

* ``GET /`` — the built-in panel (static files under ``panel/``).
* ``GET /api/stream`` — Server-Sent Events, one ``cti-event`` payload per message,
  with the event id as the SSE id.  A reconnecting browser sends ``Last-Event-ID`` by
  itself and gets everything after it first; ``?after=N`` does the same by hand.
* ``GET /api/events?after=N`` — committed events after ``N`` (catch-up by polling).
* ``GET /api/calls`` — recent calls, newest first.
* ``GET /healthz`` — lines and clients; 503 while a line is down.

When tokens are configured, ``/api/*`` needs ``Authorization: Bearer <token>`` or
``?token=<token>`` (EventSource cannot send headers).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cidbridge.hub import Hub
from cidbridge.server.broadcast import check_token

#: Seconds between SSE keep-alive comments (keeps proxies and dead-peer detection honest).
SSE_KEEPALIVE = 15.0
PAGE_LIMIT = 500


class HttpApp:
    """Builds the Starlette app; ``status`` supplies the daemon's view for /healthz."""

    def __init__(
        self,
        hub: Hub,
        *,
        tokens: dict[str, str],
        replay_calls: int,
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self.hub = hub
        self.tokens = tokens
        self.replay_calls = replay_calls
        self.status = status
        self.started = time.monotonic()
        panel = resources.files("cidbridge.server") / "panel"
        self.app = Starlette(
            routes=[
                Route("/", self.index),
                Route("/healthz", self.healthz),
                Route("/api/events", self.events),
                Route("/api/calls", self.calls),
                Route("/api/stream", self.stream),
                Mount("/panel", StaticFiles(directory=str(panel)), name="panel"),
            ]
        )
        self._index = (panel / "index.html").read_bytes()

    # -- helpers -----------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        if not self.tokens:
            return True
        header = request.headers.get("authorization", "")
        offered = header[7:] if header.lower().startswith("bearer ") else request.query_params.get("token")
        return check_token(self.tokens, offered) is not None

    @staticmethod
    def _int(request: Request, name: str, default: int | None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not raw.isdigit():
            raise ValueError(f"{name} must be a non-negative integer")
        return int(raw)

    # -- routes ------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return Response(
            self._index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )

    async def healthz(self, request: Request) -> Response:
        status = self.status()
        status["uptime_s"] = round(time.monotonic() - self.started, 1)
        healthy = all(line["state"] == "up" for line in status.get("lines", {}).values())
        status["status"] = "ok" if healthy else "degraded"
        return JSONResponse(status, status_code=200 if healthy else 503)

    async def events(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "invalid or missing token"}, status_code=401)
        try:
            after = self._int(request, "after", 0) or 0
            limit = min(self._int(request, "limit", PAGE_LIMIT) or PAGE_LIMIT, PAGE_LIMIT)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.hub.store.events_after(after, limit))

    async def calls(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "invalid or missing token"}, status_code=401)
        try:
            limit = min(self._int(request, "limit", 50) or 50, PAGE_LIMIT)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.hub.store.calls(limit=limit, line=request.query_params.get("line")))

    async def stream(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "invalid or missing token"}, status_code=401)
        raw = request.headers.get("last-event-id") or request.query_params.get("after")
        after = int(raw) if raw and raw.isdigit() else None
        return StreamingResponse(
            self._sse(after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse(self, after: int | None) -> AsyncIterator[bytes]:
        hub = self.hub
        subscription = hub.subscribe()  # first, so nothing committed from now on is missed
        try:
            if after is None:
                after = hub.store.recent_calls_start(self.replay_calls)
            yield b"retry: 2000\n\n"
            while events := hub.store.events_after(after, PAGE_LIMIT):
                for event in events:
                    yield _sse_message(event)
                after = events[-1]["id"]
            while True:
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), SSE_KEEPALIVE)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if event is None:
                    return  # fell too far behind: the browser reconnects and catches up
                if event["id"] > after:
                    after = event["id"]
                    yield _sse_message(event)
        finally:
            subscription.close()


def _sse_message(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event['id']}\nevent: cti-event\ndata: {data}\n\n".encode()
