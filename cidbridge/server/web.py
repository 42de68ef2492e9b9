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
* :mod:`~cidbridge.server.security` — tokens, rate limits, size caps;
* :mod:`~cidbridge.server.auth` — the one token/session check, ``/api/session``;
* :mod:`~cidbridge.server.guards` — Host check, security headers, no JSONP (outermost);
* :mod:`~cidbridge.server.connections` — connection caps and the request-head deadline.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

import socketio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cidbridge import internals
from cidbridge.config import Config
from cidbridge.hub import Hub
from cidbridge.lines.pushed import PushedCalls
from cidbridge.outputs import Outputs
from cidbridge.server.auth import Auth
from cidbridge.server.broadcast import Broadcaster
from cidbridge.server.cluster import ClusterLink, redis_client
from cidbridge.server.connections import ConnectionGuard, connection_budget, descriptor_limit
from cidbridge.server.directory_api import DirectoryApi
from cidbridge.server.guards import OriginLog, allowed_hosts, guarded
from cidbridge.server.http import HttpApp
from cidbridge.server.ingest import Ingest
from cidbridge.server.metrics import Metrics

INGEST_PATH = "/api/cti/incoming-call"

log = logging.getLogger(__name__)


def node_name(config: Config) -> str:
    """This node's name: ``[broadcast] node``, else the host name."""
    return config.broadcast.node or socket.gethostname()


class WebServer:
    """Every web-facing part, wired to the hub.  ``lines`` returns the daemon's lines.

    ``posted`` is the source posted calls go to (the daemon owns it and its timers);
    the ingest endpoint only parses requests and hands it their frames.
    """

    def __init__(
        self,
        config: Config,
        hub: Hub,
        *,
        status: Callable[[], dict[str, Any]],
        lines: Callable[[], Sequence[Any]],
        posted: PushedCalls,
        outputs: Outputs | None = None,
    ) -> None:
        self.config = config
        self.hub = hub
        self.lines = lines
        self.outputs = outputs if outputs is not None else Outputs()
        self.node = node_name(config)
        self.metrics = Metrics(self._metrics_state)
        #: The one token check (HTTP and Socket.IO); tokens follow reloads through self.http.
        self.auth = Auth(lambda: self.http.tokens)
        self.broadcaster = Broadcaster(config, hub, node=self.node, metrics=self.metrics, auth=self.auth)
        #: With ``[broadcast] redis_url``: events shared with the other nodes (Redis Streams).
        self.cluster: ClusterLink | None = None
        if config.broadcast.redis_url:
            client = redis_client(config.broadcast.redis_url)
            self.cluster = ClusterLink(client, hub, self.node, channel=config.broadcast.channel)
            self.broadcaster.publish_remote = self.cluster.publish
        self.ingest = Ingest(posted, auth=self.auth, metrics=self.metrics)
        hub.sinks.extend([self.broadcaster, self.metrics])
        hub.announcers.append(self.broadcaster.announce)
        self.http = HttpApp(
            hub,
            auth=self.auth,
            tokens=config.server.tokens,
            replay_calls=config.calls.replay_calls,
            status=status,
            extra_routes=[
                Route(INGEST_PATH, self.ingest.endpoint, methods=["POST"]),
                Route("/metrics", self._metrics_endpoint),
            ],
            api_routes=lambda refusal: (
                DirectoryApi(
                    hub,
                    refusal=refusal,
                    panel=lambda: self.config.panel,
                    event_name=lambda: self.broadcaster.event_name,
                ).routes
            ),
            cors_origins=config.server.cors_origins,
        )
        self.fd_limit = descriptor_limit()
        self.connections = ConnectionGuard(
            *self.connection_limits(config),
            exempt=config.server.trusted_proxies,
            on_refused=lambda reason: self.metrics.connections_refused.labels(reason).inc(),
        )
        #: The Host check (outermost, with the security headers) guards Socket.IO too.
        #: Inside it, refused page origins are logged (browsers hide the reason from pages);
        #: Socket.IO and the HTTP API share the allow-list, which a reload replaces.
        self.app, self.host_check = guarded(
            OriginLog(
                socketio.ASGIApp(self.broadcaster.sio, other_asgi_app=self.http.app),
                lambda: self.http.cors.origins,
            ),
            allowed_hosts(config.server.host, config.server.allowed_hosts),
        )

    @property
    def scheme(self) -> str:
        return "https" if self.config.server.tls_cert else "http"

    def connection_limits(self, config: Config) -> tuple[int, int]:
        """``max_connections`` (lowered to fit the descriptor limit) and the per-address cap."""
        wanted = config.server.max_connections
        total = connection_budget(wanted, self.fd_limit)
        if total < wanted:
            log.warning(
                "serving at most %d connections, not %d: the open-file limit is %d "
                "(raise it: LimitNOFILE= in the unit, or ulimit -n)",
                total,
                wanted,
                self.fd_limit,
            )
        return total, min(config.server.max_connections_per_address, total)

    def uvicorn_options(self) -> dict[str, Any]:
        """Extra ``uvicorn.Config`` options: the guarded protocol, proxies, TLS when configured.

        ``X-Forwarded-For`` is believed only from ``[server] trusted_proxies`` (passed
        explicitly, so uvicorn's ``FORWARDED_ALLOW_IPS`` environment variable and its
        127.0.0.1 default never apply).
        """
        server = self.config.server
        options: dict[str, Any] = {
            # uvicorn's own cap (503 per request), a backstop: the guard refuses first.
            "limit_concurrency": self.connections.max_connections + 1,
            "proxy_headers": bool(server.trusted_proxies),
            "forwarded_allow_ips": list(server.trusted_proxies),
        }
        if internals.usable(internals.CONNECTION_GUARD):  # else warned at start (cidbridge/internals.py)
            options["http"] = self.connections.protocol()
        if server.tls_cert and server.tls_key:
            options.update(ssl_certfile=str(server.tls_cert), ssl_keyfile=str(server.tls_key))
        return options

    def start(self) -> None:
        """Start what runs in the background (the cluster link); call inside the loop."""
        if self.cluster is not None:
            self.cluster.start()

    def status(self) -> dict[str, Any]:
        """What /healthz adds about the web side."""
        status: dict[str, Any] = {"node": self.node, "clients": self.broadcaster.clients}
        if self.cluster is not None:
            status["cluster"] = {
                "redis": "connected" if self.cluster.connected else "disconnected",
                "peers": self.cluster.peers,
            }
        return status

    async def close(self) -> None:
        self.connections.closing = True  # no new connection while stopping
        # Panels' event streams end now, so the web server's graceful stop need not wait
        # for them (it gave up after 2 s with a traceback for each).
        self.hub.end_subscriptions()
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
        refusal = self.auth.refusal(request, "/metrics")
        if refusal is not None:
            return refusal
        return await self.metrics.endpoint(request)
