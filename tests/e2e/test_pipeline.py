"""The whole pipeline with real parts: pty device → daemon process → socket.io-client."""

from __future__ import annotations

import sqlite3

from cidbridge.sim.modem import Caller
from tests.support.node import NodeClient


def test_call_reaches_socketio_client(modem, start_daemon, tmp_path):
    model, device = modem
    daemon = start_daemon(
        [{"name": "front-desk", "port": device.path, "device": "modem"}],
        calls={"ring_gap": 2.0, "region": "KR"},
    )
    # The daemon initialised the modem before declaring itself ready.
    assert model.cid_enabled
    assert any(cmd.upper().startswith("AT+VCID=1") for cmd in model.commands)

    client = NodeClient(daemon.url)
    try:
        assert client.wait_connected()["ev"] == "connect"
        caller = Caller("01012345678", "KIM MINJI", month=11, day=26, hour=9, minute=30)
        device.play(model.call_script(caller, rings=2), speed=10)

        call = client.wait_event(lambda e: e["type"] == "call")
        assert call["number"] == "01012345678"
        assert call["name"] == "KIM MINJI"
        assert call["display"] == "010-1234-5678"
        assert call["line"] == "front-desk"
        assert isinstance(call["id"], int)

        end = client.wait_event(lambda e: e["type"] == "end")
        assert end["call_id"] == call["call_id"]
        assert end["outcome"] == "unknown"  # a modem cannot see the handset
    finally:
        client.close()

    # Store, then broadcast: every event the client saw is in the call log, same id.
    seen = {e["id"]: e["type"] for e in client.events()}
    with sqlite3.connect(tmp_path / "calls.sqlite") as db:
        logged = dict(db.execute("SELECT id, type FROM events"))
    assert seen.items() <= logged.items()


def test_refuses_client_with_wrong_token(modem, start_daemon):
    _, device = modem
    daemon = start_daemon(
        [{"name": "desk", "port": device.path}],
        server={"token": "s3cret-token-0123456789"},
    )
    bad = NodeClient(daemon.url, token="wrong", reconnection=False)
    good = NodeClient(daemon.url, token="s3cret-token-0123456789")
    try:
        assert bad.wait_connected()["ev"] == "connect_error"
        assert good.wait_connected()["ev"] == "connect"
    finally:
        bad.close()
        good.close()
