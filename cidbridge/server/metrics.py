"""``GET /metrics``: what the daemon is doing, in the Prometheus text format.

Counters that something increments live here as prometheus-client objects (events
emitted, emit duration, calls, line reconnects, refused and dropped clients).
Numbers other parts already keep — each decoder's :class:`DecoderStats`, the lines'
state, the connected clients, the fan-out paths, the cluster link — are read when
Prometheus scrapes, by :class:`_StateCollector`, so nothing is counted twice.

Each :class:`Metrics` has its own registry (not prometheus-client's global one), so
several daemons in one process (the tests) do not mix their numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

#: Emit durations are tens of microseconds to tens of milliseconds.
EMIT_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    """The daemon's metrics; also a hub sink (it counts calls and line reconnects).

    ``state`` is called at every scrape and returns the live objects to read: a dict
    with ``lines`` (objects with ``name``, ``state`` and ``decoder``), ``clients``
    (int), ``fanout`` (:class:`~cidbridge.server.fanout.FanOutStats` or None) and
    ``cluster`` (an object with ``stats()`` returning a dict of counters, or None) and
    ``outputs`` (:meth:`cidbridge.outputs.Outputs.status`: a dict of output statuses).
    """

    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.events_emitted = Counter(
            "cidbridge_events_emitted",
            "Events sent to Socket.IO clients, by type",
            ["type"],
            registry=registry,
        )
        self.emit_seconds = Histogram(
            "cidbridge_emit_seconds",
            "Time to hand one event to every connected client",
            buckets=EMIT_BUCKETS,
            registry=registry,
        )
        self.calls = Counter(
            "cidbridge_calls", "Calls seen by this node, by line", ["line"], registry=registry
        )
        self.line_reconnects = Counter(
            "cidbridge_line_reconnects",
            "Times a line came back up after being down",
            ["line"],
            registry=registry,
        )
        self.clients_refused = Counter(
            "cidbridge_clients_refused",
            "Socket.IO connections refused, by reason (token, rate, throttled)",
            ["reason"],
            registry=registry,
        )
        self.clients_dropped = Counter(
            "cidbridge_clients_dropped",
            "Connected clients disconnected by the daemon, by reason (flood)",
            ["reason"],
            registry=registry,
        )
        self.ingest_requests = Counter(
            "cidbridge_ingest_requests",
            "POST /api/cti/incoming-call requests, by HTTP status",
            ["status"],
            registry=registry,
        )
        self.connections_refused = Counter(
            "cidbridge_connections_refused",
            "TCP connections closed before a request, by limit "
            "(max_connections, max_connections_per_address, header_timeout)",
            ["reason"],
            registry=registry,
        )
        registry.register(_StateCollector(state))
        self._lines_seen_up: set[str] = set()

    # -- hub sink ----------------------------------------------------------------

    async def deliver(self, event: dict[str, Any]) -> None:
        if "origin" in event:
            return  # read by another node: counted there
        line = event.get("line") or ""
        if event["type"] == "call":
            self.calls.labels(line).inc()
        elif event["type"] == "line" and event.get("state") == "up":
            if line in self._lines_seen_up:
                self.line_reconnects.labels(line).inc()
            self._lines_seen_up.add(line)

    def forget_line(self, line: str) -> None:
        """Drop ``line``'s series (an ingest line no longer in use), so names cannot pile up."""
        for counter in (self.calls, self.line_reconnects):
            with contextlib.suppress(KeyError):
                counter.remove(line)
        self._lines_seen_up.discard(line)

    # -- HTTP --------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _StateCollector(Collector):
    """Reads the numbers other parts keep, at scrape time."""

    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        state = self.state()
        frames = CounterMetricFamily(
            "cidbridge_frames_decoded", "Frames decoded, by line and format", labels=["line", "format"]
        )
        invalid = CounterMetricFamily(
            "cidbridge_frames_invalid",
            "Frames that failed a checksum, CRC or length check, by line and format",
            labels=["line", "format"],
        )
        bytes_in = CounterMetricFamily("cidbridge_line_bytes", "Bytes read from each line", labels=["line"])
        skipped = CounterMetricFamily(
            "cidbridge_line_bytes_skipped", "Bytes skipped as noise on each line", labels=["line"]
        )
        line_up = GaugeMetricFamily("cidbridge_line_up", "1 while the line is up, else 0", labels=["line"])
        packets = CounterMetricFamily(
            "cidbridge_udp_packets",
            "Packets from Whozz Calling Ethernet units, by result (accepted, duplicate, refused, …)",
            labels=["line", "result"],
        )
        for line in state.get("lines", ()):
            for result, count in (getattr(line, "packets", None) or {}).items():
                packets.add_metric([line.name, result], count)
            decoder = line.decoder
            stats = decoder.stats
            # "auto" hands over to the decoder it detected (``current``): label that format.
            fmt = getattr(getattr(decoder, "current", None), "format", None) or decoder.format or "auto"
            frames.add_metric([line.name, fmt], stats.frames)
            invalid.add_metric([line.name, fmt], stats.invalid)
            bytes_in.add_metric([line.name], stats.bytes_in)
            skipped.add_metric([line.name], stats.skipped)
            line_up.add_metric([line.name], 1.0 if line.state == "up" else 0.0)
        yield from (frames, invalid, bytes_in, skipped, line_up)
        if packets.samples:
            yield packets
        yield GaugeMetricFamily(
            "cidbridge_clients", "Socket.IO clients receiving live events", value=state.get("clients", 0)
        )
        fanout = state.get("fanout")
        if fanout is not None:
            paths = CounterMetricFamily(
                "cidbridge_fanout_frames",
                "Event frames sent, by path: written directly, or through Engine.IO's queue",
                labels=["path"],
            )
            paths.add_metric(["direct"], fanout.direct)
            paths.add_metric(["queued"], fanout.queued)
            yield paths
            yield CounterMetricFamily(
                "cidbridge_slow_clients_dropped",
                "Clients disconnected for not reading their events",
                value=fanout.slow_dropped,
            )
        yield from _output_metrics(state.get("outputs") or {})
        cluster = state.get("cluster")
        if cluster is not None:
            for name, value in cluster.stats().items():
                kind = GaugeMetricFamily if name.endswith("_connected") else CounterMetricFamily
                yield kind(
                    f"cidbridge_cluster_{name}", f"Cluster link: {name.replace('_', ' ')}", value=value
                )


