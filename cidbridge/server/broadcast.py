"""Socket.IO: every committed event goes to every accepted client as ``cti-event``.

What a client can rely on:

* It connects with ``auth: {token, last_id, node}`` (all optional when no token is
  configured); a same-origin page may rely on the panel's session cookie instead of
  ``auth.token`` (:mod:`cidbridge.server.auth`).  A wrong or missing token is refused
  with ``connect_error``; so is a peer that keeps reconnecting in a loop, or that
  offered too many wrong tokens (HTTP and Socket.IO count together; it may retry
  later).  CORS never allows credentials (cookies) from another origin.
* After connecting it first receives the events after ``last_id`` in id order (or,
  without ``last_id``, the events of the last ``replay_calls`` calls), then live
  events: no gap and no duplicate, even when calls arrive during the replay.
* Every event carries ``node``, the name of the cidbridge whose call log assigned
  its ``id``.  Ids are that node's (see :mod:`cidbridge.server.cluster`); a client
  that passes a ``node`` other than this one has its ``last_id`` ignored and gets
  the recent calls instead of a replay from a foreign id.
* Nothing is sent to a client before its connect handler has accepted it: live
  events go to the room :data:`ROOM`, which a client joins only after its replay
  (never to "everyone", which includes clients still being authenticated).
* A client that does not read its events fast enough is disconnected rather than
  buffered forever (:mod:`cidbridge.server.fanout`); one that sends events (panels
  send none) beyond a small allowance is disconnected.  Neither slows the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import socketio

from cidbridge.config import Config
from cidbridge.hub import Hub
from cidbridge.server.auth import SESSION_COOKIE, Auth, Refused, connection
from cidbridge.server.fanout import FanOut
from cidbridge.server.security import (
    CLIENT_EVENT_BURST,
    CLIENT_EVENT_RATE,
    MAX_CLIENT_MESSAGE,
    LogLimiter,
    RateLimiter,
    check_token,
    offered_token,
    peer_address,
)

if TYPE_CHECKING:
    from cidbridge.server.metrics import Metrics

__all__ = ["ROOM", "Broadcaster", "check_token"]

log = logging.getLogger(__name__)

ROOM = "agents"
#: The Socket.IO event of announcements (phonebook, missed calls, block list).
DIRECTORY_EVENT = "cti-directory"
#: Seconds of "reached no client" at debug level after one at info.
NO_CLIENT_QUIET = 600.0
REPLAY_BATCH = 500
#: How long a new client may take to finish connecting before its replay is abandoned.
CONNECT_WAIT = 10.0


class Broadcaster:
    """The Socket.IO server and the hub sink that feeds it."""

    def __init__(
        self,
        config: Config,
        hub: Hub,
        *,
        node: str,
        metrics: Metrics | None = None,
        auth: Auth | None = None,
    ) -> None:
        self.config = config
        self.hub = hub
        self.store = hub.store
        self.node = node
        self.metrics = metrics
        self.event_name = config.server.event_name
        self.auth = auth or Auth(lambda: self.config.server.tokens)
        cors: list[str] | str | None = list(config.server.cors_origins) or None
        if cors == ["*"]:
            cors = "*"
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=cors,
            # Never "Access-Control-Allow-Credentials: true": no other origin's page may
            # ride on the browser's cookies (a panel elsewhere passes auth.token instead).
            cors_credentials=False,
            max_http_buffer_size=MAX_CLIENT_MESSAGE,
            ping_interval=25,
            ping_timeout=20,
            # Handlers run inline: the only one is the flood limiter, and a task per
            # incoming event is exactly what a flooding client should not get.
            async_handlers=False,
            logger=False,
            engineio_logger=False,
        )
        self.fanout = FanOut(self.sio)
        #: Called with each own event after local delivery (set by the cluster link).
        self.publish_remote: Any = None
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("*", self._client_event)
        self._connects = RateLimiter(config.server.connect_burst, config.server.connect_rate)
        self._client_events = RateLimiter(CLIENT_EVENT_BURST, CLIENT_EVENT_RATE)
        self._refusal_log = LogLimiter()
        self._no_client_log = LogLimiter(NO_CLIENT_QUIET)
        self._replays: set[asyncio.Task[None]] = set()
        self._dropping: set[str] = set()
        #: The token each connected client offered, so a reload can cut off revoked ones.
        self.client_tokens: dict[str, str | None] = {}
        #: The session cookie of each client that connected with it instead of a token.
        self.client_sessions: dict[str, str] = {}

    def set_connect_limits(self, burst: int, rate: float) -> None:
        """``connect_burst``/``connect_rate`` from now on (a reload); addresses keep their buckets."""
        self._connects.burst, self._connects.rate = burst, rate

    @property
    def clients(self) -> int:
        """Clients of this process currently receiving live events."""
        return len(self.sio.manager.rooms.get("/", {}).get(ROOM, {}))

    # -- connection --------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        auth = auth if isinstance(auth, dict) else {}
        peer = peer_address(environ)
        if not self._connects.allow(peer):
            self._refused("rate")
            if (repeats := self._refusal_log.check((peer, "rate"))) is not None:
                log.warning("refused a connection from %s: too many attempts%s", peer, _more(repeats))
            raise socketio.exceptions.ConnectionRefusedError("too many connection attempts; retry later")
        offered = auth.get("token")
        request = connection(environ)
        try:
            token_name = self.auth.check(
                request, "Socket.IO", token=offered if isinstance(offered, str) else None
            )
        except Refused as refused:
            reason = "throttled" if refused.status == 429 else "token"
            self._refused(reason)
            if (repeats := self._refusal_log.check((peer, reason))) is not None:
                log.info("refused a connection from %s: %s%s", peer, refused, _more(repeats))
            raise socketio.exceptions.ConnectionRefusedError(str(refused)) from None
        last_id = auth.get("last_id")
        if isinstance(last_id, bool) or not isinstance(last_id, int) or last_id < 0:
            last_id = None
        node = auth.get("node")
        if last_id is not None and isinstance(node, str) and node != self.node:
            last_id = None  # an id from another node's log means nothing here
        log.debug("client %s from %s (token %s) connected, last_id %s", sid, peer, token_name, last_id)
        # What it signed in with, for a reload to check again: auth.token, an Authorization
        # header, or (neither) the panel's session cookie.
        token = offered if isinstance(offered, str) else offered_token(request.headers)
        self.client_tokens[sid] = token
        if token is None and token_name:
            self.client_sessions[sid] = request.cookies.get(SESSION_COOKIE, "")
        task = asyncio.create_task(self._replay(sid, last_id), name=f"replay {sid}")
        self._replays.add(task)
        task.add_done_callback(self._replays.discard)
        return True

    def _refused(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.clients_refused.labels(reason).inc()

    async def _disconnect(self, sid: str, reason: object = None) -> None:
        self._client_events.forget(sid)
        self._dropping.discard(sid)
        self.client_tokens.pop(sid, None)
        self.client_sessions.pop(sid, None)
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            self.fanout.discard_queued(eio_sid)
        log.debug("client %s disconnected (%s)", sid, reason)

    async def _client_event(self, event: str, sid: str, *args: Any) -> None:
        """Any event a client sends: panels send none, so only count it."""
        if not self._client_events.allow(sid) and sid not in self._dropping:
            self._dropping.add(sid)
            log.warning("client %s sends too many events; disconnecting it", sid)
            if self.metrics is not None:
                self.metrics.clients_dropped.labels("flood").inc()
            # Not inline: this handler runs in the client's own receive loop.
            task = asyncio.create_task(self.sio.disconnect(sid), name=f"drop {sid}")
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    async def _replay(self, sid: str, last_id: int | None) -> None:
        """Send what the client missed, then let it into the live room."""
        manager = self.sio.manager
        loop = asyncio.get_running_loop()
        give_up = loop.time() + CONNECT_WAIT
        # The connect handler has returned; wait until the CONNECT ack is queued.
        while not manager.is_connected(sid, "/"):
            if loop.time() > give_up or not manager.is_pre_connected(sid, "/"):
                return
            await asyncio.sleep(0.005)
        eio_sid = manager.eio_sid_from_sid(sid, "/")
        after = (
            last_id if last_id is not None else self.store.recent_calls_start(self.config.calls.replay_calls)
        )
        while True:
            events = self.store.events_after(after, REPLAY_BATCH)
            if not events:
                # Join the room holding the hub's commit lock: every event committed before
                # this point was read above, every later one is broadcast to the room.
                async with self.hub.commit_lock:
                    events = self.store.events_after(after, REPLAY_BATCH)
                    if not events:
                        if manager.is_connected(sid, "/"):
                            await self.sio.enter_room(sid, ROOM)
                        return
            if not manager.is_connected(sid, "/"):
                return  # gone mid-replay: it will ask again, with its own last_id
            for event in events:
                # Same path as live events, so the two can never overtake each other.
                self.fanout.send(self.fanout.encode(self.event_name, self._outgoing(event)), [eio_sid])
            after = events[-1]["id"]
            await asyncio.sleep(0)  # a long replay must not starve the other clients

    # -- hub sink ----------------------------------------------------------------

    def _outgoing(self, event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "node": self.node}

    async def deliver(self, event: dict[str, Any]) -> None:
        """Send one committed event to every client in the room (then to other nodes)."""
        started = time.perf_counter()
        payload = self._outgoing(event)
        recipients = list(self.sio.manager.rooms.get("/", {}).get(ROOM, {}).values())
        if recipients:
            self.fanout.send(self.fanout.encode(self.event_name, payload), recipients)
        elif self.publish_remote is None:
            # At info once per quiet period (the first event nobody saw), then at debug:
            # a front desk with no panel open is normal, not news every call.
            repeats = self._no_client_log.check("no client")
            log.log(
                logging.DEBUG if repeats is None else logging.INFO,
                "event %s (%s on %s) reached no client: none connected%s",
                event["id"],
                event["type"],
                event.get("line"),
                "" if not repeats else f" ({repeats} more since the last report)",
            )
        if self.metrics is not None:
            self.metrics.emit_seconds.observe(time.perf_counter() - started)
            self.metrics.events_emitted.labels(event["type"]).inc()
        if self.publish_remote is not None and "origin" not in event:
            await self.publish_remote(payload)

    async def announce(self, payload: dict[str, Any]) -> None:
        """Send a change that is not a call event (``cti-directory``) to every client in the room.

        Not replayed: a client that was away fetches what it shows again when it reconnects.
        """
        recipients = list(self.sio.manager.rooms.get("/", {}).get(ROOM, {}).values())
        if recipients:
            self.fanout.send(self.fanout.encode(DIRECTORY_EVENT, payload), recipients)

    async def close(self) -> None:
        for task in list(self._replays):
            task.cancel()
        await self.sio.shutdown()


def _more(repeats: int) -> str:
    """The tail of a throttled refusal line: how many were not logged before it."""
    return f" ({repeats} more since the last report)" if repeats else ""
