"""Issue 11, items 6-11: forged proxy headers, malformed queries, bodies without a type,
hostile caller names, formula cells, and an ingest that names a thousand lines.

Against a real ``cidbridge serve`` on loopback, with a simulated modem on a pty
where a call comes from the telephone line.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client import generate_latest

from cidbridge.core.frames import CidFrame, HookFrame
from cidbridge.hub import Hub
from cidbridge.lines.pushed import IDLE_FORGET, posted_calls
from cidbridge.server.metrics import Metrics
from cidbridge.sim.pty import PtyDevice
from cidbridge.store import CallLog
from tests.broadcast.support import INGEST, http, post_call
from tests.security.support import (
    CLEAN_NAME,
    HOSTILE_NAME,
    ConnectionRefused,
    cid_call,
    log_lines,
    socketio_connect,
    wait_log,
)
from tests.support.daemon import DaemonProcess, write_config
from tests.support.sse import SseReader

TOKEN = "hostile-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# -- 6: X-Forwarded-For ----------------------------------------------------------------


def _connect_forged(url: str, forged: str, token: str = TOKEN) -> str:
    """A Socket.IO connect claiming to come from ``forged``: "ok" or the refusal."""
    try:
        socketio_connect(url, {"token": token}, headers={"X-Forwarded-For": forged}).close()
    except ConnectionRefused as refused:
        return str(refused)
    return "ok"


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN, "connect_burst": 3, "connect_rate": 0.01})
    answers = [_connect_forged(daemon.url, f"203.0.113.{n}") for n in range(6)]
    # Every forged address is 127.0.0.1 to the limiter: the loop is refused after 3.
    assert answers[:3] == ["ok"] * 3
    assert answers[3:] == ["too many connection attempts; retry later"] * 3
    assert _connect_forged(daemon.url, "FORGED ADMIN LOGIN OK") != "ok"
    wait_log(daemon, "refused a connection from 127.0.0.1")
    assert not log_lines(daemon, "203.0.113") and not log_lines(daemon, "FORGED")


def test_a_trusted_proxy_gives_the_address_and_only_a_parsed_one_is_logged(start_daemon):
    daemon = start_daemon(
        [],
        server={"token": TOKEN, "trusted_proxies": ["127.0.0.1"], "connect_burst": 1, "connect_rate": 0.01},
    )
    assert _connect_forged(daemon.url, "203.0.113.7") == "ok"
    assert _connect_forged(daemon.url, "203.0.113.8") == "ok"  # another browser behind the proxy
    assert _connect_forged(daemon.url, "203.0.113.7") != "ok"
    wait_log(daemon, "refused a connection from 203.0.113.7")
    assert _connect_forged(daemon.url, "FORGED ADMIN LOGIN OK") == "ok"
    assert _connect_forged(daemon.url, "FORGED ADMIN LOGIN OK", token="wrong-token-0123456789") != "ok"
    wait_log(daemon, "from unknown")
    assert not log_lines(daemon, "FORGED")


# -- 7 and 8: malformed queries and bodies ---------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/events?after=99999999999999999999",
        "/api/calls?before=99999999999999999999",
        "/api/events?after=%C2%B2",
        "/api/events?limit=%D9%A3",
        "/api/calls?since=99999999999999999999999d",
        "/api/calls?until=0001-01-01",
        "/api/calls.csv?limit=-1",
        "/api/stream?after=%C2%B2",
    ],
)
def test_malformed_query_values_are_a_400_naming_the_parameter(start_daemon_once, path):
    daemon = start_daemon_once
    status, _, body = http(daemon.url, path, headers=AUTH)
    assert status == 400, body
    name = path.split("?", 1)[1].split("=", 1)[0]
    assert json.loads(body)["error"].startswith(name)
    assert not log_lines(daemon, "Traceback")


@pytest.fixture(scope="module")
def start_daemon_once(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("queries")
    daemon = DaemonProcess(
        write_config(tmp / "c.toml", lines=[], db=tmp / "calls.sqlite", server={"token": TOKEN})
    )
    daemon.wait_ready()
    yield daemon
    daemon.stop()


def test_a_garbage_last_event_id_is_ignored(start_daemon_once):
    request_headers = {**AUTH, "Last-Event-ID": "²"}
    stream = SseReader(_request(start_daemon_once.url, "/api/stream", request_headers))
    try:
        assert stream.opened.is_set()
    finally:
        stream.close()


def _request(url: str, path: str, headers: dict[str, str]) -> urllib.request.Request:
    return urllib.request.Request(url.rstrip("/") + path, headers=headers)


def test_deep_json_and_bodies_without_a_json_type_are_refused(start_daemon_once):
    url = start_daemon_once.url
    status, answer = post_call(url, b"[" * 5000, TOKEN)
    assert status == 400 and "nested too deeply" in answer["error"]
    status, answer = post_call(url, b"{" * 100_000, TOKEN)
    assert status == 413
    body = b'{"number": "0212349999"}'
    for headers in ({"Content-Type": ""}, {}):
        status, _, answer = http(url, INGEST, method="POST", body=body, headers={**AUTH, **headers})
        assert status == 415, answer
    # The forgery of the issue: ?token= and a foreign Origin, no Content-Type.
    status, _, _ = http(
        url, f"{INGEST}?token={TOKEN}", method="POST", body=body, headers={"Origin": "http://evil.example"}
    )
    assert status in (401, 415)
    calls = json.loads(http(url, "/api/calls", headers=AUTH)[2])["calls"]
    assert not any(c["number"] == "0212349999" for c in calls)
    assert not log_lines(start_daemon_once, "Traceback")


# -- 9: caller names on terminals ------------------------------------------------------


def test_hostile_names_reach_no_terminal_no_log_and_no_client_raw(start_daemon, tmp_path):
    box = PtyDevice(link=tmp_path / "ttyCID-box")
    try:
        line = {"name": "desk", "port": box.path, "device": "box", "format": "modem-text"}
        daemon = start_daemon([line], server={"token": TOKEN}, calls={"ring_gap": 1.0})
        stream = SseReader(_request(daemon.url, "/api/stream", AUTH))
        box.write(cid_call("01012345678", HOSTILE_NAME))
        event = stream.wait_event(lambda e: e["type"] == "call", timeout=15)
        assert event["name"] == CLEAN_NAME
        assert post_call(daemon.url, {"number": "0212345678", "name": HOSTILE_NAME[:64]}, TOKEN)[0] == 200
        stream.wait_event(lambda e: e.get("number") == "0212345678", timeout=15)
        stream.close()
        # Nothing with a control character anywhere: events, calls, the log file.
        for path in ("/api/events", "/api/calls"):
            texts = list(_strings(json.loads(http(daemon.url, path, headers=AUTH)[2])))
            assert CLEAN_NAME in texts
            assert not [t for t in texts if CONTROL.search(t)]
        db = tmp_path / "calls.sqlite"
        rows = sqlite3.connect(db).execute("SELECT name FROM calls").fetchall()
        assert rows and all(name is None or not CONTROL.search(name) for (name,) in rows)
        daemon.stop()
        assert not any(CONTROL.search(line) for line in daemon.stderr_lines)

        # `cidbridge calls` prints the names as text: no escape, no link, no crash on "[/]".
        env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
        table = subprocess.run(
            [sys.executable, "-m", "cidbridge", "calls", "--db", str(db)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert table.returncode == 0, table.stderr
        assert "[link=http://evil.example]x[/link]" in table.stdout and "[/]" in table.stdout
        assert not CONTROL.search(table.stdout.replace("\n", ""))
        listing = subprocess.run(
            [sys.executable, "-m", "cidbridge", "calls", "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not CONTROL.search(listing.stdout.replace("\n", ""))
    finally:
        box.close()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_decode_and_monitor_show_control_characters_as_escapes(tmp_path):
    capture = tmp_path / "hostile.bin"
    capture.write_bytes(cid_call("01012345678", HOSTILE_NAME))
    decoded = subprocess.run(
        [sys.executable, "-m", "cidbridge", "decode", "--format", "modem-text", str(capture)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decoded.returncode == 0, decoded.stderr
    assert not CONTROL.search(decoded.stdout.replace("\n", ""))
    frames = [json.loads(line) for line in decoded.stdout.splitlines()]
    # The JSON still decodes to exactly what the device sent: nothing hidden from a diagnosis.
    assert [f["name"] for f in frames if f["kind"] == "cid"] == [HOSTILE_NAME]
    assert "\\u001b]0;PWNED-TITLE" in decoded.stdout and "\\u202eKIM" in decoded.stdout

    box = PtyDevice(link=tmp_path / "ttyCID-monitor")
    monitor = subprocess.Popen(
        [sys.executable, "-m", "cidbridge", "monitor", box.path, "--format", "modem-text"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "listening on" not in (monitor.stdout.readline() or ""):
            pass
        box.write(cid_call("01012345678", HOSTILE_NAME))
        out = ""
        while time.monotonic() < deadline and "PWNED" not in out:
            out += monitor.stdout.readline()
        monitor.send_signal(signal.SIGINT)
        rest, _ = monitor.communicate(timeout=20)
    finally:
        if monitor.poll() is None:
            monitor.kill()
        box.close()
    shown = out + rest
    assert "PWNED-TITLE" in shown
    assert not CONTROL.search(shown.replace("\n", ""))


# -- 10: formula cells whatever the separator ------------------------------------------

FORMULAS = ["A;=1+1;", '=HYPERLINK("http://evil.example")', "B,@SUM(1)", "C|-2+3", 'D; "+cmd', " =x"]
TRIGGERS = ("=", "+", "-", "@")
PLAIN_NUMBER = re.compile(r"\+?[0-9][0-9 ()\-]*")


def _formula_cells(text: str) -> list[str]:
    """Every cell some spreadsheet would read as a formula, splitting on any usual separator."""
    found = []
    for delimiter in (",", ";", "\t", "|"):
        for row in csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter):
            for cell in row:
                start = cell.lstrip(' "')
                if start.startswith(TRIGGERS) and not PLAIN_NUMBER.fullmatch(cell.strip()):
                    found.append(f"{delimiter!r}: {cell!r}")
    return found


def test_csv_exports_hold_no_formula_whatever_the_separator(start_daemon_once, tmp_path):
    url = start_daemon_once.url
    for n, name in enumerate(FORMULAS):
        status, answer = post_call(url, {"number": f"02123400{n:02d}", "name": name, "line": "csv"}, TOKEN)
        assert status == 200, answer
    post_call(url, {"number": "+442071234567", "name": "London", "line": "csv"}, TOKEN)
    status, _, body = http(url, "/api/calls.csv?line=csv", headers=AUTH)
    assert status == 200
    text = body.decode("utf-8")
    assert "+442071234567" in text  # a plain number stays a number
    assert _formula_cells(text) == []
    # The command line's export is the same code.
    cli = subprocess.run(
        [sys.executable, "-m", "cidbridge", "calls", "--db", str(_db_of(start_daemon_once)), "--csv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and _formula_cells(cli.stdout) == []


def _db_of(daemon) -> str:
    match = re.search(r'(?m)^path = "(.*)"$', daemon.config.read_text())
    assert match is not None
    return match.group(1)


# -- 11: the ingest's line names -------------------------------------------------------


def _post(url: str, call: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Post at the ingest's sustained rate (20 a second per token), not faster."""
    time.sleep(0.06)
    return post_call(url, call, TOKEN)


