"""Fan-out: one event to every client in a room, with the per-client work cut to a write.

python-socketio's own ``emit`` encodes an event once but then creates one asyncio
task per recipient, each queueing the packet for that client's writer task, which
wraps it in an ASGI message that uvicorn frames into a WebSocket frame: four hops
of Python per client per event.  Node's socket.io builds the WebSocket frame once
and writes it to every socket.  :class:`FanOut` does the same where it is safe:

* the packet (``42["cti-event",{…}]``) and its WebSocket frame are encoded once;
* a client on WebSocket whose Engine.IO writer is idle (its queue is empty and the
  writer is parked waiting for the next packet) gets the frame written straight to
  its transport — nothing is pending in its queue, so nothing can be overtaken;
* any other client (long-polling, mid-upgrade, writer busy, a WebSocket stack we
  do not recognise) gets the packet through its Engine.IO queue, exactly as
  python-socketio would send it.  Either way each client sees events in order.

A client whose transport buffer holds more than :data:`SLOW_CLIENT_BUFFER` bytes is
not keeping up: it is disconnected (it reconnects with its ``last_id`` and catches
up from the call log) so it cannot make the daemon hold unbounded memory.

What this relies on inside python-engineio, uvicorn and asyncio is listed and checked
in :mod:`cidbridge.internals` (once per process; tests/upgrades/ fails loudly when a
name changes).  When a check fails the daemon logs it at start and every event takes
the queue path, which is always correct, only slower; a WebSocket connection that does
not come through uvicorn's ``websockets-sansio`` protocol is served by its queue too,
with a warning.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from dataclasses import dataclass
from typing import Any

import socketio
from engineio import packet as eio_packet
from engineio.async_drivers.asgi import WebSocket as EngineIOWebSocket
from socketio import packet as sio_packet

from cidbridge import internals
from cidbridge.server import lean

log = logging.getLogger(__name__)

#: Bytes a client's socket may have waiting to be sent before it is cut off as too slow.
SLOW_CLIENT_BUFFER = 1 << 20


def websocket_text_frame(payload: bytes) -> bytes:
    """One final, unmasked WebSocket text frame (RFC 6455 §5.2) carrying ``payload``."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class TrackedWebSocket(EngineIOWebSocket):
    """python-engineio's ASGI WebSocket that remembers itself on its Engine.IO socket.

    Engine.IO keeps the WebSocket only in a closure; :class:`FanOut` needs it to reach
    the transport.  The handler it is built with is the socket's bound
    ``_websocket_handler``, so the socket is ``handler.__self__``.
    """

    async def __call__(self, environ: dict[str, Any]) -> Any:
        owner = self.handler.__self__  # checked by cidbridge.internals
        protocol = getattr(environ.get("asgi.send"), "__self__", None)
        if isinstance(protocol, _protocol_class()):
            owner.cidbridge_protocol = protocol
        else:
            _warn_unknown_protocol(protocol)
        try:
            return await super().__call__(environ)
        finally:
            # Engine.IO keeps a closed socket until its service task sweeps it (up to
            # ~40 s); without this the whole WebSocket connection would stay with it
            # (~20 kB per disconnect, found by tests/reliability/test_bad_clients.py).
            owner.cidbridge_protocol = None

    async def wait(self) -> Any:
        message = await super().wait()
        if not message:
            # python-engineio cannot decode an empty message: its receive loop dies with a
            # traceback in the log and leaves the session open until the ping timeout
            # (found by tests/reliability/test_bad_clients.py).  Treat it as a close.
            raise OSError("empty WebSocket message")
        return message


@dataclass(slots=True)
class FanOutStats:
    """Counters since start; read by /metrics."""

    #: Frames written straight to a client's transport.
    direct: int = 0
    #: Packets handed to a client's Engine.IO queue instead.
    queued: int = 0
    #: Clients disconnected for not reading fast enough.
    slow_dropped: int = 0


