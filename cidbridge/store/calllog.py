"""The call log: every event, durably, in one SQLite file.  The event ``id`` is born here.

The hub writes each event here *before* broadcasting it (store, then broadcast), so
an id a browser has seen is always in the log, and a browser that reconnects can ask
for everything after the last id it saw.  ``AUTOINCREMENT`` guarantees an id is never
reused, even after old events are pruned.

The file is in WAL mode.  With ``synchronous="normal"`` (the default) a committed
event survives the process being killed at any moment; the write-ahead log reaches
the disk at the next checkpoint, which the daemon runs in a thread after a commit,
at most a second later (:mod:`cidbridge.store.flush`), so a power cut loses at most
the last second.  ``synchronous="full"`` fsyncs every event before it is broadcast (survives
a power cut, costs 0.3-5 ms per event on the event loop).  Writes are small and rare
(a few per call), so they run on the caller's thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from cidbridge.store.search import CallQuery, find_calls

# Each entry migrates the schema from version i to i + 1 (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        time     TEXT NOT NULL,
        type     TEXT NOT NULL,
        call_id  TEXT,
        line     TEXT,
        payload  TEXT NOT NULL
    );
    CREATE INDEX events_call ON events (call_id);
    CREATE INDEX events_time ON events (time);
    CREATE TABLE calls (
        call_id         TEXT PRIMARY KEY,
        line            TEXT NOT NULL,
        started         TEXT NOT NULL,
        ended           TEXT,
        number          TEXT,
        name            TEXT,
        number_absence  TEXT,
        name_absence    TEXT,
        display         TEXT,
        rings           INTEGER NOT NULL DEFAULT 0,
        outcome         TEXT,
        duration_s      REAL,
        first_event     INTEGER NOT NULL,
        last_event      INTEGER NOT NULL
    );
    CREATE INDEX calls_started ON calls (started);
    """,
    # 2: times as Unix seconds (UTC), for ranges and retention whatever the local
    # offset was; the phonebook's view of a caller; digits, for finding a number.
    """
    ALTER TABLE events ADD COLUMN unix REAL;
    UPDATE events SET unix = (julianday(time) - 2440587.5) * 86400.0;
    CREATE INDEX events_unix ON events (unix);
    ALTER TABLE calls ADD COLUMN started_unix REAL;
    ALTER TABLE calls ADD COLUMN digits TEXT;
    ALTER TABLE calls ADD COLUMN e164 TEXT;
    ALTER TABLE calls ADD COLUMN network_name TEXT;
    ALTER TABLE calls ADD COLUMN note TEXT;
    ALTER TABLE calls ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
    UPDATE calls SET started_unix = (julianday(started) - 2440587.5) * 86400.0,
                     digits = replace(replace(replace(replace(number, '-', ''), ' ', ''), '+', ''), '.', ''),
                     network_name = name;
    CREATE INDEX calls_started_unix ON calls (started_unix);
    CREATE INDEX calls_line ON calls (line, first_event);
    CREATE INDEX calls_first_event ON calls (first_event);
    """,
    # 3: the phonebook and the block list (cidbridge/store/directory.py); each call's
    # caller key (numbers.match_key), whether it was blocked and when it was returned;
    # every caller's digits and names, so a fragment search reads those small tables
    # instead of every call (cidbridge/store/search.py).
    """
    CREATE TABLE contacts (
        key      TEXT PRIMARY KEY,
        number   TEXT NOT NULL,
        name     TEXT,
        note     TEXT,
        updated  REAL NOT NULL,
        source   TEXT NOT NULL
    );
    CREATE TABLE phonebook_file (key TEXT PRIMARY KEY, name TEXT, note TEXT) WITHOUT ROWID;
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
    CREATE TABLE blocks (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        kind     TEXT NOT NULL,
        value    TEXT NOT NULL,
        note     TEXT,
        created  REAL NOT NULL,
        UNIQUE (kind, value)
    );
    ALTER TABLE calls ADD COLUMN caller_key TEXT;
    ALTER TABLE calls ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE calls ADD COLUMN returned TEXT;
    ALTER TABLE calls ADD COLUMN returned_how TEXT;
    UPDATE calls SET caller_key = coalesce(e164, digits);
    CREATE INDEX calls_caller ON calls (caller_key, first_event);
    CREATE INDEX calls_caller_time ON calls (caller_key, started_unix);
    CREATE INDEX calls_unreturned ON calls (started_unix)
        WHERE returned IS NULL AND outcome IN ('missed', 'unknown');
    CREATE TABLE callers (key TEXT PRIMARY KEY, digits TEXT) WITHOUT ROWID;
    INSERT OR IGNORE INTO callers (key, digits)
        SELECT caller_key, digits FROM calls WHERE caller_key IS NOT NULL;
    CREATE TABLE caller_names (key TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (key, name)) WITHOUT ROWID;
    INSERT OR IGNORE INTO caller_names (key, name)
        SELECT caller_key, name FROM calls WHERE caller_key IS NOT NULL AND name IS NOT NULL;
    INSERT OR IGNORE INTO caller_names (key, name)
        SELECT caller_key, network_name FROM calls WHERE caller_key IS NOT NULL AND network_name IS NOT NULL;
    """,
    # 4: where each durable output (a webhook) is in the log: the last event id it
    # delivered, so it resumes there after a restart (cidbridge.outputs.webhooks).
    """
    CREATE TABLE cursors (
        name     TEXT PRIMARY KEY,
        last_id  INTEGER NOT NULL,
        updated  REAL NOT NULL
    );
    """,
    # 5: two indexes no query reads (ranges use the Unix-time ones since 2): each was
    # one more page written by every commit, on the way to the browsers.
    """
    DROP INDEX IF EXISTS events_time;
    DROP INDEX IF EXISTS calls_started;
    """,
)

