"""Scale-out: several cidbridge processes sharing calls over Redis Streams.

Each node reads its own lines and serves its own panels (Socket.IO is local to each
node).  What the nodes share is their events, one Redis stream per node:

**Ids are per node.**  Each node's SQLite log assigns ids to what *its* clients see.
A node that reads another node's event *mirrors* it: it commits a copy to its own log
(keeping the original ``time`` and adding ``origin: {node, id}``), which gives the
copy a local id, and then broadcasts the copy to its own clients.  So every client
sees strictly increasing ids from the node it is connected to, and every id it has
seen is replayable from that node's log, exactly as with one node.  Every event
carries ``node`` (whose log the ``id`` belongs to); a panel that moves to another node
sends its ``node`` and is given recent calls instead of a replay.

**The streams.**  Node ``N`` appends each of its own events to ``<channel>:events:N``
with ``XADD``, the stream entry id being the event's own id (``<id>-0``): adding an
event twice is refused by Redis, so re-adding is harmless.  What a node has added is
the top of its stream, so after any failure it adds, in order, its own events above
that (at most :data:`REPUBLISH_LIMIT`; a Redis that restarted empty gets the newest
ones).  Every node reads every other node's stream with ``XREAD`` from the last entry
it mirrored (the log remembers it, so a restart resumes too): no gap detection, no
resend requests.  Nodes find each other on ``<channel>:nodes``, where each node
announces itself whenever it connects.  Streams are trimmed to about
:data:`STREAM_LENGTH` entries: a node away for longer than that many events of
another node misses the oldest of them.

What a panel can rely on: every call read by any node reaches it once, in the id
order of its own node, usually within milliseconds, and after a Redis or network
failure as soon as the link is back.  Not guaranteed: events trimmed away (above) and
events of a node that is down (they arrive when it is back).  Line names must be
unique across nodes (call ids derive from them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

if TYPE_CHECKING:
    from cidbridge.hub import Hub

log = logging.getLogger(__name__)

#: Entries kept per node's stream (approximately: Redis trims whole blocks).
STREAM_LENGTH = 10_000
#: Most own events a node adds at once after a failure (a Redis that lost its data).
REPUBLISH_LIMIT = 1000
#: Entries read per XREAD.
READ_BATCH = 500
#: How long one XREAD waits for entries (ms); an idle node wakes this often.
BLOCK_MS = 25_000
#: Longest wait between attempts to reach Redis again.
RETRY_MAX = 5.0


def redis_client(url: str) -> aioredis.Redis:
    """A client for ``[broadcast] redis_url`` (``redis://``, ``rediss://``, ``unix://``,
    ``valkey[s]://``, ``redis+sentinel://[:password@]host:port,…/db/service``)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 5,
        # Longer than a blocking read; a peer that vanished without a word is noticed
        # by the kernel's keep-alive and by this.
        "socket_timeout": BLOCK_MS / 1000 + 10,
        "socket_keepalive": True,
        "health_check_interval": 30,
    }
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.endswith("+sentinel"):
        hosts = [h.rsplit(":", 1) for h in parts.netloc.rsplit("@", 1)[-1].split(",")]
        path = [p for p in parts.path.split("/") if p]
        if parts.username:
            options["username"] = parts.username
        if parts.password:
            options["password"] = parts.password
        if path:
            options["db"] = int(path[0])
        sentinel = aioredis.Sentinel([(host, int(port)) for host, port in hosts], **options)
        return sentinel.master_for(path[1] if len(path) > 1 else "mymaster")
    if scheme in ("valkey", "valkeys"):  # the same protocol
        url = "redis" + url[len("valkey") :]
    return aioredis.Redis.from_url(url, **options)


