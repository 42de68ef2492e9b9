"""Hot-plug through the real daemon process: line events reach a real socket.io-client."""

from __future__ import annotations

import time

from cidbridge.sim.modem import Caller
from tests.support.daemon import DaemonProcess, write_config
from tests.support.node import NodeClient


def test_replug_is_seen_by_browsers_and_needs_no_restart(modem, start_daemon, tmp_path):
    model, device = modem
    missing = tmp_path / "usb-not-plugged-in"
    daemon = start_daemon(
        [
            {"name": "front", "port": device.path, "keepalive": 1.0},
            {"name": "back", "port": str(missing)},
        ],
        calls={"ring_gap": 2.0},
    )
    status, health = daemon.get("/healthz")
    assert status == 503  # one line is down
    assert health["lines"]["front"]["state"] == "up"
    assert health["lines"]["back"]["state"] == "down"
    assert "does not exist" in health["lines"]["back"]["reason"]

    client = NodeClient(daemon.url)
    try:
        assert client.wait_connected()["ev"] == "connect"
        device.unplug()
        down = client.wait_event(
            lambda e: e["type"] == "line" and e["line"] == "front" and e["state"] == "down"
        )
        assert down["reason"] and isinstance(down["id"], int)
        assert daemon.get("/healthz")[1]["lines"]["front"]["state"] == "down"

        model.cid_enabled = False  # it comes back reset
        device.plug()
        replugged = time.monotonic()
        client.wait_event(
            lambda e: (
                e["type"] == "line" and e["line"] == "front" and e["state"] == "up" and e["id"] > down["id"]
            )
        )
        assert time.monotonic() - replugged < 2.0

        device.play(model.call_script(Caller("0212345678", "LEE"), rings=2), speed=10)
        call = client.wait_event(lambda e: e["type"] == "call" and e["line"] == "front")
        assert call["number"] == "0212345678"
        assert daemon.get("/healthz")[1]["lines"]["front"]["state"] == "up"
        assert daemon.proc.poll() is None
    finally:
        client.close()


def test_serve_capture_writes_what_the_line_reads(modem, tmp_path):
    model, device = modem
    config = write_config(
        tmp_path / "capture.toml",
        lines=[{"name": "front", "port": device.path}],
        db=tmp_path / "calls.sqlite",
        calls={"ring_gap": 1.0},
    )
    capture = tmp_path / "raw.bin"
    daemon = DaemonProcess(config, args=("--capture", str(capture)))
    try:
        daemon.wait_ready()
        script = model.call_script(Caller("0311112222", "CHOI"), rings=2)
        device.play(script, speed=10)
        wanted = b"".join(data for _, data in script)
        deadline = time.monotonic() + 10
        while wanted not in (capture.read_bytes() if capture.exists() else b""):
            assert time.monotonic() < deadline, "the call never reached the capture file"
            time.sleep(0.05)
    finally:
        daemon.stop()
