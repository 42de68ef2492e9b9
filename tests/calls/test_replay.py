"""Replay: a socket.io-client that reconnects gets exactly what it missed, in order.

Real parts throughout: the daemon as a process, the simulated modem on a pty, the
real socket.io-client v4 under Node, a real SQLite file.
"""

from __future__ import annotations

from datetime import datetime

from cidbridge.store import CallLog
from tests.calls.helpers import RING_GAP, CallStream, call, free_port, log_events, wait_for_end, wait_until
from tests.support.node import NodeClient


def ids(events):
    return [e["id"] for e in events]


def without_node(event):
    """The event as logged (the broadcaster adds ``node``, the log does not store it)."""
    return {key: value for key, value in event.items() if key != "node"}


def modem_line(device):
    return [{"name": "desk", "port": device.path, "device": "modem"}]


def test_reconnect_with_last_id_gets_exactly_the_missed_events_in_order(modem, start_daemon):
    model, device = modem
    daemon = start_daemon(modem_line(device), calls={"ring_gap": RING_GAP})
    client = NodeClient(daemon.url)
    try:
        assert client.wait_connected()["ev"] == "connect"
        call(device, model, "01011110001")
        client.wait_event(lambda e: e["type"] == "end" and e["number"] == "01011110001")
        client.send("close")
        client.wait_for(lambda m: m["ev"] == "disconnect")
        seen_before = ids(client.events())

        call(device, model, "01011110002")
        call(device, model, "01011110003")
        wait_for_end(daemon, "01011110003")
        missed = log_events(daemon, after=seen_before[-1])
        assert {e["number"] for e in missed if e["type"] == "call"} == {"01011110002", "01011110003"}

        client.send("open")
        client.wait_event(lambda e: e["id"] == missed[-1]["id"])
        after_reconnect = client.events()[len(seen_before) :]
        assert ids(after_reconnect) == ids(missed)  # exactly the missed ones, in order
        assert [without_node(e) for e in after_reconnect] == missed  # and the same payloads
    finally:
        client.close()


def test_catch_up_across_a_daemon_restart(modem, start_daemon):
    model, device = modem
    port = free_port()
    settings = {"calls": {"ring_gap": RING_GAP}, "server": {"port": port}}
    first = start_daemon(modem_line(device), **settings)
    steady = NodeClient(first.url)  # reconnects by itself, like a browser
    paused = NodeClient(first.url)  # drops its connection before the restart
    try:
        assert steady.wait_connected()["ev"] == paused.wait_connected()["ev"] == "connect"
        call(device, model, "01022220001")
        for client in (steady, paused):
            client.wait_event(lambda e: e["type"] == "end" and e["number"] == "01022220001")
        paused.send("close")
        paused.wait_for(lambda m: m["ev"] == "disconnect")
        seen_before = len(paused.events())
        paused_last = paused.events()[-1]["id"]

        call(device, model, "01022220002")  # logged by the first process
        wait_for_end(first, "01022220002")
        assert first.stop() == 0
        steady.wait_for(lambda m: m["ev"] == "disconnect")

        second = start_daemon(modem_line(device), **settings)
        assert second.url == first.url
        call(device, model, "01022220003")  # logged by the second process
        wait_for_end(second, "01022220003")
        logged = log_events(second)

        paused.send("open")
        paused.wait_event(lambda e: e["id"] == logged[-1]["id"])
        steady.wait_event(lambda e: e["id"] == logged[-1]["id"])
        # Everything after its last id, from both processes' time, in order, once.
        assert ids(paused.events()[seen_before:]) == [e["id"] for e in logged if e["id"] > paused_last]
        # The client that reconnected by itself has every event once, in order, no gap.
        steady_ids = ids(steady.events())
        assert steady_ids == [e["id"] for e in logged if e["id"] >= steady_ids[0]]
        numbers = {e["number"] for e in steady.events() if e["type"] == "call"}
        assert {"01022220002", "01022220003"} <= numbers
    finally:
        steady.close()
        paused.close()


def test_a_call_arriving_during_the_replay_is_neither_lost_nor_duplicated(modem, start_daemon, tmp_path):
    """Thousands of old events are replayed while new calls stream in: the race really happens."""
    model, device = modem
    backlog = 20_000
    with CallLog(tmp_path / "calls.sqlite", synchronous="OFF") as store:
        for i in range(backlog):
            when = datetime.now().astimezone().isoformat(timespec="milliseconds")
            store.append({"v": 1, "type": "ring", "call_id": f"old-{i // 4}", "line": "old", "time": when})
    daemon = start_daemon(modem_line(device), calls={"ring_gap": RING_GAP})
    with CallStream(device, model) as stream:
        wait_until(lambda: len(stream.numbers) >= 2, what="calls streaming")
        client = NodeClient(daemon.url, last_id=0)
        try:
            assert client.wait_connected()["ev"] == "connect"
            client.wait_event(lambda e: e["id"] == backlog, timeout=60)
            caught_up_at = next(
                m["at"] for m in client.seen if m["ev"] == "event" and m["data"]["id"] == backlog
            )
            # Let a few more live calls through after the replay, then stop and settle.
            start = len(stream.numbers)
            wait_until(lambda: len(stream.numbers) >= start + 3, what="live calls after the replay")
            stream.stop()
            last = wait_for_end(daemon, stream.numbers[-1])
            client.wait_event(lambda e: e["id"] == last["id"], timeout=30)
        finally:
            client.close()
    received = ids(client.events())
    logged = log_events(daemon)
    assert received == ids(logged), "duplicate, gap or reordering in replay + live"
    assert len(received) == len(set(received))
    # The race happened: events committed while the backlog was still being replayed.
    during = [
        e
        for e in logged
        if e["id"] > backlog and datetime.fromisoformat(e["time"]).timestamp() * 1000 < caught_up_at
    ]
    assert during, "no event was committed while the backlog was replayed: the race did not happen"
    first_at = next(m["at"] for m in client.seen if m["ev"] == "event")
    print(
        f"replayed {backlog} events in {caught_up_at - first_at} ms; "
        f"{len(during)} live events were committed during the replay"
    )


def test_without_last_id_a_client_gets_the_last_calls(modem, start_daemon, tmp_path):
    _, device = modem
    with CallLog(tmp_path / "calls.sqlite", synchronous="OFF") as store:
        for i in range(30):
            when = datetime.now().astimezone().isoformat(timespec="milliseconds")
            for kind in ("call", "end"):
                store.append({"v": 1, "type": kind, "call_id": f"old-{i}", "line": "old", "time": when})
    daemon = start_daemon(modem_line(device), calls={"ring_gap": RING_GAP, "replay_calls": 5})
    client = NodeClient(daemon.url)
    try:
        assert client.wait_connected()["ev"] == "connect"
        last = log_events(daemon)[-1]["id"]
        client.wait_event(lambda e: e["id"] == last)
        replayed = client.events()
        call_ids = [e["call_id"] for e in replayed if e["call_id"]]
        assert sorted(set(call_ids)) == [f"old-{i}" for i in range(25, 30)]
        assert replayed[0]["call_id"] == "old-25" and replayed[0]["type"] == "call"
        assert ids(replayed) == sorted(ids(replayed))
    finally:
        client.close()
