"""Scale-out: several cidbridge processes sharing calls over Redis.

Each node reads its own lines and serves its own panels; python-socketio's
``AsyncRedisManager`` carries every call to every node, so a panel on any node sees
the calls of every node.  The hard part is the event ``id``:

**Ids are per node.**  Each node's SQLite log assigns ids to what *its* clients see.
A node that receives another node's event over Redis *mirrors* it: it commits a copy
to its own log (keeping the original ``time`` and adding ``origin: {node, id}``),
which gives the copy a local id, and then broadcasts the copy to its own clients.
So every client sees strictly increasing ids from the node it is connected to, and
every id it has seen is replayable from that node's log, exactly as with one node.
Every event carries ``node`` (whose log the ``id`` belongs to); a panel that moves
to another node sends its ``node`` and is given recent calls instead of a replay.

**Redis pub/sub is at-most-once**, so nodes repair gaps from each other's logs:

* each node's own events form a chain: every published event carries ``prev``, the
  id of the same node's previous own event;
* a receiver tracks, per origin, the id up to which it holds the whole chain
  (``contiguous``).  An event whose ``prev`` is beyond that reveals a gap;
* on a gap, after (re)subscribing, and when a peer announces a newer ``head`` (every
  :data:`HEAD_INTERVAL` seconds and after each reconnect), the receiver asks the
  origin to resend its own events after ``contiguous``.  The origin answers from its
  log (at most :data:`RESEND_LIMIT` events; older ones are not backfilled), and the
  receiver mirrors those it lacks;
* an origin that cannot publish (Redis down) stops publishing live events until
  its subscription is back, then announces its head, so receivers fetch the rest in
  order.

What a panel can rely on: every call read by any node reaches it once, in the id
order of its own node, usually within milliseconds and, after a Redis or network
failure, within about :data:`HEAD_INTERVAL` seconds of the link coming back.  A repaired
event may reach a node after later events of the same origin (its id there is then
higher); its ``time`` is still the original one.  What is not guaranteed: events
older than :data:`RESEND_LIMIT` behind, and events of a node that is down (they
arrive when it is back).  Line names must be unique across nodes (call ids derive
from them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

import socketio

if TYPE_CHECKING:
    from cidbridge.hub import Hub

log = logging.getLogger(__name__)

#: Seconds between a node's head announcements (bounds how long a lost tail can stay lost).
HEAD_INTERVAL = 5.0
#: Most events an origin resends for one request.
RESEND_LIMIT = 1000
#: Fewest seconds between two resend requests to the same node.
REQUEST_GAP = 1.0
#: Longest wait between attempts to resubscribe after losing Redis.
RESUBSCRIBE_MAX = 5.0
#: Socket.IO room for the nodes' own messages: no client ever joins it.
NODES_ROOM = "cidbridge-nodes"
HEAD, SYNC, RESEND = "cidbridge:head", "cidbridge:sync", "cidbridge:resend"


class RedisLink(socketio.AsyncRedisManager):
    """``AsyncRedisManager`` that hands cidbridge's messages to a :class:`ClusterLink`.

    It changes two things: call events and the nodes' own messages from other nodes
    go to ``link.receive`` instead of straight to local clients (they must be
    mirrored into the log first), and the listener resubscribes within
    :data:`RESUBSCRIBE_MAX` seconds and tells the link each time it has.
    """

    name = "cidbridge-redis"

    def __init__(self, url: str, *, channel: str, event_name: str) -> None:
        # Detect a dead connection within a minute even when no call comes.
        super().__init__(
            url, channel=channel, redis_options={"health_check_interval": 30, "socket_connect_timeout": 5}
        )
        self.event_name = event_name
        self.link: ClusterLink | None = None
        self.subscribed = False

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        data = message.get("data")
        if self.link is not None and event in (self.event_name, HEAD, SYNC, RESEND):
            payload = data[0] if isinstance(data, list) and data else None
            if isinstance(payload, dict):
                await self.link.receive(event, payload)
            return
        await super()._handle_emit(message)

    async def publish(self, event: str, payload: dict[str, Any], room: str) -> bool:
        """Publish one emit on the channel (not delivered locally); False if Redis refused."""
        message = {
            "method": "emit",
            "event": event,
            "data": [payload],
            "binary": False,
            "namespace": "/",
            "room": room,
            "skip_sid": None,
            "callback": None,
            "host_id": self.host_id,
        }
        return await self._publish(message) is not None

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        delay = 0.25
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                delay = 0.25
                self.subscribed = True
                if self.link is not None:
                    self.link.subscribed()
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:
                if self.subscribed:
                    log.warning("lost the Redis subscription (%s); resubscribing", exc)
                self.subscribed = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESUBSCRIBE_MAX)


class ClusterLink:
    """This node's side of the cluster: publishes own events, mirrors the others'."""

    def __init__(self, manager: RedisLink, hub: Hub, node: str) -> None:
        self.manager = manager
        self.hub = hub
        self.store = hub.store
        self.node = node
        manager.link = self
        #: Per origin node: the id up to which its whole chain of own events is here.
        self.contiguous: dict[str, int] = {}
        #: Per origin node: ids above ``contiguous`` already mirrored, by their ``prev``.
        self._ahead: dict[str, dict[int, int]] = {}
        self._last_own = 0
        #: Own events after this id have not all been published (Redis was down).
        self._behind: int | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._requested: dict[str, float] = {}
        self.counts = {"mirrored": 0, "duplicates": 0, "resend_requests": 0, "publish_failures": 0}

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Load the chain state from the log and start announcing this node's head."""
        self._last_own = self.store.last_own_id()
        self.contiguous = self.store.mirrored_heads()
        server = self.manager.server
        if not server.manager_initialized:
            # python-socketio starts the Redis listener at the first client; a node
            # must mirror calls (into its log) even before any panel connects.
            server.manager_initialized = True
            self.manager.initialize()
        self._spawn(self._announce_forever())
        self._spawn(self._publish_forever())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def stats(self) -> dict[str, float]:
        """Counters for /metrics (``redis_connected`` is a gauge)."""
        return {**self.counts, "redis_connected": 1.0 if self.manager.subscribed else 0.0}

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- own events --------------------------------------------------------------

    async def publish(self, payload: dict[str, Any]) -> None:
        """Queue one of this node's committed events for the other nodes; never waits.

        Called by the broadcaster inside the hub's commit; Redis round trips (or a
        Redis that does not answer) must not hold up the next call, so a single
        task publishes the queue in order.
        """
        message = {**payload, "prev": self._last_own}
        self._last_own = payload["id"]
        if self._behind is None:
            self._outbox.put_nowait(message)
        # else: published in order once Redis is back (see _announce_head)

    async def _publish_forever(self) -> None:
        while True:
            message = await self._outbox.get()
            if self._behind is not None:
                continue
            if not await self.manager.publish(self.manager.event_name, message, "agents"):
                self.counts["publish_failures"] += 1
                self._behind = message["prev"]
                log.warning(
                    "cannot publish event %s to Redis; other nodes get it when it is back", message["id"]
                )

    def subscribed(self) -> None:
        """The listener (re)subscribed: catch up in both directions."""
        self._spawn(self._after_subscribe())

    async def _after_subscribe(self) -> None:
        await self._announce_head()
        # To every node ("all"): a node missing from "have" is new here and resends its recent events.
        sync = {"node": self.node, "have": dict(self.contiguous), "all": True}
        await self.manager.publish(SYNC, sync, NODES_ROOM)

    async def _announce_forever(self) -> None:
        while True:
            await asyncio.sleep(HEAD_INTERVAL)
            if self.manager.subscribed:
                await self._announce_head()

    async def _announce_head(self) -> None:
        if await self.manager.publish(HEAD, {"node": self.node, "head": self._last_own}, NODES_ROOM):
            self._behind = None  # receivers now know our head and fetch what they lack

    def own_events_after(self, after: int) -> list[dict[str, Any]]:
        """This node's own events after ``after`` (the newest :data:`RESEND_LIMIT`), with ``prev``."""
        events = self.store.own_events_after(after, RESEND_LIMIT)
        if not events:
            return []
        prev = self.store.last_own_id(before=events[0]["id"])
        for event in events:
            event["node"], event["prev"], prev = self.node, prev, event["id"]
        return events

    # -- other nodes' messages ---------------------------------------------------

    async def receive(self, event: str, payload: dict[str, Any]) -> None:
        origin = payload.get("node")
        if not isinstance(origin, str):
            return
        if origin == self.node:
            log.error("another process also calls itself %r; give each node its own [broadcast] node", origin)
            return
        if event == HEAD:
            head = payload.get("head")
            if isinstance(head, int) and head > self.contiguous.get(origin, 0):
                await self._request(origin)
        elif event == SYNC:
            have = payload.get("have")
            if not isinstance(have, dict) or (self.node not in have and not payload.get("all")):
                return  # a request to another node
            after = have.get(self.node, 0)
            events = self.own_events_after(after if isinstance(after, int) else 0)
            if events:
                await self.manager.publish(
                    RESEND, {"node": self.node, "to": origin, "events": events}, NODES_ROOM
                )
        elif event == RESEND:
            if payload.get("to") == self.node:
                async with self._lock:
                    for item in payload.get("events") or ():
                        await self._mirror(origin, item, resend=True)
        else:
            async with self._lock:
                gap = await self._mirror(origin, payload, resend=False)
            if gap:
                await self._request(origin)

    async def _request(self, origin: str) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._requested.get(origin, -REQUEST_GAP) < REQUEST_GAP:
            return  # one request answers them all: the resend covers everything after
        self._requested[origin] = now
        self.counts["resend_requests"] += 1
        await self.manager.publish(
            SYNC, {"node": self.node, "have": {origin: self.contiguous.get(origin, 0)}}, NODES_ROOM
        )

    async def _mirror(self, origin: str, event: dict[str, Any], *, resend: bool) -> bool:
        """Commit another node's event here unless already here; True if it reveals a gap."""
        event_id, prev = event.get("id"), event.get("prev")
        if not isinstance(event_id, int) or not isinstance(prev, int):
            return False
        contiguous = self.contiguous.get(origin, 0)
        ahead = self._ahead.setdefault(origin, {})
        if event_id <= contiguous or event_id in ahead.values():
            self.counts["duplicates"] += 1
            return False
        copy = {k: v for k, v in event.items() if k not in ("id", "node", "prev", "origin")}
        copy["origin"] = {"node": origin, "id": event_id}
        await self.hub.relay(copy)
        self.counts["mirrored"] += 1
        if resend and prev > contiguous and prev not in ahead.values():
            contiguous = prev  # older than the resend window: given up, not asked again
        ahead[prev] = event_id
        while contiguous in ahead:  # walk the chain as far as it is complete
            contiguous = ahead.pop(contiguous)
        self.contiguous[origin] = contiguous
        return bool(ahead) and not resend
