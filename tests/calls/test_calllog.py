"""The call log: migrations, queries, paging, retention, the CSV export, time specs."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from cidbridge.store import CallLog, CallQuery, StoreError
from cidbridge.store.calllog import MIGRATIONS
from cidbridge.store.export import calls_csv, safe_cell
from cidbridge.store.retention import prune_expired
from cidbridge.store.timespec import TimeSpecError, parse_time

KST = timezone(timedelta(hours=9))
BASE = datetime(2025, 11, 26, 9, 0, tzinfo=KST)


def event(kind, call_id, *, minutes=0.0, line="desk", **fields):
    time = (BASE + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
    return {"v": 1, "type": kind, "call_id": call_id, "line": line, "time": time, **fields}


def fill(store, calls):
    """``calls``: (call_id, minutes, line, number) → a call and its end, in that order."""
    for call_id, minutes, line, number in calls:
        store.append(event("call", call_id, minutes=minutes, line=line, number=number, display=number))
        store.append(event("end", call_id, minutes=minutes + 0.5, line=line, outcome="missed"))


def test_a_version_1_log_is_migrated_and_keeps_its_calls(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version=1;")
    db.execute(
        "INSERT INTO events (time, type, call_id, line, payload) VALUES (?, 'call', 'desk-1', 'desk', ?)",
        ("2025-11-26T09:00:00.000+09:00", '{"type":"call","call_id":"desk-1","number":"010-1234-5678"}'),
    )
    db.execute(
        "INSERT INTO calls (call_id, line, started, number, name, first_event, last_event) "
        "VALUES ('desk-1', 'desk', '2025-11-26T09:00:00.000+09:00', '010-1234-5678', 'KIM', 1, 1)"
    )
    db.commit()
    db.close()
    with CallLog(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        (row,) = store.calls(number="12345678")
        assert row["call_id"] == "desk-1" and row["network_name"] == "KIM"
        since = BASE.timestamp() - 1
        assert store.calls(since=since) and not store.calls(since=since + 2)
        assert store.events_after(0)[0]["number"] == "010-1234-5678"
        new_id = store.append(event("end", "desk-1", minutes=1, outcome="missed"))
        assert new_id == 2


def test_a_log_from_a_newer_cidbridge_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer cidbridge"):
        CallLog(path).open()


def test_open_without_create_refuses_a_missing_file(tmp_path):
    with pytest.raises(StoreError, match="no call log"):
        CallLog(tmp_path / "absent.sqlite").open(create=False)
    assert not (tmp_path / "absent.sqlite").exists()


def test_calls_filters_and_pages(tmp_path):
    with CallLog(tmp_path / "calls.sqlite") as store:
        fill(
            store,
            [
                ("a", 0, "desk", "01011112222"),
                ("b", 10, "back", "0212345678"),
                ("c", 20, "desk", "010-3333-4444"),
                ("d", 30, "desk", None),
                ("e", 40, "back", "01011112222"),
            ],
        )
        ids = lambda rows: [row["call_id"] for row in rows]  # noqa: E731
        assert ids(store.calls()) == ["e", "d", "c", "b", "a"]
        assert ids(store.calls(line="desk")) == ["d", "c", "a"]
        assert ids(store.calls(number="1111-2222")) == ["e", "a"]
        assert ids(store.calls(number="33334444")) == ["c"]
        t = BASE.timestamp()
        assert ids(store.calls(since=t + 10 * 60, until=t + 30 * 60)) == ["c", "b"]
        first = store.calls(limit=2)
        assert ids(first) == ["e", "d"]
        second = store.calls(CallQuery(limit=2, before=first[-1]["first_event"]))
        assert ids(second) == ["c", "b"]
        # A call arriving between pages does not shift the next page.
        fill(store, [("f", 50, "desk", "5550000")])
        third = store.calls(CallQuery(limit=2, before=second[-1]["first_event"]))
        assert ids(third) == ["a"]
        row = store.calls(limit=1)[0]
        assert row["outcome"] == "missed" and row["ended"] is not None and row["waiting"] is False


def test_a_later_event_fills_in_and_never_erases(tmp_path):
    with CallLog(tmp_path / "calls.sqlite") as store:
        store.append(event("ring", "x", ring_count=1))
        store.append(event("call", "x", number_absence="unavailable", ring_count=2))
        store.append(event("update", "x", number="01012345678", name="KIM", ring_count=2))
        store.append(
            event("end", "x", number="01012345678", ring_count=3, outcome="answered", duration_s=61.5)
        )
        (row,) = store.calls()
        assert row["number"] == "01012345678" and row["number_absence"] is None and row["name"] == "KIM"
        assert row["rings"] == 3 and row["outcome"] == "answered" and row["duration_s"] == 61.5


def test_retention_prunes_old_calls_and_events_and_never_reuses_ids(tmp_path):
    with CallLog(tmp_path / "calls.sqlite") as store:
        fill(store, [("old", 0, "desk", "0211112222"), ("new", 60 * 24 * 100, "desk", "0233334444")])
        last = store.last_id()
        now = (BASE + timedelta(days=100, hours=1)).timestamp()
        removed = asyncio.run(prune_expired(store, 90, now=now))
        assert removed == 3  # two events and one call
        assert [row["call_id"] for row in store.calls()] == ["new"]
        assert [e["call_id"] for e in store.events_after(0)] == ["new", "new"]
        assert store.append(event("line", None, minutes=60 * 24 * 100)) == last + 1
        assert asyncio.run(prune_expired(store, 90, now=now)) == 0


def test_csv_export_defuses_formulas_but_keeps_numbers():
    assert safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-2+3") == "'-2+3"
    assert safe_cell("+821012345678") == "+821012345678"
    assert safe_cell("KIM MINJI") == "KIM MINJI"
    assert safe_cell(None) == "" and safe_cell(True) == "true"
    text = calls_csv([{"call_id": "a", "number": "010", "name": "=1+1", "rings": 2, "waiting": False}])
    header, row = list(csv.reader(io.StringIO(text)))
    assert header[0] == "call_id" and "first_event" not in header
    assert row[header.index("name")] == "'=1+1" and row[header.index("rings")] == "2"


def test_time_specs():
    now = BASE.timestamp()
    assert parse_time("2h", now=now) == now - 7200
    assert parse_time("7d", now=now) == now - 7 * 86400
    assert parse_time("2025-11-26T09:00+09:00") == now
    assert parse_time("2025-11-26") == datetime(2025, 11, 26).timestamp()
    today = parse_time("today", now=now)
    assert parse_time("yesterday", now=now) == pytest.approx(today - 86400, abs=3600)  # DST-safe
    with pytest.raises(TimeSpecError, match="not a time"):
        parse_time("last tuesday")


def test_the_background_task_prunes_without_being_asked(tmp_path):
    from cidbridge.store.retention import keep_pruned

    async def run(store):
        task = asyncio.create_task(keep_pruned(store, lambda: 1, every=0.01, first_after=0))
        try:
            for _ in range(500):
                if not store.calls():
                    return True
                await asyncio.sleep(0.01)
            return False
        finally:
            task.cancel()

    with CallLog(tmp_path / "calls.sqlite") as store:
        fill(store, [("ancient", -60 * 24 * 365 * 3, "desk", "0211112222")])  # three years ago
        assert store.calls()
        assert asyncio.run(run(store)), "the retention task never pruned the expired call"


def test_own_and_mirrored_events_for_the_cluster(tmp_path):
    """What server/cluster.py asks the log: this node's own events, and how far each peer is mirrored."""
    line = {"v": 1, "type": "line", "call_id": None, "line": "desk", "state": "up", "reason": None,
            "time": "2026-11-26T10:00:00.000+09:00"}  # fmt: skip
    with CallLog(tmp_path / "calls.sqlite") as store:
        assert (store.last_own_id(), store.mirrored_heads(), store.own_events_after(0, 10)) == (0, {}, [])
        own = [store.append(dict(line)) for _ in range(3)]
        store.append({**line, "origin": {"node": "b", "id": 7}})
        store.append({**line, "origin": {"node": "b", "id": 9}})
        store.append({**line, "origin": {"node": "c", "id": 2}})
        own.append(store.append(dict(line)))
        assert store.last_own_id() == own[-1]
        assert store.last_own_id(before=own[-1]) == own[2]
        assert store.mirrored_heads() == {"b": 9, "c": 2}
        assert [e["id"] for e in store.own_events_after(own[0], 2)] == [own[2], own[3]]
        assert all("origin" not in e for e in store.own_events_after(0, 10))
