"""The emit path, from inside the daemon: nothing before accept, order kept, fast path used."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from engineio import packet as eio_packet

from cidbridge.config import parse
from cidbridge.server.fanout import FanOut, websocket_text_frame
from tests.broadcast.support import InProcessDaemon, RawSocketIO, http, wait_until
from tests.support.node import NodeClient

TOKEN = "fanout-token-0123456789"


@pytest.fixture
def daemon(tmp_path):
    config = parse(
        f'[server]\nport = 0\ntoken = "{TOKEN}"\n[store]\npath = "{tmp_path / "calls.sqlite"}"\n'
        "[calls]\nreplay_calls = 5\n"
    )
    running = InProcessDaemon(config)
    yield running
    running.stop()


def test_frame_encoding_matches_rfc6455():
    assert websocket_text_frame(b"hi") == b"\x81\x02hi"
    assert websocket_text_frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert websocket_text_frame(b"x" * 70_000)[:10] == b"\x81\x7f" + (70_000).to_bytes(8, "big")


def test_no_event_reaches_a_client_before_its_connect_handler_accepts_it(daemon):
    """Research note §1.7: a pending client is in the 'everyone' room; we never emit there."""
    sio = daemon.daemon.broadcaster.sio
    accept = connect = sio.handlers["/"]["connect"]
    release = threading.Event()
    started = threading.Semaphore(0)

    async def slow_connect(sid, environ, auth):
        started.release()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)
        return await accept(sid, environ, auth)

    sio.handlers["/"]["connect"] = slow_connect
    bad, good = RawSocketIO(daemon.url), RawSocketIO(daemon.url)
    try:
        bad.connect({"token": "wrong"})
        good.connect({"token": TOKEN})
        assert started.acquire(timeout=10) and started.acquire(timeout=10)
        # Both handlers are running: a call is committed and broadcast now.
        [event_id] = daemon.publish_calls(1)
        release.set()
        bad.receive_until(lambda f: f.startswith("44"))
        good.receive_until(lambda f: f.startswith("42") and f'"id":{event_id}' in f)
    finally:
        sio.handlers["/"]["connect"] = connect
        bad.close()
        good.close()
    assert not any(f.startswith("42") for f in bad.frames), bad.frames
    assert json.loads(bad.frames[-1][2:]) == {"message": "invalid or missing token"}
    # The accepted client got its CONNECT ack first, then the call (as a replay).
    assert good.frames[0].startswith("40"), good.frames


def test_replay_and_live_events_arrive_in_order_without_gaps(daemon):
    before = daemon.publish_calls(200)
    client = NodeClient(daemon.url, token=TOKEN, last_id=0)
    try:
        # Calls keep coming while the client connects and replays.
        during = daemon.publish_calls(200, start=200)
        client.wait_event(lambda e: e["id"] == during[-1], timeout=30)
    finally:
        client.close()
    seen = [e["id"] for e in client.events()]
    assert seen == before + during


def test_websocket_clients_take_the_direct_path_and_polling_the_queue(daemon):
    stats = daemon.daemon.broadcaster.fanout.stats
    ws = NodeClient(daemon.url, token=TOKEN)
    polling = NodeClient(daemon.url, token=TOKEN, transports=["polling"])
    try:
        ws.wait_connected()
        polling.wait_connected()
        direct, queued = stats.direct, stats.queued
        [event_id] = daemon.publish_calls(1, start=900)
        ws.wait_event(lambda e: e["id"] == event_id)
        polling.wait_event(lambda e: e["id"] == event_id)
    finally:
        ws.close()
        polling.close()
    assert stats.direct == direct + 1
    assert stats.queued == queued + 1
    status, _, body = http(daemon.url, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert b'cidbridge_fanout_frames_total{path="direct"}' in body


class _Sock:
    """An Engine.IO socket as FanOut sees it, without a transport it recognises."""

    closed = False
    closing = False
    upgraded = True
    upgrading = False

    def __init__(self):
        self.queue = asyncio.Queue()


class _Sio:
    def __init__(self):
        self.eio = type("Eio", (), {})()
        self.eio._async = {"websocket": None}
        self.eio.sockets = {"e1": _Sock()}

    @staticmethod
    def packet_class(*args, **kwargs):
        from socketio.packet import Packet

        return Packet(*args, **kwargs)


def test_fanout_falls_back_to_the_queue_when_it_cannot_see_the_transport():
    """A socket without the tracked WebSocket (another server stack) is served by its queue."""
    Sio = _Sio()
    fanout = FanOut(Sio)  # type: ignore[arg-type]
    packet = fanout.encode("cti-event", {"id": 1})
    fanout.send(packet, ["e1", "gone"])
    assert Sio.eio.sockets["e1"].queue.get_nowait() is packet
    assert (fanout.stats.direct, fanout.stats.queued) == (0, 1)
    assert packet.encode() == '42["cti-event",{"id":1}]'


def test_a_leaving_client_keeps_no_events_queued_but_engineio_packets_stay():
    sio = _Sio()
    fanout = FanOut(sio)  # type: ignore[arg-type]
    sock = sio.eio.sockets["e1"]
    fanout.send(fanout.encode("cti-event", {"id": 1}), ["e1"])
    sock.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
    fanout.send(fanout.encode("cti-event", {"id": 2}), ["e1"])
    sock.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, "41"))  # Socket.IO's DISCONNECT
    assert fanout.discard_queued("e1") == 2
    assert fanout.discard_queued("gone") == 0
    assert [sock.queue.get_nowait().packet_type for _ in range(2)] == [eio_packet.PING, eio_packet.MESSAGE]
    sock.queue.task_done()
    sock.queue.task_done()
    assert sock.queue._unfinished_tasks == 0  # a close() joining the queue is not held up
    sock.closing = True
    fanout.send(fanout.encode("cti-event", {"id": 3}), ["e1"])
    assert sock.queue.empty()  # nothing is queued for a socket on its way out


def test_a_client_that_leaves_mid_replay_stops_its_replay(daemon):
    """Events are not pushed at a client that has gone; it catches up when it returns."""
    daemon.publish_calls(12_000, start=2000)
    stats = daemon.daemon.broadcaster.fanout.stats
    before = stats.direct + stats.queued
    client = RawSocketIO(daemon.url)
    try:
        client.connect({"token": TOKEN, "last_id": 0})
        client.send("41")  # leaves the namespace at once, the connection stays open
        wait_until(lambda: stats.direct + stats.queued > before, what="the replay to start")
        wait_until(lambda: not daemon.daemon.broadcaster._replays, what="the replay to end")
    finally:
        client.close()
    # It takes the daemon a few batches of 500 to read the client's "41"; without the
    # check every one of the 12,000 events would be pushed at it.
    assert stats.direct + stats.queued - before < 6000
