"""``GET /healthz`` and ``GET /metrics`` on a daemon reading a simulated modem."""

from __future__ import annotations

import re

from cidbridge.sim.modem import Caller
from tests.broadcast.support import http, wait_until
from tests.support.node import NodeClient


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # printed sorted
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search(r"^" + pattern + "$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def scrape(url: str) -> str:
    status, _, body = http(url, "/metrics")
    assert status == 200
    return body.decode()


def test_metrics_and_health_follow_calls_and_line_failures(modem, start_daemon):
    model, device = modem
    daemon = start_daemon([{"name": "front-desk", "port": device.path}], calls={"ring_gap": 1.0})
    status, health = daemon.get("/healthz")
    assert status == 200
    assert health["lines"]["front-desk"]["state"] == "up"
    assert health["node"] and health["uptime_s"] >= 0 and health["clients"] == 0

    client = NodeClient(daemon.url)
    try:
        client.wait_connected()
        wait_until(lambda: daemon.get("/healthz")[1]["clients"] == 1, what="client counted")
        device.play(model.call_script(Caller("01012345678", "KIM MINJI"), rings=2), speed=10)
        client.wait_event(lambda e: e["type"] == "end")
        text = scrape(daemon.url)
    finally:
        client.close()

    assert metric(text, "cidbridge_frames_decoded_total", line="front-desk", format="modem-text") >= 1
    assert metric(text, "cidbridge_frames_invalid_total", line="front-desk", format="modem-text") == 0
    assert metric(text, "cidbridge_calls_total", line="front-desk") == 1
    assert metric(text, "cidbridge_events_emitted_total", type="call") == 1
    assert metric(text, "cidbridge_events_emitted_total", type="end") == 1
    assert metric(text, "cidbridge_emit_seconds_count") >= 3
    assert metric(text, "cidbridge_clients") == 1
    assert metric(text, "cidbridge_line_up", line="front-desk") == 1

    device.unplug()
    status, health = wait_until(
        lambda: (r := daemon.get("/healthz"))[0] == 503 and r, what="503 on line down"
    )
    assert health["status"] == "degraded"
    assert health["lines"]["front-desk"]["state"] == "down"
    assert metric(scrape(daemon.url), "cidbridge_line_up", line="front-desk") == 0

    device.plug()
    wait_until(lambda: daemon.get("/healthz")[0] == 200, timeout=30, what="line back up")
    assert metric(scrape(daemon.url), "cidbridge_line_reconnects_total", line="front-desk") == 1


def test_reached_no_client_is_logged_once_per_quiet_period_not_per_event(start_daemon):
    token = "quiet-log-token-0123"
    daemon = start_daemon([], server={"token": token})
    for n in range(4):
        status, _ = daemon.request(
            "POST", "/api/cti/incoming-call", {"number": f"0101234000{n}", "line": "pbx"}, token=token
        )
        assert status == 200
    wait_until(lambda: len(daemon.get("/api/events?after=0", token=token)[1]) >= 4, what="the calls logged")
    daemon.stop()
    lines = [line for line in daemon.stderr_lines if "reached no client" in line]
    assert len(lines) == 1, lines  # the first event nobody saw; the rest at debug