def _output_metrics(outputs: dict[str, dict[str, Any]]) -> Iterable[Metric]:
    """One series per output (NCID, UDP, MQTT, webhooks; see :mod:`cidbridge.outputs`)."""
    if not outputs:
        return
    up = GaugeMetricFamily(
        "cidbridge_output_up", "1 while the output's consumer is reachable", labels=["output"]
    )
    queued = GaugeMetricFamily(
        "cidbridge_output_queued", "Events waiting in the output's queue", labels=["output"]
    )
    delivered = CounterMetricFamily("cidbridge_output_delivered", "Events the output sent", labels=["output"])
    dropped = CounterMetricFamily(
        "cidbridge_output_dropped", "Events dropped because the output's queue was full", labels=["output"]
    )
    # An output's own numbers: status["gauges"] / status["counters"], {name: value}.
    extra: dict[str, Metric] = {}
    for name, status in outputs.items():
        up.add_metric([name], 1.0 if status["state"] == "up" else 0.0)
        queued.add_metric([name], status["queued"])
        delivered.add_metric([name], status["delivered"])
        dropped.add_metric([name], status["dropped"])
        for kind, family in (("gauges", GaugeMetricFamily), ("counters", CounterMetricFamily)):
            for key, value in (status.get(kind) or {}).items():
                metric = f"cidbridge_output_{key}"
                if metric not in extra:
                    extra[metric] = family(metric, f"Output: {key.replace('_', ' ')}", labels=["output"])
                extra[metric].add_metric([name], value)
    yield from (up, queued, delivered, dropped, *extra.values())
