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


def _own_event(store, number: str) -> int:
    """Commit one of this node's own events straight to its log; its id."""
    return store.append({"v": 1, "type": "call", "call_id": f"c-{number}", "line": "desk",
                         "number": number, "time": "2026-11-26T10:00:00.000+09:00"})  # fmt: skip


def test_streams_resume_from_the_log_and_never_mirror_twice(tmp_path, redis):
    """Two links in one process, each with its own call log, on a real redis-server: the
    reader resumes from what its log holds, re-added events are not mirrored again."""
    import asyncio

    from cidbridge.hub import Hub
    from cidbridge.server.cluster import ClusterLink, redis_client
    from cidbridge.store import CallLog

    a_log = CallLog(tmp_path / "a.sqlite").open()
    b_log = CallLog(tmp_path / "b.sqlite").open()

    def link(store, node: str) -> ClusterLink:
        return ClusterLink(redis_client(redis.url), Hub(store), node, channel="test")

    def mirrored() -> list[int]:
        return [e["origin"]["id"] for e in b_log.events_after(0, 100) if "origin" in e]

    async def until(condition, what: str) -> None:
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    async def scenario() -> None:
        a, b = link(a_log, "node-a"), link(b_log, "node-b")
        a.start()
        b.start()
        try:
            first = [_own_event(a_log, f"02111100{n:02d}") for n in range(3)]
            await a.publish({})
            await until(lambda: mirrored() == first, "B mirroring A's events")
            await b.close()
            later = _own_event(a_log, "0211110099")  # while B is away
            await a.publish({})
            b = link(b_log, "node-b")  # B restarts: it reads on from what its log holds
            b.start()
            await until(lambda: mirrored() == [*first, later], "B catching up after its restart")
            redis.stop()
            await until(lambda: not a.connected and not b.connected, "both noticing Redis is gone")
            published = a.counts["published"]
            redis.start()  # empty: A adds its own events again, B must not mirror them twice
            await until(lambda: a.connected and b.connected, "both reconnected")
            newest = _own_event(a_log, "0211110100")
            await a.publish({})
            await until(lambda: a.counts["published"] == published + 5, "A adding its 4 events again, and 1")
            await until(lambda: newest in mirrored(), "the event after the restart")
            assert mirrored() == [*first, later, newest]
            assert b.counts["mirrored"] == 2  # this B (since its restart): the one it missed, the newest
            assert b.peers == ["node-a"] and a.peers == ["node-b"]
        finally:
            await a.close()
            await b.close()

    try:
        asyncio.run(scenario())
    finally:
        a_log.close()
        b_log.close()


def test_every_redis_url_the_config_accepts_makes_a_client():
    from cidbridge.config.server import REDIS_SCHEMES
    from cidbridge.server.cluster import redis_client

    urls = {
        "redis": "redis://127.0.0.1:6379/0",
        "rediss": "rediss://127.0.0.1:6380/1",
        "unix": "unix:///run/redis.sock?db=2",
        "valkey": "valkey://127.0.0.1:6379/0",
        "valkeys": "valkeys://127.0.0.1:6380/0",
        "redis+sentinel": "redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379/0/calls",
        "valkey+sentinel": "valkey+sentinel://10.0.0.1:26379/0",
    }
    assert set(urls) == set(REDIS_SCHEMES)
    for url in urls.values():
        client = redis_client(url)  # connects lazily: nothing is dialled here
        assert hasattr(client, "xread"), url