class FanOut:
    """Sends pre-encoded events to the clients of one Socket.IO server."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self.stats = FanOutStats()
        #: False when a private name the direct path needs has changed (logged at start).
        self.direct = internals.usable(internals.FANOUT)
        #: Whether each client's Engine.IO queue is a lean one (server/lean.py).
        self.lean = lean.install(sio.eio)
        if self.direct:
            # Our WebSocket class for this server only (the driver's table is shared).
            eio = sio.eio
            eio._async = {**eio._async, "websocket": TrackedWebSocket}

    def encode(self, event_name: str, data: Any, namespace: str = "/") -> eio_packet.Packet:
        """The Engine.IO packet for ``emit(event_name, data)``, encoded once."""
        pkt = self.sio.packet_class(sio_packet.EVENT, namespace=namespace, data=[event_name, data])
        encoded = pkt.encode()
        packet = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        # Engine.IO caches the encoding on the packet; build the frame from the same text.
        packet.cidbridge_frame = websocket_text_frame(packet.encode().encode())
        return packet

    def send(self, packet: eio_packet.Packet, recipients: list[str]) -> None:
        """Send ``packet`` to each Engine.IO sid in ``recipients``, in order per client.

        Never waits: a client that cannot take the bytes now has them buffered (and is
        cut off past :data:`SLOW_CLIENT_BUFFER`).
        """
        sockets = self.sio.eio.sockets
        frame: bytes = packet.cidbridge_frame
        direct = self.direct
        written = queued = 0
        # The loop body runs once per client per event (3,000 times an event at a big
        # site): the counters are added up once, after it.
        for eio_sid in recipients:
            sock = sockets.get(eio_sid)
            if sock is None or sock.closed or sock.closing:
                continue
            transport = _idle_websocket_transport(sock) if direct else None
            if transport is not None:
                transport.write(frame)
                written += 1
                if transport.get_write_buffer_size() > SLOW_CLIENT_BUFFER:
                    self._drop_slow(eio_sid, transport)
            else:
                sock.queue.put_nowait(packet)
                queued += 1
                if sock.queue.qsize() > SLOW_CLIENT_BUFFER // 256:
                    self._drop_slow(eio_sid, None)
        self.stats.direct += written
        self.stats.queued += queued

    def discard_queued(self, eio_sid: str) -> int:
        """Drop the events still queued for a client that is leaving; return how many.

        python-engineio keeps a closed socket, queue included, until its next ping
        timer fires (up to ``ping_interval``, 25 s): a client reconnecting in a loop
        left hundreds of undelivered events behind each time.  Nothing is lost by
        dropping them: the client reconnects with its ``last_id`` and catches up from
        the call log.  Only events encoded here are dropped: Socket.IO's own packets
        (the DISCONNECT telling the client why) and Engine.IO's (ping, close) stay, in
        order, and every drop is marked done, so a ``close()`` waiting for the queue is
        not held up.
        """
        sock = self.sio.eio.sockets.get(eio_sid)
        if sock is None:
            return 0
        queue = sock.queue
        kept = []
        dropped = 0
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
            if hasattr(item, "cidbridge_frame"):  # one of ours: a call event
                dropped += 1
            else:
                kept.append(item)
        for item in kept:
            queue.put_nowait(item)
        return dropped

    def _drop_slow(self, eio_sid: str, transport: asyncio.Transport | None) -> None:
        self.stats.slow_dropped += 1
        log.warning("client %s is not reading its events; disconnecting it (it will catch up)", eio_sid)
        if transport is not None:
            transport.abort()  # the buffer is the problem: do not wait for it to drain
        asyncio.get_running_loop().create_task(self.sio.eio.disconnect(eio_sid))


def _idle_websocket_transport(sock: Any) -> asyncio.Transport | None:
    """The transport to write to directly, or None when the queue path must be used.

    Direct is safe only when this client's Engine.IO writer holds nothing: the socket
    is on WebSocket (not upgrading), its queue is empty, and the writer task is parked
    in ``queue.get()`` (so it has not taken a packet it has yet to write).  Every name
    read here is checked by :mod:`cidbridge.internals`.
    """
    if not sock.upgraded or sock.upgrading:
        return None
    queue = sock.queue
    if queue.qsize():
        return None
    if not (queue.waiting() if isinstance(queue, lean.LeanQueue) else queue._getters):
        return None
    protocol = getattr(sock, "cidbridge_protocol", None)  # set by TrackedWebSocket; absent on polling
    if protocol is None:
        return None
    transport = protocol.transport
    # uvicorn's WebSocket protocol: nothing may follow a close frame.
    if transport is None or transport.is_closing() or protocol.close_sent or not protocol.handshake_complete:
        return None
    return transport


@functools.cache
def _protocol_class() -> type:
    return internals.websocket_protocol_class()


_warned: set[str] = set()


def _warn_unknown_protocol(protocol: object) -> None:
    kind = type(protocol).__qualname__
    if kind not in _warned:
        _warned.add(kind)
        log.warning(
            "WebSocket connections arrive through %s, not uvicorn's websockets-sansio protocol: "
            "their events take the slower queue path",
            kind,
        )