def _series(url: str) -> set[str]:
    text = http(url, "/metrics", headers=AUTH)[2].decode()
    return set(re.findall(r'cidbridge_calls_total\{line="([^"]+)"\}', text))


def test_ingest_line_names_are_bounded_and_their_series_freed(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    for n in range(40):  # each call answered and hung up at once: the line is idle again
        line = f"pbx-{n:02d}"
        for event in ("ringing", "answered", "ended"):
            assert _post(daemon.url, {"number": "0212345678", "line": line, "event": event})[0] == 200
    series = _series(daemon.url)
    assert len(series) <= 32, sorted(series)
    assert "pbx-39" in series and "pbx-00" not in series  # the least recently used went first
    # 32 lines with a call ringing: a 33rd name waits for one of them to end.
    for n in range(32):
        assert _post(daemon.url, {"number": "0212345678", "line": f"busy-{n:02d}"})[0] == 200
    status, answer = _post(daemon.url, {"number": "0212345678", "line": "one-too-many"})
    assert status == 429 and "in progress" in answer["error"]
    assert _post(daemon.url, {"number": "0212345678", "line": "busy-00"})[0] == 200


def test_an_idle_ingest_line_is_forgotten_with_its_series(tmp_path):
    """After IDLE_FORGET seconds without a call, a line's tracker and its metric series go (a fake clock)."""

    async def scenario() -> tuple[set[str], set[str]]:
        store = CallLog(tmp_path / "calls.sqlite").open()
        hub = Hub(store, region="KR")
        metrics = Metrics(lambda: {"lines": [], "clients": 0, "fanout": None, "cluster": None})
        hub.sinks.append(metrics)
        now = [1000.0]
        posted = posted_calls(
            hub,
            ring_gap=1.0,
            ringless_timeout=45.0,
            taken=set,
            on_forget=metrics.forget_line,
            clock=lambda: now[0],
        )
        try:
            for frame in (
                CidFrame("api", number="0212345678"),
                HookFrame("api", "off"),
                HookFrame("api", "on"),
            ):
                await posted.receive(frame, "pbx")
            before = set(posted.calls.trackers), _series_of(metrics)
            now[0] += IDLE_FORGET + 1
            await posted.tick()  # what its timer task does at the deadline
            return before[0] | before[1], set(posted.calls.trackers) | _series_of(metrics)
        finally:
            store.close()

    before, after = asyncio.run(scenario())
    assert before == {"pbx"}
    assert after == set()


def _series_of(metrics) -> set[str]:

    return set(
        re.findall(r'cidbridge_calls_total\{line="([^"]+)"\}', generate_latest(metrics.registry).decode())
    )
