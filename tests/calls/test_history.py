"""Call history over HTTP (/api/calls, /api/calls.csv, /api/events) and `cidbridge calls`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta

import pytest

from cidbridge.store import CallLog

NOW = datetime.now().astimezone().replace(microsecond=0)

# (call_id, hours ago, line, number, name, outcome)
CALLS = [
    ("desk-1", 50, "desk", "01011112222", "KIM MINJI", "answered"),
    ("back-1", 30, "back", "0212345678", None, "missed"),
    ("desk-2", 5, "desk", None, None, "unknown"),
    ("desk-3", 2, "desk", "01033334444", '=HYPERLINK("x")', "missed"),
    ("back-2", 1, "back", "01011112222", "KIM MINJI", "answered"),
]


@pytest.fixture
def history(tmp_path):
    """A call log holding :data:`CALLS`, each a ``call`` and an ``end`` event."""
    with CallLog(tmp_path / "calls.sqlite", synchronous="OFF") as store:
        for call_id, hours, line, number, name, outcome in CALLS:
            when = NOW - timedelta(hours=hours)
            common = {"v": 1, "call_id": call_id, "line": line, "number": number, "name": name}
            common["number_absence"] = None if number else "unavailable"
            store.append({**common, "type": "call", "time": when.isoformat()})
            ended = (when + timedelta(seconds=40)).isoformat()
            duration = 30.0 if outcome == "answered" else None
            store.append({**common, "type": "end", "time": ended, "outcome": outcome, "duration_s": duration})
    return tmp_path / "calls.sqlite"


def call_ids(rows):
    return [row["call_id"] for row in rows]


def test_api_calls_pages_and_filters(history, start_daemon):
    daemon = start_daemon([])
    status, page = daemon.get("/api/calls?limit=2")
    assert status == 200 and call_ids(page["calls"]) == ["back-2", "desk-3"]
    status, page = daemon.get(f"/api/calls?limit=2&before={page['next_before']}")
    assert call_ids(page["calls"]) == ["desk-2", "back-1"]
    status, page = daemon.get(f"/api/calls?limit=2&before={page['next_before']}")
    assert call_ids(page["calls"]) == ["desk-1"] and page["next_before"] is None

    assert call_ids(daemon.get("/api/calls?line=back")[1]["calls"]) == ["back-2", "back-1"]
    assert call_ids(daemon.get("/api/calls?number=1111-2222")[1]["calls"]) == ["back-2", "desk-1"]
    assert call_ids(daemon.get("/api/calls?since=24h")[1]["calls"]) == ["back-2", "desk-3", "desk-2"]
    assert call_ids(daemon.get("/api/calls?since=40h&until=3h")[1]["calls"]) == ["desk-2", "back-1"]
    (row,) = daemon.get("/api/calls?line=desk&number=0101111")[1]["calls"]
    assert row["outcome"] == "answered" and row["duration_s"] == 30.0 and row["ended"]

    status, body = daemon.get("/api/calls?since=last+week")
    assert status == 400 and "since" in body["error"]
    status, body = daemon.get("/api/calls?limit=-1")
    assert status == 400 and "limit" in body["error"]


def test_api_calls_csv_is_a_spreadsheet_file(history, start_daemon):
    daemon = start_daemon([])
    with urllib.request.urlopen(daemon.url + "api/calls.csv?line=desk", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in response.headers["Content-Disposition"]
        raw = response.read()
    assert raw.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    header, *rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row[header.index("call_id")] for row in rows] == ["desk-3", "desk-2", "desk-1"]
    assert rows[0][header.index("name")] == '\'=HYPERLINK("x")'  # defused
    assert rows[2][header.index("name")] == "KIM MINJI"


def test_api_events_after_id(history, start_daemon):
    daemon = start_daemon([])
    status, events = daemon.get("/api/events?after=6")
    assert status == 200 and [e["id"] for e in events] == [7, 8, 9, 10]
    assert [e["id"] for e in daemon.get("/api/events?after=6&limit=2")[1]] == [7, 8]
    assert events[0]["call_id"] == "desk-3" and events[0]["type"] == "call"
    assert daemon.get("/api/events?after=abc")[0] == 400


def test_api_needs_the_token_when_one_is_set(history, start_daemon):
    daemon = start_daemon([], server={"token": "a-long-enough-secret"})
    assert daemon.get("/api/calls")[0] == 401
    assert daemon.get("/api/calls.csv")[0] == 401
    assert daemon.get("/api/events")[0] == 401
    assert daemon.get("/api/calls", token="a-long-enough-secret")[0] == 200


# -- the CLI -------------------------------------------------------------------------------


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cidbridge", "calls", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_json_csv_and_filters(history):
    result = cli("--db", str(history), "--json")
    assert result.returncode == 0, result.stderr
    assert call_ids(json.loads(result.stdout)) == ["back-2", "desk-3", "desk-2", "back-1", "desk-1"]
    result = cli("--db", str(history), "--json", "--line", "desk", "--since", "24h")
    assert call_ids(json.loads(result.stdout)) == ["desk-3", "desk-2"]
    result = cli("--db", str(history), "--csv", "--number", "01011112222", "--limit", "1")
    header, row = list(csv.reader(io.StringIO(result.stdout)))
    assert row[header.index("call_id")] == "back-2"


def test_cli_table(history, tmp_path):
    config = tmp_path / "cidbridge.toml"
    config.write_text(f'[store]\npath = "{history}"\n')
    result = cli("--config", str(config), "--line", "desk")
    assert result.returncode == 0, result.stderr
    assert "010-3333-4444" in result.stdout or "01033334444" in result.stdout
    assert "No caller ID" in result.stdout and "missed" in result.stdout
    assert "back-" not in result.stdout and "0212345678" not in result.stdout


def test_cli_errors_are_one_line(tmp_path, history):
    missing = cli("--db", str(tmp_path / "nope.sqlite"))
    assert missing.returncode == 3 and missing.stderr.startswith("cidbridge: error: there is no call log")
    bad_time = cli("--db", str(history), "--since", "someday")
    assert bad_time.returncode == 2 and "not a time" in bad_time.stderr
    both = cli("--db", str(history), "--json", "--csv")
    assert both.returncode == 2
    assert "Traceback" not in missing.stderr + bad_time.stderr + both.stderr
