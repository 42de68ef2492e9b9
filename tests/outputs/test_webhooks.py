"""Webhooks against a real receiver process, with ``cidbridge serve`` as a real process (killed, too)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from cidbridge.outputs.webhooks import matches, signature
from tests.broadcast.support import http
from tests.outputs.support import TOKEN, Receiver, post_call, wait_until
from tests.support.daemon import DaemonProcess
from tests.support.node import NodeClient

SECRET = "webhook-test-secret-0123456789"
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verify() -> Any:
    """The README's signature check, exactly as printed there (so the README stays right)."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- webhook-verify[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "the README's webhook verification example is missing"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    return namespace["verify"]


def log_events(db: Path) -> list[dict[str, Any]]:
    """Every event in the call log, read from the file (the daemon may be dead)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT id, payload FROM events ORDER BY id").fetchall()
    return [{"id": row[0], **json.loads(row[1])} for row in rows]


def call(daemon: DaemonProcess, number: str, *steps: str) -> None:
    for step in steps:
        status, answer = post_call(daemon.url, {"number": number, "line": "pbx", "event": step}, TOKEN)
        assert status == 200, answer


def calls(daemon: DaemonProcess, numbers: range) -> None:
    """For each n a call nobody answers, then an answered one (whose caller ID ends the first as missed).

    The line's tracker learns it sees the handset from the first answered call, so
    each daemon run starts with one.
    """
    for n in numbers:
        call(daemon, f"0103000{n:04d}", "ringing")
        call(daemon, f"0103100{n:04d}", "ringing", "answered", "ended")


def output(daemon: DaemonProcess, name: str) -> dict[str, Any]:
    return daemon.get("/healthz")[1]["outputs"][f"webhook:{name}"]


def hooks(everything: Receiver, missed: Receiver, **extra: Any) -> list[dict[str, Any]]:
    common = {"secret": SECRET, "timeout": 2, "max_backoff": 1, **extra}
    return [
        {"name": "all", "url": everything.url, **common},
        {"name": "missed", "url": missed.url, "events": ["missed"], **common},
    ]


def test_every_event_arrives_in_order_through_receiver_outages_and_a_sigkill(start_daemon, tmp_path) -> None:
    everything = Receiver(tmp_path / "all")
    missed = Receiver(tmp_path / "missed")
    (tmp_path / "all").mkdir()
    (tmp_path / "missed").mkdir()
    everything.start()
    missed.start()
    settings = {
        "server": {"token": TOKEN},
        "broadcast": {"node": "desk1"},
        "calls": {"ringless_timeout": 600},
        "webhooks": hooks(everything, missed),
    }
    try:
        daemon = start_daemon([], **settings)
        call(daemon, "01031000000", "ringing", "answered", "ended")
        calls(daemon, range(1, 5))
        wait_until(lambda: len(everything.received()) >= 20, 20, "the first calls")

        everything.stop()  # the receiver goes away mid-stream
        calls(daemon, range(5, 10))
        # The other webhook is not held up by this one's dead receiver.
        wait_until(lambda: len(missed.received()) >= 9, 20, "missed calls while the other receiver is down")
        wait_until(lambda: output(daemon, "all")["state"] == "down", 20, "the dead receiver noticed")
        behind = output(daemon, "all")
        assert behind["gauges"]["backlog"] >= 10 and behind["counters"]["retries"] >= 1
        call(daemon, "01039999999", "ringing")  # left ringing: the restarted daemon ends it
        daemon.kill()  # SIGKILL with a backlog waiting

        daemon = start_daemon([], **settings)
        call(daemon, "01031000010", "ringing", "answered", "ended")
        calls(daemon, range(11, 13))
        everything.start()
        calls(daemon, range(13, 15))

        logged = log_events(tmp_path / "calls.sqlite")
        missed_ids = [e["id"] for e in logged if e["type"] == "end" and e["outcome"] == "missed"]
        all_ids = [e["id"] for e in logged]
        wait_until(
            lambda: (
                set(all_ids) <= {int(r["headers"]["x-cidbridge-event-id"]) for r in everything.received()}
            ),
            30,
            "every event at the receiver that was down",
        )
        wait_until(lambda: len(missed.received()) >= len(missed_ids), 30, "every missed call")
        wait_until(lambda: output(daemon, "all")["gauges"]["backlog"] == 0, 10, "the cursor at the end")
        assert output(daemon, "all")["state"] == "up" and output(daemon, "all")["gauges"]["lag_seconds"] == 0
    finally:
        everything.stop()
        missed.stop()

    verify = readme_verify()
    for receiver, wanted in ((everything, all_ids), (missed, missed_ids)):
        requests = receiver.received()
        ids = []
        for request in requests:
            headers, body = request["headers"], request["body"].encode()
            assert verify(SECRET, headers["x-cidbridge-signature"], body), (
                "a request failed the README's check"
            )
            event = json.loads(body)
            assert int(headers["x-cidbridge-event-id"]) == event["id"]
            assert headers["x-cidbridge-event-type"] == event["type"] and event["node"] == "desk1"
            assert headers["idempotency-key"] == f"desk1:{event['id']}"
            assert headers["content-type"] == "application/json"
            ids.append(event["id"])
        first_seen = list(dict.fromkeys(ids))
        assert first_seen == sorted(first_seen), f"out of order: {ids}"
        assert first_seen == wanted, "an event is missing, or one not asked for arrived"
        repeats = len(ids) - len(first_seen)
        print(f"webhook {receiver.record.parent.name}: {len(first_seen)} events, {repeats} repeats")
    # The signature is bound to the body and the secret.
    request = everything.received()[0]
    assert not verify(SECRET, request["headers"]["x-cidbridge-signature"], request["body"].encode() + b" ")
    assert not verify(
        "another-secret-0123456789", request["headers"]["x-cidbridge-signature"], request["body"].encode()
    )


def test_a_hanging_receiver_costs_only_its_own_events(start_daemon, tmp_path) -> None:
    hanging = Receiver(tmp_path, mode="hang")
    hanging.start()
    try:
        daemon = start_daemon(
            [],
            server={"token": TOKEN},
            webhooks=[{"name": "slow", "url": hanging.url, "timeout": 1, "max_backoff": 1}],
        )
        client = NodeClient(daemon.url, token=TOKEN)
        try:
            assert client.wait_connected()["ev"] == "connect"
            for n in range(10):
                call(daemon, f"0104000{n:04d}", "ringing")
            # Socket.IO clients get every event while the webhook waits on a receiver that never answers.
            client.wait_for(lambda m: m["ev"] == "event" and m["data"]["number"] == "01040000009")
            assert len([e for e in client.events() if e["type"] == "call"]) == 10
        finally:
            client.close()
        wait_until(lambda: output(daemon, "slow")["counters"]["retries"] >= 1, 20, "a timed-out attempt")
        health = output(daemon, "slow")
        assert health["state"] == "down" and "no answer within 1 s" in health["reason"]
        _, logged = daemon.get("/api/events?after=0", TOKEN)
        assert health["gauges"]["backlog"] == len(logged) and health["delivered"] == 0
        _, _, metrics = http(daemon.url, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        text = metrics.decode()
        assert 'cidbridge_output_up{output="webhook:slow"} 0.0' in text
        assert f'cidbridge_output_backlog{{output="webhook:slow"}} {float(len(logged))}' in text
        assert re.search(r'cidbridge_output_retries_total\{output="webhook:slow"\} [1-9]', text)
        assert re.search(r'cidbridge_output_lag_seconds\{output="webhook:slow"\} [0-9.]+', text)
        assert daemon.stop() == 0  # and a clean stop is not held up by it
    finally:
        hanging.stop()


def test_redirects_are_reported_not_followed(start_daemon, tmp_path) -> None:
    moved = Receiver(tmp_path, mode="redirect")
    moved.start()
    try:
        daemon = start_daemon(
            [],
            server={"token": TOKEN},
            webhooks=[{"name": "moved", "url": f"{moved.url}?token=s3cret", "max_backoff": 1}],
        )
        call(daemon, "01050000001", "ringing")
        wait_until(lambda: output(daemon, "moved")["state"] == "down", 20, "the redirect reported")
        reason = output(daemon, "moved")["reason"]
        assert "302 redirect to http://elsewhere.invalid/hook not followed" in reason
        assert "s3cret" not in json.dumps(output(daemon, "moved")) and "token=abc" not in reason
        assert "s3cret" not in daemon.stderr()
    finally:
        moved.stop()


def test_signature_and_filters() -> None:
    body = b'{"id":1}'
    assert signature("k" * 16, 1700000000, body) == (
        "t=1700000000,v1=" + __import__("hmac").new(b"k" * 16, b"1700000000." + body, "sha256").hexdigest()
    )
    end_missed = {"id": 1, "type": "end", "outcome": "missed"}
    end_answered = {"id": 2, "type": "end", "outcome": "answered"}
    correction = {"id": 3, "type": "update", "outcome": "missed"}
    relayed = {"id": 4, "type": "call", "origin": {"node": "b", "id": 9}}
    assert matches(("missed",), end_missed, relayed=False)
    assert not matches(("missed",), end_answered, relayed=False)
    assert matches(("missed",), correction, relayed=False)
    assert matches((), end_answered, relayed=False) and matches(("end",), end_answered, relayed=False)
    assert not matches((), relayed, relayed=False) and matches(("call",), relayed, relayed=True)
    end_blocked = {"id": 5, "type": "end", "outcome": "blocked", "blocked": True}
    assert matches(("blocked",), end_blocked, relayed=False) and not matches(
        ("missed",), end_blocked, relayed=False
    )
