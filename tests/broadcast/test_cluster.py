"""Two ``cidbridge serve`` processes sharing calls over a real ``redis-server``."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.broadcast.support import RedisServer, post_call, wait_until
from tests.support.daemon import DaemonProcess, write_config
from tests.support.node import NodeClient

TOKEN = "cluster-token-0123456789"


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def nodes(tmp_path, redis):
    started = []
    for name in ("node-a", "node-b"):
        config = write_config(
            tmp_path / f"{name}.toml",
            lines=[],
            db=tmp_path / f"{name}.sqlite",
            server={"token": TOKEN},
            broadcast={"redis_url": redis.url, "node": name},
        )
        node = DaemonProcess(config)
        started.append(node)
        node.wait_ready()
    for node in started:
        wait_until(lambda n=node: redis_state(n) == "connected", what="node subscribed to Redis")
    yield started
    for node in started:
        node.stop()


def redis_state(node: DaemonProcess) -> str:
    return node.get("/healthz")[1]["cluster"]["redis"]


def check_once_and_in_order(client: NodeClient, node: str) -> None:
    events = client.events()
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids)), f"ids on {node} must be strictly increasing"
    assert all(e["node"] == node for e in events)
    sources = Counter((e.get("origin") or {"node": node, "id": e["id"]})["node"] for e in events)
    copies = Counter(
        tuple(sorted((e.get("origin") or {"node": node, "id": e["id"]}).items())) for e in events
    )
    assert set(copies.values()) == {1}, "every event exactly once"
    assert sources  # something arrived


def test_a_call_read_by_one_node_reaches_panels_on_every_node(nodes):
    a, b = nodes
    on_a = NodeClient(a.url, token=TOKEN)
    on_b = NodeClient(b.url, token=TOKEN)
    try:
        on_a.wait_connected()
        on_b.wait_connected()
        status, answer = post_call(a.url, {"number": "0211110001", "line": "desk-a"}, TOKEN)
        assert status == 200
        origin_id = answer["events"][0]["id"]
        here = on_a.wait_event(lambda e: e["number"] == "0211110001")
        there = on_b.wait_event(lambda e: e["number"] == "0211110001")
        assert here["node"] == "node-a" and "origin" not in here
        assert there["node"] == "node-b"
        assert there["origin"] == {"node": "node-a", "id": origin_id}
        assert (there["call_id"], there["time"]) == (here["call_id"], here["time"])

        post_call(b.url, {"number": "0211110002", "line": "desk-b"}, TOKEN)
        on_a.wait_event(lambda e: e["number"] == "0211110002")
        on_b.wait_event(lambda e: e["number"] == "0211110002")
    finally:
        on_a.close()
        on_b.close()
    check_once_and_in_order(on_a, "node-a")
    check_once_and_in_order(on_b, "node-b")
    # The copy is in node B's own log: a panel on B can replay it.
    status, calls = b.get("/api/calls", token=TOKEN)
    assert {c["call_id"] for c in calls["calls"]} >= {here["call_id"]}


def test_redis_restart_resubscribes_and_repairs_the_gap(nodes, redis):
    a, b = nodes
    on_b = NodeClient(b.url, token=TOKEN)
    try:
        on_b.wait_connected()
        post_call(a.url, {"number": "0222220001", "line": "desk-a"}, TOKEN)
        on_b.wait_event(lambda e: e["number"] == "0222220001")

        redis.stop()
        wait_until(lambda: redis_state(a) == "disconnected", what="node A noticed Redis is gone")
        status, _ = post_call(a.url, {"number": "0222220002", "line": "desk-a2"}, TOKEN)
        assert status == 200  # the node keeps working alone: stored and sent to its own panels
        redis.start()
        for node in nodes:
            wait_until(lambda n=node: redis_state(n) == "connected", timeout=30, what="resubscribed")

        # Published while Redis was down (at-most-once lost it): repaired from A's log.
        on_b.wait_event(lambda e: e["number"] == "0222220002", timeout=30)
        post_call(a.url, {"number": "0222220003", "line": "desk-a3"}, TOKEN)
        on_b.wait_event(lambda e: e["number"] == "0222220003", timeout=30)
    finally:
        on_b.close()
    check_once_and_in_order(on_b, "node-b")
    numbers = [e["number"] for e in on_b.events() if e["type"] == "call"]
    assert numbers == ["0222220001", "0222220002", "0222220003"]


class _FakeManager:
    event_name = "cti-event"
    subscribed = True

    def __init__(self) -> None:
        self.link = None
        self.published: list[tuple[str, dict]] = []

    async def publish(self, event: str, payload: dict, room: str) -> bool:
        self.published.append((event, payload))
        return True


class _FakeHub:
    store = None

    def __init__(self) -> None:
        self.relayed: list[dict] = []

    async def relay(self, payload: dict) -> dict:
        self.relayed.append(payload)
        return payload


def test_mirroring_keeps_each_event_once_and_asks_for_gaps():
    import asyncio

    from cidbridge.server.cluster import RESEND, SYNC, ClusterLink

    manager, hub = _FakeManager(), _FakeHub()
    link = ClusterLink(manager, hub, "node-b")  # type: ignore[arg-type]

    def event(event_id: int, prev: int) -> dict:
        return {"id": event_id, "prev": prev, "node": "node-a", "type": "call", "time": "t"}

    async def scenario() -> None:
        await link.receive("cti-event", event(5, 0))
        await link.receive("cti-event", event(5, 0))  # a duplicate
        await link.receive("cti-event", event(9, 7))  # 7 never arrived: a gap
        assert manager.published == [(SYNC, {"node": "node-b", "have": {"node-a": 5}})]
        assert link.contiguous["node-a"] == 5
        resend = {"node": "node-a", "to": "node-b", "events": [event(7, 5), event(9, 7)]}
        await link.receive(RESEND, resend)
        await link.receive(RESEND, {**resend, "to": "node-c"})  # someone else's
        await link.receive(SYNC, {"node": "node-c", "have": {"node-a": 3}})  # asks node-a, not us
        assert len(manager.published) == 1

    asyncio.run(scenario())
    assert [e["origin"] for e in hub.relayed] == [
        {"node": "node-a", "id": 5},
        {"node": "node-a", "id": 9},
        {"node": "node-a", "id": 7},
    ]
    assert all("prev" not in e and "id" not in e and "node" not in e for e in hub.relayed)
    assert link.contiguous["node-a"] == 9
    assert link.counts["duplicates"] == 2
