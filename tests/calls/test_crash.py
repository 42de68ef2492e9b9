"""Crash safety: an event a client has seen survives the daemon being SIGKILLed."""

from __future__ import annotations

import json
import sqlite3

from tests.calls.helpers import RING_GAP, call, log_events
from tests.support.node import NodeClient


def test_events_seen_before_a_sigkill_are_in_the_log_after_restart(modem, start_daemon, tmp_path):
    model, device = modem
    line = [{"name": "desk", "port": device.path, "device": "modem"}]
    daemon = start_daemon(line, calls={"ring_gap": RING_GAP})
    client = NodeClient(daemon.url, reconnection=False)
    try:
        assert client.wait_connected()["ev"] == "connect"
        call(device, model, "01033330001", "CRASH TEST")
        # Kill the moment the caller ID is broadcast: committed, so it must survive.
        seen = client.wait_event(lambda e: e["type"] == "call")
        daemon.kill()
    finally:
        client.close()
    seen_events = client.events()
    assert seen["number"] == "01033330001"

    # The file itself, as the daemon left it (WAL not checkpointed): every seen event is there.
    with sqlite3.connect(tmp_path / "calls.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        logged = {row[0]: json.loads(row[1]) for row in db.execute("SELECT id, payload FROM events")}
    for event in seen_events:
        assert event["id"] in logged, f"event {event['id']} was broadcast but is not in the log"
        assert logged[event["id"]]["type"] == event["type"]

    # And the restarted daemon serves it, and carries on numbering after it.
    restarted = start_daemon(line, calls={"ring_gap": RING_GAP})
    served = {e["id"]: e for e in log_events(restarted)}
    assert served[seen["id"]]["number"] == "01033330001" and served[seen["id"]]["name"] == "CRASH TEST"
    # The call that was ringing when the daemon died is ended, not left ringing forever.
    (ended,) = [e for e in served.values() if e["type"] == "end" and e["call_id"] == seen["call_id"]]
    assert ended["outcome"] == "unknown" and ended["number"] == "01033330001"
    call(device, model, "01033330002")
    client = NodeClient(restarted.url, last_id=seen["id"])
    try:
        later = client.wait_event(lambda e: e["type"] == "call" and e["number"] == "01033330002")
        assert later["id"] > max(served)
        assert all(e["id"] > seen["id"] for e in client.events())
    finally:
        client.close()
