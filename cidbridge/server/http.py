"""The HTTP side: the panel, its event stream, the JSON API and the health check.

Routes:

* ``GET /`` — the built-in panel (static files under ``panel/``).
* ``GET /api/stream``, ``/api/events``, ``/api/calls``, ``/api/calls.csv`` — the call
  log and the panel's live stream (:mod:`cidbridge.server.calls_api`).
* ``api_routes`` — more ``/api`` routes built with this app's token check (a callable
  giving None when a request is let in, else the refusal to send): the
  panel's caller cards, phonebook, missed calls and block list
  (:mod:`cidbridge.server.directory_api`).
* ``GET /healthz`` — lines and clients; 503 while a line is down.
* ``extra_routes`` given by the daemon: ``POST /api/cti/incoming-call``
  (:mod:`cidbridge.server.ingest`) and ``GET /metrics`` (:mod:`cidbridge.server.metrics`).

Browsers may call the API from the origins in ``cors_origins`` only (CORS); with none
configured no CORS header is sent, so only the daemon's own pages can.

When tokens are configured, ``/api/*`` needs ``Authorization: Bearer <token>`` or the
panel's session cookie (:mod:`cidbridge.server.auth`; ``?token=`` only on
``/api/stream``).  ``GET /?token=…`` exchanges a token for the cookie and redirects
to ``/``, so the token does not stay in the address bar, the history or a proxy's log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from cidbridge.hub import Hub
from cidbridge.server.auth import Auth
from cidbridge.server.calls_api import CallsApi


class HttpApp:
    """Builds the Starlette app; ``status`` supplies the daemon's view for /healthz."""

    def __init__(
        self,
        hub: Hub,
        *,
        auth: Auth,
        tokens: dict[str, str],
        replay_calls: int,
        status: Callable[[], dict[str, Any]],
        extra_routes: Sequence[BaseRoute] = (),
        api_routes: Callable[[Callable[[Request], Response | None]], Sequence[BaseRoute]] | None = None,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.hub = hub
        self.auth = auth
        #: The configured tokens (name -> token); a reload replaces the dict.
        self.tokens = tokens
        self.replay_calls = replay_calls
        self.status = status
        self.started = time.monotonic()
        panel = resources.files("cidbridge.server") / "panel"
        # replay_calls is read per request: a reload may change it.
        calls_api = CallsApi(hub, auth=auth, replay_calls=lambda: self.replay_calls)
        routes = Starlette(
            routes=[
                # First: the daemon's own routes (the ingest, where calls arrive) are
                # matched before the twenty panel routes, on the way to the browsers.
                *extra_routes,
                Route("/", self.index),
                Route("/healthz", self.healthz),
                *auth.routes,
                *calls_api.routes,
                # More /api routes, given the same token check (the panel's directory API).
                *(api_routes(self._refusal) if api_routes is not None else ()),
                Mount("/panel", StaticFiles(directory=str(panel)), name="panel"),
            ]
        )
        #: The ASGI app to serve; its CORS allow-list can be replaced (:meth:`Cors.allow`).
        self.app = self.cors = Cors(routes, cors_origins)
        self._index = (panel / "index.html").read_bytes()

    def _refusal(self, request: Request) -> Response | None:
        # A fixed label: the path of these routes holds caller numbers (it is not logged).
        return self.auth.refusal(request, "the panel API")

    # -- routes ------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        if "token" in request.query_params:
            return await self.auth.index_token(request)
        return Response(
            self._index, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )

    async def healthz(self, request: Request) -> Response:
        status = self.status()
        status["uptime_s"] = round(time.monotonic() - self.started, 1)
        healthy = all(line["state"] == "up" for line in status.get("lines", {}).values())
        status["status"] = "ok" if healthy else "degraded"
        return JSONResponse(status, status_code=200 if healthy else 503)


class Cors:
    """Starlette's CORS middleware around ``app``, with an allow-list a reload can replace.

    The same allow-list as Socket.IO's ``cors_allowed_origins``; none = same origin
    (no CORS headers at all).
    """

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self._serve: ASGIApp = app
        #: The origins allowed now.
        self.origins: list[str] = []
        self.allow(origins)

    def allow(self, origins: Sequence[str]) -> None:
        """From now on, answer these origins (requests in flight finish as they began)."""
        self.origins = list(origins)
        self._serve = (
            CORSMiddleware(
                self.app,
                allow_origins=list(origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
                max_age=600,
            )
            if origins
            else self.app
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._serve(scope, receive, send)
