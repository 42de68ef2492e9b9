"""History search on a large call log: the panel's searches, timed on 1,000,000 calls.

    .venv/bin/python bench/history.py               # 1,000,000 calls (about a minute to build)
    .venv/bin/python bench/history.py --calls 100000 --keep /tmp/history.sqlite

Builds a call log with the daemon's own schema (``CallLog`` opens and migrates it),
filled in bulk: ``--calls`` calls over 90 days from 100,000 callers (half the calls
from a few regulars, Zipf-like), Korean 2-3 letter names for half the callers and
Latin network names for some, 6 % withheld numbers, outcomes answered / missed /
unknown.  Then it times, best of 5 runs each:

* ``CallLog.calls`` (what ``/api/calls?q=`` and ``cidbridge calls`` run) for number
  fragments (4 digits, 7 digits, a full number, none matching), name fragments (two
  and three Korean letters, a Latin fragment, none matching), with a date range,
  and a page deep in the results;
* the same fragment searches done the way the log did before (``instr`` over every
  call, newest first: what SQLite does without the caller tables), and with an FTS5
  trigram index over the calls' digits and names, side by side;
* a caller card's history and the missed-call list;
* the cost the caller tables add to committing one event (``CallLog.append``).

It prints, and asserts nothing: the figures go to the README and bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machine import machine

from cidbridge.sim.callers import korean_number
from cidbridge.store import CallLog, CallQuery
from cidbridge.store.callers import history, missed

DAYS = 90
SURNAMES = "김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민"
GIVEN = "민지서준예은도윤하은지호수아시우서연주원지우건우채원현우유나은서가온"
LATIN = ["KIM MINJI", "LEE JUNHO", "PARK SEOYEON", "CHOI WOOJIN", "HANBIT CLINIC", "DAEHAN LOGISTICS"]


def build(path: Path, calls: int, rng: random.Random) -> None:
    with CallLog(path, synchronous="OFF"):
        pass  # create and migrate with the daemon's own schema
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    numbers = [korean_number(rng) for _ in range(100_000)]
    names = {}
    for number in numbers:
        roll = rng.random()
        if roll < 0.5:
            names[number] = rng.choice(SURNAMES) + "".join(
                rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))
            )
        elif roll < 0.6:
            names[number] = rng.choice(LATIN)
    start = time.time() - DAYS * 86_400
    step = DAYS * 86_400 / calls
    events, rows, callers, caller_names = [], [], set(), set()
    db.execute("BEGIN")
    for i in range(calls):
        when = start + i * step
        iso = datetime.fromtimestamp(when).astimezone().isoformat(timespec="milliseconds")
        if rng.random() < 0.06:
            number = None
        elif rng.random() < 0.5:
            number = numbers[min(int(rng.paretovariate(0.7)) - 1, len(numbers) - 1)]
        else:
            number = rng.choice(numbers)
        e164 = "+82" + number[1:] if number else None
        name = names.get(number) if number else None
        outcome = rng.choice(("answered", "answered", "missed", "unknown"))
        first, last = 2 * i + 1, 2 * i + 2
        events += [
            (first, iso, when, "call", f"c{i}", "desk", "{}"),
            (last, iso, when, "end", f"c{i}", "desk", "{}"),
        ]
        rows.append(
            (f"c{i}", "desk", iso, iso, number, number, e164, name, name, None if number else "private",
             number, 2, outcome, first, last, e164, when)
        )  # fmt: skip
        if number:
            callers.add((e164, number))
            if name:
                caller_names.add((e164, name))
        if len(rows) == 50_000 or i == calls - 1:
            db.executemany(
                "INSERT INTO events (id, time, unix, type, call_id, line, payload) VALUES (?,?,?,?,?,?,?)",
                events,
            )
            db.executemany(
                "INSERT INTO calls (call_id, line, started, ended, number, digits, e164, name, network_name,"
                " number_absence, display, rings, outcome, first_event, last_event, caller_key, started_unix)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            events, rows = [], []
    db.executemany("INSERT OR IGNORE INTO callers (key, digits) VALUES (?, ?)", callers)
    db.executemany("INSERT OR IGNORE INTO caller_names (key, name) VALUES (?, ?)", caller_names)
    db.execute("COMMIT")
    db.close()


def best(fn, runs: int = 5) -> tuple[float, object]:
    result, times = None, []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000, result


def naive(db: sqlite3.Connection, fragment: str, digits: bool) -> list:
    column = "digits" if digits else "lower(coalesce(name, ''))"
    return db.execute(
        f"SELECT call_id FROM calls NOT INDEXED WHERE instr({column}, ?) > 0"
        " ORDER BY first_event DESC LIMIT 50",
        (fragment.lower(),),
    ).fetchall()


def trigram(db: sqlite3.Connection, fragment: str) -> list | None:
    if len(fragment) < 3:
        return None  # a trigram index cannot serve it
    return db.execute(
        "SELECT call_id FROM calls WHERE rowid IN (SELECT rowid FROM calls_fts WHERE calls_fts MATCH ?)"
        " ORDER BY first_event DESC LIMIT 50",
        ('"' + fragment.replace('"', '""') + '"',),
    ).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the log here instead of a temporary file")
    args = parser.parse_args()
    print(f"machine: {machine(extra=f'SQLite {sqlite3.sqlite_version}')}")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "history.sqlite"
        if not path.exists():
            started = time.perf_counter()
            build(path, args.calls, random.Random(42))
            took, size = time.perf_counter() - started, path.stat().st_size / 1e6
            print(f"built {args.calls:,} calls in {took:.0f} s ({size:.0f} MB)")
        store = CallLog(path).open()
        db = store.db
        count = db.execute("SELECT count(*), (SELECT count(*) FROM callers) FROM calls").fetchone()
        print(f"log: {count[0]:,} calls from {count[1]:,} callers\n")
        regular = db.execute(
            "SELECT caller_key, number FROM calls WHERE caller_key IS NOT NULL GROUP BY caller_key"
            " ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        korean2 = db.execute("SELECT name FROM caller_names WHERE length(name) = 3 LIMIT 1").fetchone()[0][1:]
        korean3 = db.execute(
            "SELECT name FROM caller_names WHERE length(name) = 3 LIMIT 1 OFFSET 7"
        ).fetchone()[0]
        month_ago = time.time() - 30 * 86_400
        that_week = CallQuery(text="5678", since=month_ago, until=month_ago + 7 * 86_400)
        that_week_all = CallQuery(since=that_week.since, until=that_week.until)
        searches = [
            ("number, 4 digits", CallQuery(text="5678"), "5678", True),
            ("number, 7 digits", CallQuery(text="1234567"), "1234567", True),
            ("number, a full one", CallQuery(text=regular[1]), regular[1], True),
            ("number, none matching", CallQuery(text="99999999999"), "99999999999", True),
            (f"name, 2 Korean letters ({korean2})", CallQuery(text=korean2), korean2, False),
            (f"name, 3 Korean letters ({korean3})", CallQuery(text=korean3), korean3, False),
            ("name, Latin (minji)", CallQuery(text="minji"), "minji", False),
            ("name, none matching", CallQuery(text="zzyzx"), "zzyzx", False),
            ("4 digits, 7 days from a month ago", that_week, None, True),
            ("no fragment, 7 days from a month ago", that_week_all, None, True),
            ("no filter, newest 50", CallQuery(), None, True),
        ]  # fmt: skip
        print("building an FTS5 trigram index over the calls' digits and names, for comparison…")
        started = time.perf_counter()
        db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS calls_fts USING fts5(digits, name, content='calls',"
            " content_rowid='rowid', tokenize='trigram')"
        )
        db.execute("INSERT INTO calls_fts(calls_fts) VALUES ('rebuild')")
        fts_mb = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'calls_fts%'").fetchone()[0] or 0
        print(f"  built in {time.perf_counter() - started:.0f} s, {fts_mb / 1e6:.0f} MB\n")

        print(f"{'search (the 50 newest)':40} {'cidbridge':>14} {'scan all':>14} {'trigram':>14}")
        print(f"{'':40} {'ms  found':>14} {'ms  found':>14} {'ms  found':>14}")
        for label, query, fragment, digits in searches:
            ms, rows = best(lambda query=query: store.calls(query))
            scan = tri = "-"
            if fragment is not None:
                scan_ms, scan_rows = best(lambda f=fragment, d=digits: naive(db, f, d), runs=3)
                scan = f"{scan_ms:.1f} {len(scan_rows):>4}"
                tri_ms, tri_rows = best(lambda f=fragment: trigram(db, f), runs=3)
                tri = "n/a (< 3)" if tri_rows is None else f"{tri_ms:.1f} {len(tri_rows):>4}"
            print(f"{label:40} {f'{ms:.1f} {len(rows):>4}':>14} {scan:>14} {tri:>14}")
        # A page deep in a common fragment's results.
        cursor, pages = None, 0
        while pages < 20 and (page := store.calls(CallQuery(text="010", limit=50, before=cursor))):
            cursor, pages = page[-1]["first_event"], pages + 1
        ms, _ = best(lambda: store.calls(CallQuery(text="010", limit=50, before=cursor)))
        print(f"{f'3 digits (010), page {pages + 1}':40} {ms:>9.1f}")

        ms, card = best(lambda: history(db, regular[0], now=time.time()))
        print(f"\ncaller card of the most frequent caller ({card['total']:,} calls): {ms:.1f} ms")
        for include in (False, True):
            ms, rows = best(
                lambda include=include: missed(db, since=time.time() - 7 * 86_400, include_unknown=include)
            )
            label = "missed and unknown" if include else "missed"
            print(f"missed-call list, 7 days, {label} ({len(rows):,} callers): {ms:.1f} ms")

        db.execute("DROP TABLE calls_fts")
        times = []
        for n in range(2000):
            event = {
                "v": 1, "type": "call" if n % 2 == 0 else "end", "call_id": f"bench-{n // 2}", "line": "desk",
                "time": datetime.now().astimezone().isoformat(), "number": "01012345678",
                "e164": "+821012345678", "name": "김민지", "network_name": "KIM MINJI",
            }  # fmt: skip
            started = time.perf_counter()
            store.append(event)
            times.append(time.perf_counter() - started)
        times.sort()
        print(f"\nCallLog.append (synchronous=normal), median over 2,000 events: {times[1000] * 1e6:.0f} µs")
        store.close()


if __name__ == "__main__":
    main()
