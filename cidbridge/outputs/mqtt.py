"""MQTT output: every event, each line's state and Home Assistant discovery, to one broker.

What it publishes is described in :mod:`cidbridge.outputs.homeassistant` and the
README ("MQTT and Home Assistant").  How it behaves:

* **Never slows the hub.**  :meth:`MqttOutput.deliver` follows the line's state
  (:class:`~cidbridge.core.linestate.LineStates`, pure) and queues the event; the
  output's task publishes.  While the broker is unreachable events wait in the
  bounded queue (``[mqtt] queue``); past it the oldest are dropped and counted.
* **In order, at least once.**  One message at a time, each acknowledged by the
  broker (QoS 1 by default) before the next; a message whose acknowledgement is lost
  with the connection is sent again after the reconnect, so a subscriber may see an
  event twice (the ``id`` tells).  Retained messages (status, discovery, states) are
  published again after every reconnect: a broker restarted without persistence has
  forgotten them.
* **Availability.**  ``<prefix>/<node>/status`` is ``online`` once connected,
  ``offline`` as the last will (the broker publishes it if cidbridge dies or its
  network goes) and on a clean stop.
* **Reconnects** with capped exponential backoff (0.5 s doubling to 30 s).
* **Calls from other nodes** (``origin`` events) are skipped unless ``[mqtt]
  relayed = true``: in a cluster each node publishes its own lines under its own
  node name, so Home Assistant sees each call once.

The client is aiomqtt (see the README, "Why these libraries"): one client per
connection attempt, its ``messages`` iterator watched so a lost connection is
noticed at once rather than after a publish times out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

import aiomqtt

from cidbridge.config import MqttConfig
from cidbridge.core.linestate import LineStates, caller_text
from cidbridge.outputs import Backoff, Event, Output
from cidbridge.outputs.homeassistant import Topics, discovery_messages, encode

log = logging.getLogger(__name__)

#: Seconds to wait for the broker to acknowledge one message (or the connection).
PUBLISH_TIMEOUT = 10.0
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 30.0
#: Fields of an event copied into its Home Assistant event (besides ``event_type``).
NOTICE_FIELDS = (
    "id",
    "call_id",
    "line",
    "time",
    "number",
    "display",
    "e164",
    "name",
    "note",
    "number_absence",
    "ring_count",
    "waiting",
    "outcome",
    "duration_s",
    "blocked",
)


class MqttOutput(Output):
    """Publishes to one broker.  ``lines``: the configured line names (known before any call);
    ``connected_lines``: those that report up/down (they get a Connection entity)."""

    def __init__(
        self,
        config: MqttConfig,
        node: str,
        *,
        lines: Iterable[str] = (),
        connected_lines: Iterable[str] = (),
    ) -> None:
        super().__init__("mqtt", queue_limit=config.queue)
        self.config = config
        self.node = node
        self.topics = Topics(config.topic_prefix, node)
        self.states = LineStates()
        for name in lines:
            self.states.add_line(name)
        self._connected_lines = set(connected_lines)
        #: Successful connections after the first one.
        self.reconnects = 0
        self._connections = 0
        #: Retained topic -> payload last published on this connection (re-sent after a reconnect).
        self._retained: dict[str, bytes] = {}
        #: Lines whose discovery messages went out on this connection -> with a Connection entity.
        self._discovered: dict[str, bool] = {}

    # -- the hub's side ----------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        if "origin" in event and not self.config.relayed:
            return
        change = self.states.apply(event)
        if change is not None and change.connection_changed:
            self._connected_lines.add(change.line)
        self.queue.put({"event": event, "notice": change.notice if change else None})

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "broker": f"{self.config.host}:{self.config.port}",
            "counters": {"reconnects": self.reconnects},
        }

    # -- the output's task --------------------------------------------------------------

    async def run(self) -> None:
        backoff = Backoff(RECONNECT_FIRST, RECONNECT_MAX)
        where = f"{self.config.host}:{self.config.port}"
        while True:
            connected = False
            try:
                async with self._client() as client:
                    connected = True
                    backoff.reset()
                    await self._session(client)
            except (aiomqtt.MqttError, OSError, ssl.SSLError) as exc:
                self.set_state("down", f"broker {where}: {_why(exc, connecting=not connected)}")
            await asyncio.sleep(backoff.next())

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        tls = None
        if cfg.tls:
            tls = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username or None,
            password=cfg.password or None,
            identifier=cfg.client_id or f"cidbridge-{self.node}",
            will=aiomqtt.Will(self.topics.status, b"offline", qos=1, retain=True),
            clean_session=True,
            keepalive=cfg.keepalive,
            timeout=PUBLISH_TIMEOUT,
            tls_context=tls,
            logger=log,
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: announce, then publish queued events until the connection drops."""
        self._connections += 1
        self.reconnects = self._connections - 1
        self._retained.clear()  # the broker may have restarted without them
        self._discovered.clear()
        pump = asyncio.create_task(self._pump(client), name="mqtt publish")
        watch = asyncio.create_task(self._watch(client), name="mqtt watch")
        try:
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # A clean stop: say so (the broker sends the will only when we vanish).
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._publish(client, self.topics.status, b"offline", retain=True), 0.5
                )
            raise
        finally:
            watch.cancel()
        if pump not in done:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            raise pump.exception()  # type: ignore[misc]
        raise aiomqtt.MqttError("connection lost")

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Returns (by raising) when the connection is lost: nothing is subscribed to."""
        async for _ in client.messages:
            pass

    async def _pump(self, client: aiomqtt.Client) -> None:
        await self._publish(client, self.topics.status, b"online", retain=True)
        for line in self.states.lines():
            await self._announce(client, line)
        self.set_state("up")
        while True:
            item = await self.queue.get()
            try:
                await self._send(client, item)
            except BaseException:
                self.queue.unget(item)  # sent again first after the reconnect: order kept
                raise
            self.delivered += 1

    async def _send(self, client: aiomqtt.Client, item: dict[str, Any]) -> None:
        event, notice = item["event"], item["notice"]
        await self._publish(client, self.topics.event, encode({**event, "node": self.node}))
        line = event.get("line")
        if not isinstance(line, str) or line not in self.states.lines():
            return
        # The state first, so an automation triggered by the notice reads the new state.
        await self._announce(client, line)
        if notice is not None:
            payload = {"event_type": notice, "caller": caller_text(event)}
            payload.update({key: event.get(key) for key in NOTICE_FIELDS})
            await self._publish(client, self.topics.line(line, "event"), encode(payload))

    async def _announce(self, client: aiomqtt.Client, line: str) -> None:
        """Publish what changed of the line's retained messages: discovery, state, connection."""
        retained: list[tuple[str, bytes]] = []
        connection_entity = line in self._connected_lines
        if self.config.discovery and self._discovered.get(line) != connection_entity:
            self._discovered[line] = connection_entity
            retained += [
                (topic, encode(config))
                for topic, config in discovery_messages(
                    self.topics,
                    line,
                    discovery_prefix=self.config.discovery_prefix,
                    connection=connection_entity,
                )
            ]
        retained.append((self.topics.line(line, "state"), encode(self.states.snapshot(line))))
        connection = self.states.connection(line)
        if connection is not None:
            retained.append((self.topics.line(line, "connection"), connection.encode()))
        for topic, payload in retained:
            if self._retained.get(topic) != payload:
                await self._publish(client, topic, payload, retain=True)
                self._retained[topic] = payload

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: bytes, *, retain: bool = False
    ) -> None:
        await client.publish(topic, payload, qos=self.config.qos, retain=retain)


#: CONNACK refusals (MQTT 3.1.1 return codes and their MQTT 5 reason codes) in words, with the fix.
_REFUSED = {
    1: "it does not speak MQTT 3.1.1",
    2: "it refused the client id; set [mqtt] client_id",
    3: "it is unavailable",
    4: "bad user name or password; check [mqtt] username and password",
    5: "not authorized; check [mqtt] username and password",
    132: "it does not speak MQTT 3.1.1",
    133: "it refused the client id; set [mqtt] client_id",
    134: "bad user name or password; check [mqtt] username and password",
    135: "not authorized; check [mqtt] username and password",
    136: "it is unavailable",
}


def _why(exc: BaseException, *, connecting: bool) -> str:
    """Why the connection failed or ended, in words (the broker's refusal codes named here)."""
    if connecting and isinstance(exc, aiomqtt.MqttCodeError):
        code = getattr(exc.rc, "value", exc.rc)  # an int, or paho's ReasonCode
        if isinstance(code, int) and code in _REFUSED:
            return f"connection refused: {_REFUSED[code]}"
    return str(exc) or type(exc).__name__
