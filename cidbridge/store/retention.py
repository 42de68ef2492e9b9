"""Retention: calls older than ``[store] retention_days`` are deleted in the background.

Caller numbers are personal data; keeping them forever is not the default.  The
daemon runs :func:`keep_pruned` as a task: shortly after start, then every hour, it
deletes what is older than the retention, a small batch at a time, yielding to the
event loop between batches so live calls are never held up.  Event ids are never
reused after pruning (the log's ``AUTOINCREMENT``), so a client's ``last_id`` stays
meaningful.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cidbridge.store.calllog import CallLog, StoreError

log = logging.getLogger(__name__)

DAY = 86_400.0
#: Seconds between prunes; calls expire by the day, so hourly is plenty.
PRUNE_EVERY = 3600.0
#: Seconds after start before the first prune (let the lines come up first).
FIRST_PRUNE_AFTER = 30.0


async def prune_expired(store: CallLog, retention_days: float, *, now: float | None = None) -> int:
    """Delete everything older than ``retention_days``; return how many rows went."""
    cutoff = (time.time() if now is None else now) - retention_days * DAY
    total = 0
    while removed := store.prune(cutoff):
        total += removed
        await asyncio.sleep(0)  # one short transaction at a time
    if total:
        log.info("retention: removed %d row(s) older than %g days", total, retention_days)
    return total


async def keep_pruned(
    store: CallLog,
    retention_days: Callable[[], float],
    *,
    every: float = PRUNE_EVERY,
    first_after: float = FIRST_PRUNE_AFTER,
) -> None:
    """Prune forever (until cancelled).  ``retention_days`` is read each time (reloads)."""
    await asyncio.sleep(first_after)
    while True:
        try:
            await prune_expired(store, retention_days())
        except StoreError as exc:
            log.error("retention: %s; will retry", exc)
        await asyncio.sleep(every)