class ClusterLink:
    """This node's side of the cluster: adds its own events, mirrors the others'."""

    def __init__(self, client: aioredis.Redis, hub: Hub, node: str, *, channel: str = "cidbridge") -> None:
        self.redis = client
        self.hub = hub
        self.store = hub.store
        self.node = node
        self.channel = channel
        #: Per other node: the highest of its event ids mirrored here (where its stream is read from).
        self.contiguous: dict[str, int] = {}
        self.connected = False
        self._instance = secrets.token_hex(8)
        #: Our latest announcement's entry on the nodes stream: a later one with our
        #: name but not our instance is another process using our name.
        self._announced = (0, 0)
        self._nodes_position = "0"
        #: Own events up to this id are in our stream; ``_recheck``: ask Redis (it may
        #: have restarted empty, or an earlier attempt may have failed half-way).
        self._published = 0
        self._recheck = True
        self._wanted = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.counts = {"published": 0, "mirrored": 0, "duplicates": 0, "publish_failures": 0}

    def stream(self, node: str) -> str:
        return f"{self.channel}:events:{node}"

    @property
    def peers(self) -> list[str]:
        return sorted(self.contiguous)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Resume where the log says, and start reading and adding."""
        self.contiguous = self.store.mirrored_heads()
        self._wanted.set()
        self._spawn(self._read_forever())
        self._spawn(self._publish_forever())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def stats(self) -> dict[str, float]:
        """Counters for /metrics (``redis_connected`` is a gauge)."""
        return {**self.counts, "redis_connected": 1.0 if self.connected else 0.0}

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- own events --------------------------------------------------------------

    async def publish(self, payload: dict[str, Any]) -> None:
        """One of this node's events was committed: add it (and any before it) soon.

        Called by the broadcaster inside the hub's commit; never waits for Redis (the
        adding task reads the events from the log, in order).
        """
        self._wanted.set()

    async def _publish_forever(self) -> None:
        delay = 0.25
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                more = await self._add_own_events()
                delay = 0.25
                if more:
                    self._wanted.set()
            except (RedisError, OSError) as exc:
                self.counts["publish_failures"] += 1
                self._recheck = True
                log.debug("cannot add events to Redis (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                self._wanted.set()

    async def _add_own_events(self) -> bool:
        """Add own events above the stream's top; True if there are more to add."""
        stream = self.stream(self.node)
        if self._recheck:
            self._recheck = False
            top = await self.redis.xrevrange(stream, count=1)
            self._published = _event_id(top[0][0]) if top else 0
        events = self.store.own_events_after(self._published, REPUBLISH_LIMIT)
        if not events:
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                body = json.dumps({**event, "node": self.node}, ensure_ascii=False, separators=(",", ":"))
                pipe.xadd(
                    stream, {"event": body}, id=f"{event['id']}-0", maxlen=STREAM_LENGTH, approximate=True
                )
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, ResponseError) and "equal or smaller" not in str(result):
                raise result  # "equal or smaller": already added (by an earlier attempt)
            if not isinstance(result, Exception):
                self.counts["published"] += 1
        self._published = events[-1]["id"]
        return len(events) == REPUBLISH_LIMIT

    # -- other nodes' events -----------------------------------------------------

    async def _read_forever(self) -> None:
        delay = 0.25
        while True:
            try:
                await self._announce()
                if not self.connected:
                    self.connected = True
                    log.info("cluster: connected to Redis as node %s", self.node)
                self._recheck = True  # add what Redis may have lost
                self._wanted.set()
                delay = 0.25
                while True:
                    await self._read_once()
            except (RedisError, OSError) as exc:
                if self.connected:
                    log.warning("cluster: lost Redis (%s); reconnecting", exc)
                self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _announce(self) -> None:
        entry = await self.redis.xadd(
            f"{self.channel}:nodes",
            {"node": self.node, "instance": self._instance},
            maxlen=1000,
            approximate=True,
        )
        self._announced = _entry_key(entry)

    async def _read_once(self) -> None:
        nodes = f"{self.channel}:nodes"
        streams = {nodes: self._nodes_position}
        streams.update({self.stream(node): f"{last}-0" for node, last in self.contiguous.items()})
        answer = await self.redis.xread(streams, count=READ_BATCH, block=BLOCK_MS)
        for name, entries in answer or ():
            if _text(name) == nodes:
                for entry_id, fields in entries:
                    self._nodes_position = _text(entry_id)
                    self._met(entry_id, _text(fields.get(b"node", b"")), _text(fields.get(b"instance", b"")))
            else:
                origin = _text(name)[len(self.stream("")) :]
                for entry_id, fields in entries:
                    await self._mirror(origin, _event_id(entry_id), fields.get(b"event"))

    def _met(self, entry_id: bytes | str, node: str, instance: str) -> None:
        """A node announced itself on the nodes stream."""
        if node == self.node:
            if instance != self._instance and _entry_key(entry_id) > self._announced:
                log.error(
                    "another process also calls itself %r; give each node its own [broadcast] node", node
                )
        elif node and node not in self.contiguous:
            self.contiguous[node] = 0
            log.info("cluster: node %s joined", node)

    async def _mirror(self, origin: str, event_id: int, body: bytes | None) -> None:
        """Commit another node's event here unless it already is."""
        if event_id <= self.contiguous.get(origin, 0):
            self.counts["duplicates"] += 1
            return
        self.contiguous[origin] = event_id  # read on from here, whatever happens to this one
        try:
            event = json.loads(body or b"")
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("cluster: unreadable event %s from node %s skipped", event_id, origin)
            return
        copy = {k: v for k, v in event.items() if k not in ("id", "node", "origin")}
        copy["origin"] = {"node": origin, "id": event_id}
        try:
            await self.hub.relay(copy)
        except Exception:  # the call log refused it: logged, the next ones still come
            log.exception("cluster: cannot mirror event %s from node %s", event_id, origin)
            return
        self.counts["mirrored"] += 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_key(entry_id: bytes | str) -> tuple[int, int]:
    """``b"1700000000000-3"`` → ``(1700000000000, 3)``: stream entry ids in their order."""
    first, _, second = _text(entry_id).partition("-")
    return int(first), int(second or 0)


def _event_id(entry_id: bytes | str) -> int:
    """``b"42-0"`` → 42: a stream entry's id is its event's id in the origin's log."""
    return int(_text(entry_id).split("-", 1)[0])
