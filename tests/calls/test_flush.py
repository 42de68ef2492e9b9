"""The call log's sync to disk: immediate with "full", in the background with "normal".

What is checked is the database file itself: a copy of ``calls.sqlite`` taken without
its ``-wal`` file holds only what a checkpoint has moved out of the write-ahead log.
(The test never checkpoints on its own: an earlier version ran ``PRAGMA
wal_checkpoint`` before asserting, and so passed whether the daemon flushed or not.)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3

from cidbridge.store import CallLog
from cidbridge.store.flush import keep_flushed

EVENT = {"v": 1, "type": "line", "call_id": None, "line": "desk", "state": "up", "reason": None,
         "time": "2026-11-26T10:00:00.000+09:00"}  # fmt: skip


def events_in_the_main_file(path, tmp_path) -> int:
    """Events in the database file alone, as if the write-ahead log were lost."""
    copy = tmp_path / "main-file-only.sqlite"
    shutil.copyfile(path, copy)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"main-file-only.sqlite{suffix}").unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(copy)) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone():
            return 0  # even the schema is still in the write-ahead log
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


def test_full_syncs_every_commit(tmp_path):
    with CallLog(tmp_path / "calls.sqlite", synchronous="full") as store:
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync at each commit
        store.append(dict(EVENT))
        assert store.unflushed is False


def test_normal_commits_reach_the_database_file_in_the_background(tmp_path):
    path = tmp_path / "calls.sqlite"

    async def scenario() -> None:
        with CallLog(path) as store:
            assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
            baseline = events_in_the_main_file(path, tmp_path)
            store.append(dict(EVENT))
            assert store.unflushed is True
            assert events_in_the_main_file(path, tmp_path) == baseline, "the commit is in the WAL only"
            flusher = asyncio.create_task(keep_flushed(store, every=0.05))
            try:
                for _ in range(200):
                    if events_in_the_main_file(path, tmp_path) == baseline + 1:
                        break
                    await asyncio.sleep(0.02)
                flushed = events_in_the_main_file(path, tmp_path)
                assert flushed == baseline + 1, "no checkpoint reached the file"
                assert store.unflushed is False
            finally:
                flusher.cancel()

    asyncio.run(scenario())


def test_the_first_commit_after_a_quiet_spell_is_synced_at_once_not_at_the_next_tick(tmp_path):
    """The flush waits for a commit, not for a timer: with an hour between checkpoints
    allowed, the first commit still reaches the file right away."""
    path = tmp_path / "calls.sqlite"

    async def scenario() -> None:
        with CallLog(path) as store:
            store.checkpoint()  # the schema, so the copy below can count events
            baseline = events_in_the_main_file(path, tmp_path)
            flusher = asyncio.create_task(keep_flushed(store, every=3600))
            try:
                await asyncio.sleep(0.05)  # the flusher waits for a commit
                store.append(dict(EVENT))
                for _ in range(250):
                    if events_in_the_main_file(path, tmp_path) == baseline + 1:
                        break
                    await asyncio.sleep(0.02)
                assert events_in_the_main_file(path, tmp_path) == baseline + 1, "not synced"
            finally:
                flusher.cancel()
                await asyncio.gather(flusher, return_exceptions=True)
            assert store.on_commit is None  # a cancelled flusher leaves no hook behind

    asyncio.run(scenario())
