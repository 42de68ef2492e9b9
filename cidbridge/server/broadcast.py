"""Socket.IO: every committed event goes to every accepted client as ``cti-event``.

What a client can rely on:

* It connects with ``auth: {token, last_id}`` (both optional when no token is
  configured).  A wrong or missing token is refused with ``connect_error``.
* After connecting it first receives the events after ``last_id`` in id order (or,
  without ``last_id``, the events of the last ``replay_calls`` calls), then live
  events: no gap and no duplicate, even when calls arrive during the replay.
* Nothing is sent to a client before its connect handler has accepted it: live
  events go to the room :data:`ROOM`, which a client joins only after its replay
  (never to "everyone", which includes clients still being authenticated).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

import socketio

from cidbridge.config import Config
from cidbridge.hub import Hub

log = logging.getLogger(__name__)

ROOM = "agents"
REPLAY_BATCH = 500
#: How long a new client may take to finish connecting before its replay is abandoned.
CONNECT_WAIT = 10.0


def check_token(tokens: dict[str, str], offered: object) -> str | None:
    """The name of the token ``offered`` matches (constant time), or None."""
    if not isinstance(offered, str):
        return None
    match = None
    for name, token in tokens.items():
        if hmac.compare_digest(token.encode(), offered.encode()):
            match = name
    return match


class Broadcaster:
    """The Socket.IO server and the hub sink that feeds it."""

    def __init__(self, config: Config, hub: Hub) -> None:
        self.config = config
        self.hub = hub
        self.store = hub.store
        self.event_name = config.server.event_name
        cors: list[str] | str | None = list(config.server.cors_origins) or None
        if cors == ["*"]:
            cors = "*"
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=cors,
            max_http_buffer_size=64_000,
            ping_interval=25,
            ping_timeout=20,
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self._replays: set[asyncio.Task[None]] = set()

    @property
    def clients(self) -> int:
        """Clients currently receiving live events."""
        return len(self.sio.manager.rooms.get("/", {}).get(ROOM, {}))

    # -- connection --------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> bool:
        auth = auth if isinstance(auth, dict) else {}
        tokens = self.config.server.tokens
        if tokens and check_token(tokens, auth.get("token")) is None:
            raise socketio.exceptions.ConnectionRefusedError("invalid or missing token")
        last_id = auth.get("last_id")
        if isinstance(last_id, bool) or not isinstance(last_id, int) or last_id < 0:
            last_id = None
        task = asyncio.create_task(self._replay(sid, last_id), name=f"replay {sid}")
        self._replays.add(task)
        task.add_done_callback(self._replays.discard)
        return True

    async def _disconnect(self, sid: str, reason: object = None) -> None:
        log.debug("client %s disconnected (%s)", sid, reason)

    async def _replay(self, sid: str, last_id: int | None) -> None:
        """Send what the client missed, then let it into the live room."""
        manager = self.sio.manager
        loop = asyncio.get_running_loop()
        give_up = loop.time() + CONNECT_WAIT
        # The connect handler has returned; wait until the CONNECT ack is out.
        while not manager.is_connected(sid, "/"):
            if loop.time() > give_up or not manager.is_pre_connected(sid, "/"):
                return
            await asyncio.sleep(0.005)
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
            for event in events:
                await self.sio.emit(self.event_name, event, to=sid)
            after = events[-1]["id"]

    # -- hub sink ----------------------------------------------------------------

    async def deliver(self, event: dict[str, Any]) -> None:
        if self.clients == 0:
            log.info(
                "event %s (%s on %s) reached no client: none connected",
                event["id"],
                event["type"],
                event.get("line"),
            )
        await self.sio.emit(self.event_name, event, to=ROOM)

    async def close(self) -> None:
        for task in list(self._replays):
            task.cancel()
        await self.sio.shutdown()
