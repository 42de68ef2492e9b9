"""Smaller per-connection objects (server/lean.py): the queue's contract, and that a real
WebSocket client is served with them (bench/client_memory.py measures what they save)."""

from __future__ import annotations

import asyncio

import pytest

from cidbridge.config import parse
from cidbridge.server.lean import NO_BODY, LeanQueue
from tests.broadcast.support import InProcessDaemon, RawSocketIO, wait_until

TOKEN = "lean-token-0123456789"


def run(coro):
    return asyncio.run(coro)


def test_items_come_out_in_order_and_a_waiting_get_takes_the_first():
    async def scenario():
        queue: LeanQueue[int] = LeanQueue()
        waiting = queue.get()
        assert queue.waiting() == 1 and not waiting.done()
        for item in (1, 2, 3):
            queue.put_nowait(item)
        assert await waiting == 1
        assert queue.waiting() == 0 and queue.qsize() == 2
        assert await queue.get() == 2
        assert queue.get_nowait() == 3
        assert queue.empty()
        with pytest.raises(asyncio.QueueEmpty):
            queue.get_nowait()

    run(scenario())


def test_a_get_that_timed_out_takes_nothing():
    """Engine.IO's writer waits with asyncio.wait_for: a timed-out get must not swallow an item."""

    async def scenario():
        queue: LeanQueue[str] = LeanQueue()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(queue.get(), 0.01)
        assert queue.waiting() == 0
        queue.put_nowait("kept")
        assert queue.qsize() == 1  # the cancelled get ahead of it did not take it
        assert await asyncio.wait_for(queue.get(), 1) == "kept"
        second = queue.get()
        queue.put_nowait("event")
        assert await second == "event"

    run(scenario())


def test_cancelled_gets_do_not_pile_up():
    async def scenario():
        queue: LeanQueue[int] = LeanQueue()
        for _ in range(100):
            queue.get().cancel()
        queue.get()
        assert len(queue._getters or ()) == 1
        assert queue.waiting() == 1

    run(scenario())


def test_join_waits_until_every_item_is_done():
    async def scenario():
        queue: LeanQueue[int] = LeanQueue()
        await asyncio.wait_for(queue.join(), 1)  # nothing put: returns at once
        await queue.put(1)
        queue.put_nowait(2)
        joined = asyncio.ensure_future(queue.join())
        await asyncio.sleep(0)
        queue.get_nowait()
        queue.task_done()
        await asyncio.sleep(0)
        assert not joined.done()
        await queue.get()
        queue.task_done()
        await asyncio.wait_for(joined, 1)
        with pytest.raises(ValueError):
            queue.task_done()

    run(scenario())


def test_an_empty_queue_holds_no_container():
    async def scenario():
        queue: LeanQueue[int] = LeanQueue()
        queue.put_nowait(1)
        queue.get_nowait()
        assert queue._items is None

    run(scenario())


@pytest.fixture
def daemon(tmp_path):
    config = parse(f'[server]\nport = 0\ntoken = "{TOKEN}"\n[store]\npath = "{tmp_path / "calls.sqlite"}"\n')
    running = InProcessDaemon(config)
    yield running
    running.stop()


def test_a_websocket_client_is_served_with_the_lean_objects(daemon):
    sio = daemon.daemon.broadcaster.sio
    client = RawSocketIO(daemon.url)
    try:
        client.connect({"token": TOKEN})
        client.receive_until(lambda frame: frame.startswith("40"))
        wait_until(lambda: daemon.daemon.broadcaster.clients == 1, what="the client to join the room")
        [sock] = sio.eio.sockets.values()
        assert isinstance(sock.queue, LeanQueue)
        protocol = sock.cidbridge_protocol
        assert isinstance(protocol.queue, LeanQueue)
        assert protocol.request is None and protocol.response is None
        [environ] = sio.environ.values()
        assert environ["wsgi.input"] is NO_BODY
        assert environ["HTTP_UPGRADE"].lower() == "websocket"  # the environ is otherwise whole
        # ... and it still gets its events, straight to its transport.
        [event_id] = daemon.publish_calls(1)
        client.receive_until(lambda frame: frame.startswith("42") and f'"id":{event_id}' in frame)
        assert daemon.daemon.broadcaster.fanout.stats.direct >= 1
    finally:
        client.close()


def _awaiting(coro: object) -> list[str]:
    """The chain of coroutines ``coro`` is suspended in, as ``file:function``."""
    chain = []
    while coro is not None and hasattr(coro, "cr_code"):
        chain.append(f"{coro.cr_code.co_filename}:{coro.cr_code.co_qualname}")
        coro = coro.cr_await
    return chain


def test_a_connected_websocket_keeps_one_frame_of_the_http_guards(daemon):
    """Each layer that only passes a request on returns the inner awaitable: none of their
    frames (one per layer, ~250 bytes) stays for the connection's life; the Host check's does."""
    client = RawSocketIO(daemon.url)
    try:
        client.connect({"token": TOKEN})
        client.receive_until(lambda frame: frame.startswith("40"))

        async def chains() -> list[list[str]]:
            return [_awaiting(task.get_coro()) for task in asyncio.all_tasks()]

        [chain] = [c for c in daemon.run(chains()) if any("run_asgi" in frame for frame in c)]
        guards = [frame.rsplit(":", 1)[1] for frame in chain if "cidbridge/server/guards.py" in frame]
        assert guards == ["HostCheck.__call__"], chain
        assert not [frame for frame in chain if "trustedhost" in frame], chain
    finally:
        client.close()
