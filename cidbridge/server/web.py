"""The web side of the daemon, assembled: Socket.IO, HTTP API, ingest, metrics, cluster.

The daemon builds one :class:`WebServer` after the hub and serves :attr:`WebServer.app`
with uvicorn (:meth:`WebServer.uvicorn_options` adds TLS when configured).  Keeping
the assembly here keeps the daemon about lifecycle, and each part in its own module:

* :mod:`~cidbridge.server.broadcast` — Socket.IO, replay, the room;
* :mod:`~cidbridge.server.fanout` — the emit path;
* :mod:`~cidbridge.server.http` — panel, SSE, JSON API, /healthz;
* :mod:`~cidbridge.server.ingest` — ``POST /api/cti/incoming-call``;
* :mod:`~cidbridge.server.directory_api` — caller cards, phonebook, missed calls, blocks;
* :mod:`~cidbridge.server.metrics` — ``GET /metrics``;
* :mod:`~cidbridge.server.cluster` — Redis scale-out (when ``[broadcast] redis_url``);
* :mod:`~cidbridge.server.security` — tokens, rate limits, size caps.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

import socketio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cidbridge.config import Config
from cidbridge.hub import Hub
from cidbridge.outputs import Outputs
from cidbridge.server.broadcast import Broadcaster
from cidbridge.server.cluster import ClusterLink, RedisLink
from cidbridge.server.directory_api import DirectoryApi
from cidbridge.server.http import HttpApp
from cidbridge.server.ingest import Ingest
from cidbridge.server.metrics import Metrics
from cidbridge.server.security import bearer_token, check_token

INGEST_PATH = "/api/cti/incoming-call"


def node_name(config: Config) -> str:
    """This node's name: ``[broadcast] node``, else the host name."""
    return config.broadcast.node or socket.gethostname()


class WebServer:
    """Every web-facing part, wired to the hub.  ``lines`` returns the daemon's lines."""

    def __init__(
        self,
        config: Config,
        hub: Hub,
        *,
        status: Callable[[], dict[str, Any]],
        lines: Callable[[], Sequence[Any]],
        outputs: Outputs | None = None,
    ) -> None:
        self.config = config
        self.lines = lines
        self.outputs = outputs if outputs is not None else Outputs()
        self.node = node_name(config)
        manager = None
        if config.broadcast.redis_url:
            manager = RedisLink(
                config.broadcast.redis_url,
                channel=config.broadcast.channel,
                event_name=config.server.event_name,
            )
        self.metrics = Metrics(self._metrics_state)
        self.broadcaster = Broadcaster(
            config, hub, node=self.node, client_manager=manager, metrics=self.metrics
        )
        self.cluster = ClusterLink(manager, hub, self.node) if manager is not None else None
        if self.cluster is not None:
            self.broadcaster.publish_remote = self.cluster.publish
        self.ingest = Ingest(
            hub,
            tokens=lambda: self.http.tokens,
            serial_lines=lambda: {line.name for line in self.lines()},
            ring_gap=config.calls.ring_gap,
            ringless_timeout=config.calls.ringless_timeout,
            metrics=self.metrics,
        )
        hub.sinks.extend([self.broadcaster, self.metrics])
        hub.announcers.append(self.broadcaster.announce)
        self.http = HttpApp(
            hub,
            tokens=config.server.tokens,
            replay_calls=config.calls.replay_calls,
            status=status,
            extra_routes=[
                Route(INGEST_PATH, self.ingest.endpoint, methods=["POST"]),
                Route("/metrics", self._metrics_endpoint),
            ],
            api_routes=lambda authorised: (
                DirectoryApi(
                    hub,
                    authorised=authorised,
                    panel=lambda: self.config.panel,
                    event_name=lambda: self.broadcaster.event_name,
                ).routes
            ),
            cors_origins=config.server.cors_origins,
        )
        self.app = socketio.ASGIApp(self.broadcaster.sio, other_asgi_app=self.http.app)

    @property
    def scheme(self) -> str:
        return "https" if self.config.server.tls_cert else "http"

    def uvicorn_options(self) -> dict[str, Any]:
        """Extra ``uvicorn.Config`` options: TLS with the configured certificate and key."""
        server = self.config.server
        if server.tls_cert and server.tls_key:
            return {"ssl_certfile": str(server.tls_cert), "ssl_keyfile": str(server.tls_key)}
        return {}

    def start(self) -> None:
        """Start what runs in the background (the cluster link); call inside the loop."""
        if self.cluster is not None:
            self.cluster.start()

    def status(self) -> dict[str, Any]:
        """What /healthz adds about the web side."""
        status: dict[str, Any] = {"node": self.node, "clients": self.broadcaster.clients}
        if self.cluster is not None:
            status["cluster"] = {
                "redis": "connected" if self.cluster.manager.subscribed else "disconnected",
                "peers": sorted(self.cluster.contiguous),
            }
        return status

    async def close(self) -> None:
        await self.ingest.close()
        if self.cluster is not None:
            await self.cluster.close()
        await self.broadcaster.close()

    # -- metrics -----------------------------------------------------------------

    def _metrics_state(self) -> dict[str, Any]:
        return {
            "lines": list(self.lines()),
            "clients": self.broadcaster.clients,
            "fanout": self.broadcaster.fanout.stats,
            "cluster": self.cluster,
            "outputs": self.outputs.status(),
        }

    async def _metrics_endpoint(self, request: Request) -> Response:
        tokens = self.http.tokens
        if tokens and check_token(tokens, bearer_token(request.headers, request.query_params)) is None:
            return JSONResponse({"error": "invalid or missing token"}, status_code=401)
        return await self.metrics.endpoint(request)