#: What a call row holds, in the order the CLI and the CSV export show it.
CALL_COLUMNS = (
    "call_id",
    "line",
    "started",
    "ended",
    "number",
    "display",
    "e164",
    "name",
    "network_name",
    "note",
    "number_absence",
    "name_absence",
    "rings",
    "outcome",
    "duration_s",
    "waiting",
    "first_event",
    "last_event",
    "caller_key",
    "blocked",
    "returned",
    "returned_how",
)


class StoreError(Exception):
    """The call log cannot be opened or written; the message says why and what to do."""


class CallLog:
    """One SQLite call log.  Use :meth:`open` (or ``with``) before anything else."""

    def __init__(self, path: str | Path, *, synchronous: str = "normal") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        #: Commits not yet known to be on disk (only with ``synchronous="normal"``).
        self.unflushed = False
        #: Called (on the writer's thread) after each commit that left the log unflushed.
        self.on_commit: Callable[[], None] | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------

    def open(self, *, create: bool = True) -> CallLog:
        """Open (and migrate) the log; with ``create=False`` a missing file is an error."""
        if not create and not self.path.is_file():
            raise StoreError(f"there is no call log at {self.path}; check [store] path or pass --db")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            self._migrate(db)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the call log {self.path} ({exc}); check that its folder exists "
                "and is writable by this user, or set [store] path"
            ) from None
        self._db = db
        return self

    def close(self) -> None:
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        if self._db is not None:
            self._db.close()  # the last connection out checkpoints and syncs the log
            self._db = None

    def _committed(self) -> None:
        if self.synchronous != "FULL":
            self.unflushed = True
            if self.on_commit is not None:
                self.on_commit()

    def checkpoint(self) -> None:
        """Move committed events from the write-ahead log into the file, syncing both.

        Safe to call from another thread while the event loop keeps appending (it uses
        its own connection, and a PASSIVE checkpoint never blocks a writer).
        """
        self.unflushed = False
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def __enter__(self) -> CallLog:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the call log is not open")
        return self._db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the call log was written by a newer cidbridge (schema {version}); upgrade cidbridge"
            )
        for number in range(version, len(MIGRATIONS)):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[number]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- writing -----------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> int:
        """Commit one event (without ``id``) and the call it belongs to; return its id."""
        db = self.db
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        try:
            db.execute("BEGIN IMMEDIATE")
            cursor = db.execute(
                "INSERT INTO events (time, unix, type, call_id, line, payload) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event["time"],
                    unix_time(event["time"]),
                    event["type"],
                    event.get("call_id"),
                    event.get("line"),
                    payload,
                ),
            )
            event_id = int(cursor.lastrowid or 0)
            if event.get("call_id") and event["type"] != "line":
                self._upsert_call(db, event_id, event)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(f"cannot write to the call log {self.path} ({exc})") from None
        self._committed()
        return event_id

    @staticmethod
    def _upsert_call(db: sqlite3.Connection, event_id: int, event: dict[str, Any]) -> None:
        ended = event["time"] if event["type"] == "end" else None
        digits = _digits(event.get("number"))
        # The caller's key, as the phonebook keys contacts (numbers.match_key).
        key = event.get("e164") or digits
        db.execute(
            """
            INSERT INTO calls (call_id, line, started, started_unix, ended, number, digits, e164,
                               name, network_name, note, number_absence, name_absence, display,
                               rings, outcome, duration_s, waiting, first_event, last_event,
                               caller_key, blocked)
            VALUES (:call_id, :line, :time, :unix, :ended, :number, :digits, :e164,
                    :name, :network_name, :note, :number_absence, :name_absence, :display,
                    :rings, :outcome, :duration_s, :waiting, :id, :id, :caller_key, :blocked)
            ON CONFLICT (call_id) DO UPDATE SET
                ended = coalesce(excluded.ended, ended),
                number = coalesce(excluded.number, number),
                digits = coalesce(excluded.digits, digits),
                e164 = coalesce(excluded.e164, e164),
                name = coalesce(excluded.name, name),
                network_name = coalesce(excluded.network_name, network_name),
                note = coalesce(excluded.note, note),
                waiting = max(excluded.waiting, waiting),
                number_absence = CASE WHEN coalesce(excluded.number, number) IS NULL
                                      THEN coalesce(excluded.number_absence, number_absence) END,
                name_absence = CASE WHEN coalesce(excluded.name, name) IS NULL
                                    THEN coalesce(excluded.name_absence, name_absence) END,
                display = coalesce(excluded.display, display),
                rings = max(excluded.rings, rings),
                outcome = coalesce(excluded.outcome, outcome),
                duration_s = coalesce(excluded.duration_s, duration_s),
                last_event = excluded.last_event,
                caller_key = coalesce(excluded.caller_key, caller_key),
                blocked = max(excluded.blocked, blocked)
            """,
            {
                "call_id": event["call_id"],
                "line": event.get("line") or "",
                "time": event["time"],
                "unix": unix_time(event["time"]),
                "ended": ended,
                "number": event.get("number"),
                "digits": digits,
                "e164": event.get("e164"),
                "name": event.get("name"),
                "network_name": event.get("network_name", event.get("name")),
                "note": event.get("note"),
                "waiting": 1 if event.get("waiting") else 0,
                "number_absence": event.get("number_absence"),
                "name_absence": event.get("name_absence"),
                "display": event.get("display"),
                "rings": event.get("ring_count") or 0,
                "outcome": event.get("outcome"),
                "duration_s": event.get("duration_s"),
                "id": event_id,
                "caller_key": key,
                "blocked": 1 if event.get("blocked") else 0,
            },
        )
        if key is not None and event["type"] != "ring":  # a ring repeats what the call event said
            # What a search by fragment reads instead of every call (store/search.py).
            db.execute(
                "INSERT INTO callers (key, digits) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, digits)
            )
            for name in {event.get("name"), event.get("network_name")}:
                if name:
                    db.execute("INSERT OR IGNORE INTO caller_names (key, name) VALUES (?, ?)", (key, name))

    # -- reading -----------------------------------------------------------------

    def last_id(self) -> int:
        row = self.db.execute("SELECT max(id) FROM events").fetchone()
        return int(row[0] or 0)

    def events_after(self, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Events with ``id > after``, oldest first, at most ``limit`` of them."""
        rows = self.db.execute(
            "SELECT id, payload FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        )
        return [_event(row) for row in rows]

    # An event mirrored from another node (server/cluster.py) carries origin: {node, id}.

    def last_own_id(self, before: int | None = None) -> int:
        """This node's newest own (not mirrored) event id, below ``before`` if given; 0 if none."""
        row = self.db.execute(
            f"SELECT max(id) FROM events WHERE {_OWN}" + (" AND id < ?" if before is not None else ""),
            () if before is None else (before,),
        ).fetchone()
        return int(row[0] or 0)

    def own_events_after(self, after: int, limit: int) -> list[dict[str, Any]]:
        """This node's own events with ``id > after``: the newest ``limit`` of them, oldest first."""
        rows = self.db.execute(
            f"SELECT id, payload FROM events WHERE id > ? AND {_OWN} ORDER BY id DESC LIMIT ?", (after, limit)
        ).fetchall()
        return [_event(row) for row in reversed(rows)]

    def mirrored_heads(self) -> dict[str, int]:
        """Per other node, the highest of its event ids mirrored into this log."""
        rows = self.db.execute(
            "SELECT json_extract(payload, '$.origin.node'), max(json_extract(payload, '$.origin.id'))"
            f" FROM events WHERE NOT {_OWN} GROUP BY 1"
        )
        return {str(node): int(last) for node, last in rows}

    def recent_calls_start(self, calls: int) -> int:
        """The id just before the first event of the last ``calls`` calls (0 if fewer)."""
        if calls <= 0:
            return self.last_id()
        row = self.db.execute(
            "SELECT min(first_event) FROM (SELECT first_event FROM calls ORDER BY first_event DESC LIMIT ?)",
            (calls,),
        ).fetchone()
        return int(row[0]) - 1 if row[0] is not None else 0

    def calls(self, query: CallQuery | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Calls matching ``query`` (or the same fields as keywords), newest first."""
        return find_calls(self.db, query or CallQuery(**filters), CALL_COLUMNS)

    def unfinished_calls(self) -> list[dict[str, Any]]:
        """This node's calls with no ``end`` yet, oldest first (after a crash or power cut).

        Calls mirrored from other cidbridge nodes (events with an ``origin``) are left
        alone: their own node ends them.
        """
        sql = (
            f"SELECT {', '.join('c.' + col for col in CALL_COLUMNS)} FROM calls c"
            " JOIN events e ON e.id = c.first_event"
            " WHERE c.ended IS NULL AND json_extract(e.payload, '$.origin') IS NULL"
            " ORDER BY c.first_event"
        )
        return [dict(zip(CALL_COLUMNS, row, strict=True)) for row in self.db.execute(sql)]

    # -- cursors (durable outputs) ---------------------------------------------------

    def cursor(self, name: str) -> int | None:
        """The last event id output ``name`` delivered, or None if it has no cursor yet."""
        row = self.db.execute("SELECT last_id FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, name: str, last_id: int) -> None:
        """Record that output ``name`` delivered every event up to ``last_id`` (one small commit)."""
        try:
            self.db.execute(
                "INSERT INTO cursors (name, last_id, updated) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id, updated = excluded.updated",
                (name, last_id, time.time()),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to the call log {self.path} ({exc})") from None
        self._committed()

    # -- retention ---------------------------------------------------------------

    def prune(self, older_than: float, batch: int = 500) -> int:
        """Delete one batch of events and calls from before Unix time ``older_than``.

        Returns how many rows went; call it until it returns 0.  Small batches keep
        each write transaction short, so a call arriving meanwhile is not held up.
        """
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            events = db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE unix < ? ORDER BY id LIMIT ?)",
                (older_than, batch),
            ).rowcount
            gone = db.execute(
                "DELETE FROM calls WHERE call_id IN "
                "(SELECT call_id FROM calls WHERE started_unix < ? ORDER BY first_event LIMIT ?)"
                " RETURNING caller_key",
                (older_than, batch),
            ).fetchall()
            calls = len(gone)
            # A caller whose last call went is forgotten by the search tables too.
            for key in {row[0] for row in gone} - {None}:
                if db.execute("SELECT 1 FROM calls WHERE caller_key = ? LIMIT 1", (key,)).fetchone() is None:
                    db.execute("DELETE FROM callers WHERE key = ?", (key,))
                    db.execute("DELETE FROM caller_names WHERE key = ?", (key,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(f"cannot prune the call log {self.path} ({exc})") from None
        return events + calls


def unix_time(iso: str) -> float:
    """Unix seconds of an ISO 8601 time; a time without an offset is taken as local.

    A time that does not parse (a mirrored event from a broken peer) is stamped with
    now rather than refused: the event is still logged, and expires in due course.
    """
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return time.time()


def _digits(number: str | None) -> str | None:
    if not number:
        return None
    return "".join(ch for ch in number if ch.isdigit()) or None


_OWN = "json_extract(payload, '$.origin') IS NULL"


def _event(row: tuple[int, str]) -> dict[str, Any]:
    event: dict[str, Any] = {"id": row[0]}
    event.update(json.loads(row[1]))
    return event


def _statements(script: str) -> Iterable[str]:
    return (part.strip() for part in script.split(";") if part.strip())
