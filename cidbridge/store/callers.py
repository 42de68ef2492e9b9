"""A caller's history in a few numbers, and the missed calls nobody has returned yet.

Both read the call log through its ``calls_caller`` index (caller key, first event)
and the partial ``calls_unreturned`` index, so they stay fast on a large log.

**Missed, not yet returned**: calls whose outcome is ``missed`` (and, when asked,
``unknown``: a modem cannot see whether anyone answered) and that nobody has marked
returned, newest first, one entry per caller with how many of their calls wait.  A
call leaves the list when someone marks it *called back* (which clears the caller's
earlier ones too), or by itself when the same number calls again and that call is
answered (``returned_how = "answered"``).  Blocked calls are never listed.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

#: How a call left the missed list: someone said they called back; a later call was answered.
CALLED_BACK = "called_back"
ANSWERED_LATER = "answered"
#: Columns of a call in a card or the missed list.
_CALL = (
    "call_id",
    "line",
    "started",
    "ended",
    "number",
    "display",
    "name",
    "network_name",
    "number_absence",
    "rings",
    "outcome",
    "duration_s",
    "blocked",
    "returned",
    "returned_how",
    "caller_key",
    "first_event",
)
_SELECT = f"SELECT {', '.join(_CALL)} FROM calls"


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    rows = [dict(zip(_CALL, row, strict=True)) for row in cursor]
    for row in rows:
        row["blocked"] = bool(row["blocked"])
    return rows


def week_start(now: float) -> float:
    """Monday 00:00 local time of the week holding ``now``."""
    moment = datetime.fromtimestamp(now)
    monday = (moment - timedelta(days=moment.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday.timestamp()


def history(
    db: sqlite3.Connection, key: str, *, now: float, current: str | None = None, missed_days: float = 7
) -> dict[str, Any]:
    """What a caller card says about a caller's past (see the HTTP API in the README).

    ``current`` is the call the card is shown for: it counts in the totals but is
    not the ``previous`` call.  ``unreturned_missed`` counts the caller's entries in
    the missed-call list (the last ``missed_days``).
    """
    total = db.execute("SELECT count(*) FROM calls WHERE caller_key = ?", (key,)).fetchone()[0]
    counts = {
        label: db.execute(
            "SELECT count(*) FROM calls INDEXED BY calls_caller_time"
            " WHERE caller_key = ? AND started_unix >= ?",
            (key, since),
        ).fetchone()[0]
        for label, since in (("this_week", week_start(now)), ("last_7_days", now - 7 * 86_400.0))
    }
    recent = _rows(db.execute(f"{_SELECT} WHERE caller_key = ? ORDER BY first_event DESC LIMIT 6", (key,)))
    previous = next((call for call in recent if call["call_id"] != current), None)
    last_missed = _rows(
        db.execute(
            f"{_SELECT} WHERE caller_key = ? AND outcome = 'missed' ORDER BY first_event DESC LIMIT 1", (key,)
        )
    )
    waiting = db.execute(
        "SELECT count(*) FROM calls INDEXED BY calls_caller_time WHERE caller_key = ? AND started_unix >= ?"
        " AND returned IS NULL AND outcome = 'missed' AND blocked = 0",
        (key, now - missed_days * 86_400.0),
    ).fetchone()[0]
    network_name = next((call["network_name"] for call in recent if call["network_name"]), None)
    return {
        "total": total,
        **counts,
        "week_start": datetime.fromtimestamp(week_start(now)).astimezone().isoformat(timespec="seconds"),
        "previous": previous,
        "last_missed": last_missed[0] if last_missed else None,
        "unreturned_missed": waiting,
        "network_name": network_name,
        "recent": recent[:5],
    }


def missed(
    db: sqlite3.Connection, *, since: float, include_unknown: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """Missed calls not yet returned since ``since``, one entry per caller, newest first.

    Each entry is the caller's latest such call plus ``count`` (how many are waiting)
    and ``first`` (when the oldest of them came).  Calls without a number are one
    entry each.
    """
    outcomes = "('missed', 'unknown')" if include_unknown else "('missed')"
    # Grouped in SQL (in C, not a Python loop over every waiting call); the latest call of
    # each group is then read by its first event, unique per call.
    cursor = db.execute(
        f"SELECT {', '.join('c.' + column for column in _CALL)}, g.n, g.oldest FROM ("
        "  SELECT max(first_event) AS latest, count(*) AS n, min(started) AS oldest FROM calls"
        "  INDEXED BY calls_unreturned"
        "  WHERE returned IS NULL AND outcome IN ('missed', 'unknown') AND started_unix >= ?"
        f"  AND outcome IN {outcomes} AND blocked = 0"
        "  GROUP BY coalesce(caller_key, call_id) ORDER BY latest DESC LIMIT ?"
        ") g JOIN calls c ON c.first_event = g.latest ORDER BY g.latest DESC",
        (since, limit),
    )
    entries = []
    for row in cursor:
        entry = dict(zip(_CALL, row[: len(_CALL)], strict=True))
        entry["blocked"] = bool(entry["blocked"])
        entry["count"], entry["first"] = row[-2], row[-1]
        entries.append(entry)
    return entries


def mark_returned(db: sqlite3.Connection, call_id: str, *, how: str, when: str) -> list[str] | None:
    """Mark ``call_id`` and the same caller's earlier unreturned calls returned.

    Returns the call ids marked (empty if the call is not a missed one or was
    returned already); None if there is no such call.  Runs inside the caller's
    transaction.
    """
    row = db.execute("SELECT caller_key, first_event FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        return None
    key, first_event = row
    if key is None:
        marked = db.execute(
            "UPDATE calls SET returned = ?, returned_how = ? WHERE call_id = ? AND returned IS NULL"
            " AND outcome IN ('missed', 'unknown') RETURNING call_id",
            (when, how, call_id),
        ).fetchall()
    else:
        marked = db.execute(
            "UPDATE calls SET returned = ?, returned_how = ? WHERE caller_key = ? AND first_event <= ?"
            " AND returned IS NULL AND outcome IN ('missed', 'unknown') RETURNING call_id",
            (when, how, key, first_event),
        ).fetchall()
    return [r[0] for r in marked]


def answered_later(db: sqlite3.Connection, call_id: str, *, when: str) -> list[str]:
    """``call_id`` was answered: its caller's earlier missed calls are returned.  Ids marked."""
    row = db.execute("SELECT caller_key, first_event FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row is None or row[0] is None:
        return []
    marked = db.execute(
        "UPDATE calls SET returned = ?, returned_how = ? WHERE caller_key = ? AND first_event < ?"
        " AND returned IS NULL AND outcome IN ('missed', 'unknown') RETURNING call_id",
        (when, ANSWERED_LATER, row[0], row[1]),
    ).fetchall()
    return [r[0] for r in marked]
