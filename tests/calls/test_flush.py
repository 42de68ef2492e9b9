"""The call log's sync to disk: immediate with "full", in the background with "normal"."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

from cidbridge.store import CallLog
from cidbridge.store.flush import keep_flushed

EVENT = {"v": 1, "type": "line", "call_id": None, "line": "desk", "state": "up", "reason": None,
         "time": "2026-11-26T10:00:00.000+09:00"}  # fmt: skip


def wal_frames(path) -> tuple[int, int]:
    """(frames in the write-ahead log, frames already checkpointed into the file)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        _, log_frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return log_frames, done


def test_full_never_leaves_commits_unflushed(tmp_path):
    with CallLog(tmp_path / "calls.sqlite", synchronous="full") as store:
        store.append(dict(EVENT))
        assert store.unflushed is False


def test_normal_commits_are_checkpointed_in_the_background(tmp_path):
    path = tmp_path / "calls.sqlite"

    async def scenario() -> None:
        with CallLog(path) as store:
            flusher = asyncio.create_task(keep_flushed(store, every=0.05))
            try:
                store.append(dict(EVENT))
                assert store.unflushed is True
                for _ in range(100):
                    if not store.unflushed:
                        break
                    await asyncio.sleep(0.02)
                assert store.unflushed is False, "no checkpoint ran after the commit"
            finally:
                flusher.cancel()

    asyncio.run(scenario())
    # After close, every frame was checkpointed: nothing lives only in the WAL.
    frames, done = wal_frames(path)
    assert frames == done
