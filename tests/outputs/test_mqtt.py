"""MQTT and Home Assistant discovery against a real mosquitto, with ``cidbridge serve`` as a real process."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broadcast.support import http
from tests.outputs.support import TOKEN, Mosquitto, Subscriber, post_call, retained, wait_until
from tests.support.daemon import DaemonProcess

NODE = "desk1"
BASE = f"cidbridge/{NODE}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


def sections(broker: Mosquitto, **mqtt: Any) -> dict[str, Any]:
    return {
        "server": {"token": TOKEN},
        "broadcast": {"node": NODE},
        "mqtt": {"host": "127.0.0.1", "port": broker.port, **mqtt},
        # Posted calls are never ended by the ringless timeout while a test runs.
        "calls": {"ringless_timeout": 600},
    }


def log_ids(daemon: DaemonProcess) -> list[int]:
    ids: list[int] = []
    while True:
        status, page = daemon.get(f"/api/events?after={ids[-1] if ids else 0}&limit=500", TOKEN)
        assert status == 200, page
        if not page:
            return ids
        ids += [event["id"] for event in page]


def ringing(daemon: DaemonProcess, number: str, line: str = "pbx", **fields: Any) -> dict[str, Any]:
    status, answer = post_call(daemon.url, {"number": number, "line": line, **fields}, TOKEN)
    assert status == 200, answer
    return answer


def mqtt_output(daemon: DaemonProcess) -> dict[str, Any]:
    return daemon.get("/healthz")[1]["outputs"]["mqtt"]


def test_events_states_and_home_assistant_discovery(broker, modem, start_daemon) -> None:
    _, device = modem
    subscriber = Subscriber(broker.port, [f"{BASE}/#"], "test-events")
    try:
        daemon = start_daemon([{"name": "front", "port": device.path}], **sections(broker))
        # The serial line's own up event reaches its connection topic.
        wait_until(lambda: b"up" in subscriber.payloads(f"{BASE}/line/front/connection"), 10, "front up")
        answer = ringing(daemon, "01012345678", name="KIM MINJI")
        call_id = answer["call_id"]
        event_id = answer["events"][0]["id"]
        wait_until(lambda: subscriber.json(f"{BASE}/line/pbx/event"), 10, "the call's notice")

        (published,) = [e for e in subscriber.json(f"{BASE}/event") if e["id"] == event_id]
        assert (published["type"], published["number"], published["node"]) == ("call", "01012345678", NODE)
        (notice,) = subscriber.json(f"{BASE}/line/pbx/event")
        assert (notice["event_type"], notice["caller"], notice["call_id"]) == ("call", "KIM MINJI", call_id)
        assert subscriber.json(f"{BASE}/line/pbx/state")[-1]["state"] == "ringing"

        ringing(daemon, "01012345678", event="answered")
        wait_until(lambda: len(subscriber.json(f"{BASE}/line/pbx/event")) >= 2, 10, "answered")
        assert subscriber.json(f"{BASE}/line/pbx/event")[1]["event_type"] == "answered"
        wait_until(lambda: subscriber.json(f"{BASE}/line/pbx/state")[-1]["state"] == "talking", 10, "talking")

        # What a Home Assistant starting now would read: retained messages, from a fresh mosquitto_sub.
        found = retained(broker.port, "homeassistant/#", f"{BASE}/#")
        assert found[f"{BASE}/status"] == b"online"
        state = json.loads(found[f"{BASE}/line/pbx/state"])
        assert (state["state"], state["caller"], state["number"], state["call_id"]) == (
            "talking",
            "KIM MINJI",
            "01012345678",
            call_id,
        )
        assert found[f"{BASE}/line/front/connection"] == b"up"
        assert json.loads(found[f"{BASE}/line/front/state"])["state"] == "idle"
        discovery = {t: json.loads(payload) for t, payload in found.items() if t.startswith("homeassistant/")}
        assert set(discovery) == {
            f"homeassistant/sensor/{NODE}/pbx_state/config",
            f"homeassistant/sensor/{NODE}/pbx_caller/config",
            f"homeassistant/event/{NODE}/pbx_call/config",
            f"homeassistant/sensor/{NODE}/front_state/config",
            f"homeassistant/sensor/{NODE}/front_caller/config",
            f"homeassistant/event/{NODE}/front_call/config",
            f"homeassistant/binary_sensor/{NODE}/front_connection/config",
        }
        check_discovery(discovery)
        assert mqtt_output(daemon)["state"] == "up"
        status, _, metrics = http(daemon.url, "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        assert 'cidbridge_output_up{output="mqtt"} 1.0' in metrics.decode()
        assert 'cidbridge_output_reconnects_total{output="mqtt"} 0.0' in metrics.decode()

        # A clean stop says offline (the broker sends the will only when the client vanishes).
        assert daemon.stop() == 0
        assert retained(broker.port, f"{BASE}/status")[f"{BASE}/status"] == b"offline"
    finally:
        subscriber.close()


def check_discovery(discovery: dict[str, dict[str, Any]]) -> None:
    """The keys Home Assistant's MQTT discovery schema requires or uses, per its documentation."""
    unique_ids = [config["unique_id"] for config in discovery.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for topic, config in discovery.items():
        component = topic.split("/")[1]
        assert config["availability_topic"] == f"{BASE}/status"
        assert config["device"]["identifiers"] and config["device"]["name"] in ("pbx", "front")
        assert config["origin"]["name"] == "cidbridge"
        assert config["state_topic"].startswith(f"{BASE}/line/")
        assert topic.split("/")[3] == config["unique_id"].split(f"cidbridge_{NODE}_", 1)[1]
        if component == "event":
            assert config["event_types"] == ["ring", "call", "answered", "update", "missed", "blocked", "end"]
        if component == "binary_sensor":
            assert (config["payload_on"], config["payload_off"]) == ("up", "down")
        if config.get("device_class") == "enum":
            assert config["options"] == ["idle", "ringing", "talking"]


def test_a_killed_daemon_goes_offline_by_its_last_will(broker, start_daemon) -> None:
    daemon = start_daemon([], **sections(broker))

    def status() -> bytes | None:
        return retained(broker.port, f"{BASE}/status").get(f"{BASE}/status")

    wait_until(lambda: status() == b"online", 10, "online")
    daemon.kill()
    wait_until(lambda: status() == b"offline", 10, "the last will")


def test_broker_restart_mid_stream_loses_nothing_and_keeps_order(broker, start_daemon) -> None:
    """Calls keep coming while mosquitto is stopped and started again: every event arrives, in order."""
    subscriber = Subscriber(broker.port, [f"{BASE}/event"], "test-restart")
    try:
        daemon = start_daemon([], **sections(broker))
        posted: list[int] = []
        stop_posting = threading.Event()

        def post_calls() -> None:
            n = 0
            while not stop_posting.is_set() and n < 400:
                answer = ringing(daemon, f"0101000{n:04d}", line=f"line{n % 3}")
                posted.extend(event["id"] for event in answer["events"])
                n += 1
                stop_posting.wait(0.06)  # under the ingest rate limit (20/s)

        poster = threading.Thread(target=post_calls)
        poster.start()
        try:
            wait_until(lambda: len(posted) >= 20, 30, "calls before the restart")
            broker.stop()
            wait_until(lambda: mqtt_output(daemon)["state"] == "down", 10, "the output to notice")
            seen_at_stop = len(posted)
            wait_until(lambda: len(posted) >= seen_at_stop + 20, 30, "calls while the broker is down")
            assert mqtt_output(daemon)["queued"] > 0
            broker.start()
            wait_until(lambda: mqtt_output(daemon)["state"] == "up", 30, "reconnected")
            reconnected_at = len(posted)
            wait_until(lambda: len(posted) >= reconnected_at + 20, 30, "calls after the restart")
        finally:
            stop_posting.set()
            poster.join()

        every = log_ids(daemon)
        assert set(posted) <= set(every)

        def received() -> list[int]:
            return [json.loads(p)["id"] for p in subscriber.payloads(f"{BASE}/event")]

        wait_until(lambda: set(every) <= set(received()), 30, "every event at the subscriber")
        ids = received()
        first_seen = list(dict.fromkeys(ids))
        assert first_seen == sorted(first_seen), "events arrived out of order"
        assert first_seen == every, "an event is missing or one that is not in the log arrived"
        health = mqtt_output(daemon)
        assert health["dropped"] == 0 and health["counters"]["reconnects"] >= 1
        print(f"mqtt restart: {len(every)} events, {len(ids) - len(first_seen)} duplicates, health {health}")
    finally:
        subscriber.close()


def test_the_queue_bound_drops_the_oldest_and_counts_them(broker, start_daemon) -> None:
    subscriber = Subscriber(broker.port, [f"{BASE}/event"], "test-bound")
    try:
        daemon = start_daemon([], **sections(broker, queue=5))
        wait_until(lambda: mqtt_output(daemon)["state"] == "up", 10, "connected")
        broker.stop()
        wait_until(lambda: mqtt_output(daemon)["state"] == "down", 10, "down")
        ids = [ringing(daemon, f"010200{n:05d}", line=f"l{n}")["events"][0]["id"] for n in range(12)]
        health = mqtt_output(daemon)
        assert (health["queued"], health["dropped"]) == (5, 7)
        broker.start()
        wait_until(lambda: len(subscriber.payloads(f"{BASE}/event")) >= 5, 30, "the queued events")
        assert [json.loads(p)["id"] for p in subscriber.payloads(f"{BASE}/event")] == ids[-5:]
        assert mqtt_output(daemon)["dropped"] == 7
    finally:
        subscriber.close()


def test_retained_messages_are_published_again_after_the_broker_forgot_them(tmp_path, start_daemon) -> None:
    broker = Mosquitto(tmp_path / "forgetful", persistence=False)
    broker.start()
    try:
        daemon = start_daemon([], **sections(broker))
        ringing(daemon, "01060000001", name="PARK")
        wanted = {f"{BASE}/status", f"{BASE}/line/pbx/state", f"homeassistant/event/{NODE}/pbx_call/config"}
        wait_until(lambda: wanted <= set(retained(broker.port, "#")), 10, "retained messages")
        broker.stop()
        broker.start()  # an empty broker
        wait_until(lambda: wanted <= set(retained(broker.port, "#")), 30, "retained messages published again")
        state = json.loads(retained(broker.port, f"{BASE}/line/pbx/state")[f"{BASE}/line/pbx/state"])
        assert (state["caller"], state["state"]) == ("PARK", "ringing")
        assert mqtt_output(daemon)["counters"]["reconnects"] == 1
    finally:
        broker.stop()


def test_a_message_in_flight_when_the_broker_crashes_is_sent_again(broker, start_daemon) -> None:
    """The broker freezes with a message unacknowledged, then dies: that message is published again."""
    subscriber = Subscriber(broker.port, [f"{BASE}/event"], "test-crash")
    try:
        # Restart once so the broker's saved state holds the subscriber's session: after the
        # crash below (which saves nothing) messages for it are queued until it reconnects.
        broker.stop()
        broker.start()
        daemon = start_daemon([], **sections(broker))
        before = [ringing(daemon, f"0107000{n:04d}", line=f"c{n}")["events"][0]["id"] for n in range(3)]
        wait_until(lambda: len(subscriber.payloads(f"{BASE}/event")) >= 3, 10, "the first events")
        broker.freeze()
        during = [ringing(daemon, f"0107100{n:04d}", line=f"d{n}")["events"][0]["id"] for n in range(3)]
        # One is in flight (sent, never acknowledged), the others wait behind it.
        wait_until(lambda: mqtt_output(daemon)["queued"] == 2, 10, "two waiting behind the one in flight")
        assert mqtt_output(daemon)["delivered"] == 3
        broker.crash()
        broker.start()
        wait_until(lambda: mqtt_output(daemon)["delivered"] == 6, 30, "the rest delivered after the crash")
        wanted = before + during
        got = lambda: [json.loads(p)["id"] for p in subscriber.payloads(f"{BASE}/event")]  # noqa: E731
        wait_until(lambda: set(wanted) <= set(got()), 30, "every event at the subscriber")
        assert list(dict.fromkeys(got())) == wanted
    finally:
        subscriber.close()


def test_tls_and_a_login_and_the_password_never_shows(tmp_path, start_daemon) -> None:
    """A broker that wants TLS and a password: the right login connects, a wrong one is
    reported (state down, the broker's reason) and the password is in no log or status."""
    openssl = shutil.which("openssl")
    passwd = shutil.which("mosquitto_passwd")
    if openssl is None or passwd is None:
        pytest.skip("openssl and mosquitto_passwd are needed (apt-get install openssl mosquitto)")
    cert, key, users = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "users"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    request += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    subprocess.run([passwd, "-c", "-b", str(users), "desk", "right-password-1234"], check=True)
    users.chmod(0o600)
    extra = f"certfile {cert}\nkeyfile {key}\nallow_anonymous false\npassword_file {users}"
    broker = Mosquitto(tmp_path / "secure", extra=extra)
    broker.start()
    try:
        login = {"tls": True, "ca_file": str(cert), "username": "desk"}
        good = start_daemon([], **sections(broker, password="right-password-1234", **login))
        wait_until(lambda: mqtt_output(good)["state"] == "up", 15, "a TLS connection with the login")
        bad = start_daemon([], **sections(broker, password="wrong-password-5678", **login))
        wait_until(lambda: mqtt_output(bad)["state"] == "down", 15, "the wrong login refused")
        health = json.dumps(mqtt_output(bad))
        assert "connection refused:" in health and "check [mqtt] username and password" in health, health
        plain = start_daemon([], **sections(broker, password="right-password-1234", username="desk"))
        wait_until(lambda: mqtt_output(plain)["state"] == "down", 15, "plain MQTT to a TLS port refused")
        for daemon, secret in ((good, "right-password-1234"), (bad, "wrong-password-5678")):
            assert daemon.stop() == 0
            assert secret not in daemon.stderr() and secret not in health
    finally:
        broker.stop()
