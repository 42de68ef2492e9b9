"""The real socket.io-client v4 (Node) against a real ``cidbridge serve``.

Calls are posted to ``/api/cti/incoming-call``: they take the same tracker → log →
broadcast path as a serial line's calls, without a pty.
"""

from __future__ import annotations

import pytest

from tests.broadcast.support import free_port, post_call
from tests.support.daemon import DaemonProcess, write_config
from tests.support.node import NodeClient

TOKEN = "compat-token-0123456789"


@pytest.fixture
def daemon(start_daemon):
    return start_daemon([], server={"token": TOKEN})


@pytest.mark.parametrize(
    ("transports", "final"),
    [(["websocket"], "websocket"), (["polling"], "polling"), (["polling", "websocket"], "websocket")],
    ids=["websocket", "polling", "upgrade"],
)
def test_transport_receives_calls(daemon, transports, final):
    client = NodeClient(daemon.url, token=TOKEN, transports=transports)
    try:
        assert client.wait_connected()["ev"] == "connect"
        if final != transports[0]:
            assert client.wait_for(lambda m: m["ev"] == "upgrade")["transport"] == final
        status, answer = post_call(daemon.url, {"number": "01012345678", "name": "KIM MINJI"}, TOKEN)
        assert status == 200, answer
        event = client.wait_event(lambda e: e["type"] == "call")
        assert event["number"] == "01012345678"
        assert event["name"] == "KIM MINJI"
        assert event["display"] == "010-1234-5678"
        assert event["id"] == answer["events"][0]["id"]
        assert event["v"] == 1
        assert event["node"]
    finally:
        client.close()


def test_refused_clients_get_connect_error(daemon):
    wrong = NodeClient(daemon.url, token="not-the-token", reconnection=False)
    missing = NodeClient(daemon.url, reconnection=False)
    try:
        for client in (wrong, missing):
            refusal = client.wait_connected()
            assert refusal == {"ev": "connect_error", "message": "invalid or missing token"}
    finally:
        wrong.close()
        missing.close()


def test_reconnect_catches_up_without_gap_or_duplicate(daemon):
    client = NodeClient(daemon.url, token=TOKEN)
    try:
        client.wait_connected()
        post_call(daemon.url, {"number": "0211112222", "line": "a"}, TOKEN)
        first = client.wait_event(lambda e: e["number"] == "0211112222")

        client.send("close")
        client.wait_for(lambda m: m["ev"] == "disconnect")
        missed = [
            post_call(daemon.url, {"number": f"03133334{i}", "line": f"b{i}"}, TOKEN)[1] for i in range(3)
        ]
        client.send("open")  # the client sends the last id it saw in auth

        last_missed = missed[-1]["events"][-1]["id"]
        client.wait_event(lambda e: e["id"] == last_missed)
        post_call(daemon.url, {"number": "0515556666", "line": "c"}, TOKEN)
        live = client.wait_event(lambda e: e["number"] == "0515556666")
    finally:
        client.close()
    ids = [e["id"] for e in client.events()]
    assert ids == sorted(set(ids)), "ids must be strictly increasing, without duplicates"
    expected = [first["id"], *(m["events"][0]["id"] for m in missed), live["id"]]
    assert [i for i in ids if i in expected] == expected


def test_reconnect_to_another_node_replays_recent_calls(daemon):
    """A last_id from another node's log is not trusted: recent calls are replayed instead."""
    post_call(daemon.url, {"number": "0212345678"}, TOKEN)
    client = NodeClient(daemon.url, token=TOKEN, last_id=10_000, node="some-other-node")
    try:
        event = client.wait_event(lambda e: e["number"] == "0212345678")
        assert event["type"] == "call"
    finally:
        client.close()


def test_automatic_reconnection_after_a_daemon_restart_catches_up(tmp_path):
    config = write_config(
        tmp_path / "restart.toml",
        lines=[],
        db=tmp_path / "calls.sqlite",
        server={"token": TOKEN, "port": free_port()},
    )
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    client = NodeClient(daemon.url, token=TOKEN, reconnection_delay=1500)
    try:
        client.wait_connected()
        before = post_call(daemon.url, {"number": "0213570001", "line": "r1"}, TOKEN)[1]
        client.wait_event(lambda e: e["number"] == "0213570001")
        daemon.stop()
        client.wait_for(lambda m: m["ev"] == "disconnect")

        daemon = DaemonProcess(config)  # same port, same call log
        daemon.wait_ready()
        # Most likely before the client is back: it gets them as a replay after last_id.
        after = [
            post_call(daemon.url, {"number": f"021357001{i}", "line": f"r2{i}"}, TOKEN)[1] for i in range(2)
        ]
        client.wait_event(lambda e: e["number"] == "0213570011", timeout=30)
    finally:
        client.close()
        daemon.stop()
    assert [m["ev"] for m in client.seen if m["ev"] in ("connect", "disconnect")] == [
        "connect",
        "disconnect",
        "connect",
    ]
    ids = [e["id"] for e in client.events()]
    assert ids == sorted(set(ids))
    wanted = [before["events"][0]["id"], *(a["events"][0]["id"] for a in after)]
    assert [i for i in ids if i in wanted] == wanted
