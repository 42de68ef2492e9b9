"""Finding calls in a large log: by number or name fragment, time range and line, newest first.

A fragment search must not read every call: a log can hold a million.  The log keeps
two small side tables, filled as calls are committed (:meth:`CallLog._upsert_call`):
``callers`` (each caller's key and digits) and ``caller_names`` (every name a caller
was shown under, the phonebook's and the network's), and the phonebook's current
names are in ``contacts``.  A fragment is looked for in those (a few thousand to a
hundred thousand short rows), which gives the callers it matches; their calls come
from the ``calls_caller`` index (caller key, first event), newest first.  That works
for any fragment length, the two-character Korean names included, which a trigram
index cannot serve (``bench/history.py`` measures both; see bench/README.md).

With a time range the callers' calls come from the ``calls_caller_time`` index
(caller key, start time) instead, so a search in last year's calls does not read
this year's.  Paging is by ``before`` (the ``first_event`` of the last call of the
previous page): stable while calls arrive.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

#: Characters people put in a number besides digits; a query made only of these and
#: digits is a number fragment, anything else a name fragment.
_NUMBER_CHARS = frozenset("0123456789+-(). ")


@dataclass(frozen=True, slots=True)
class CallQuery:
    """Which calls to list: newest first, filtered, one page at a time.

    ``before`` is a paging cursor: the ``first_event`` of the last call of the previous
    page (stable while new calls arrive, unlike an offset).
    """

    limit: int = 50
    before: int | None = None
    since: float | None = None
    until: float | None = None
    line: str | None = None
    #: Digits anywhere in the number (``5678`` finds ``010-1234-5678``); with a leading
    #: ``+``, anywhere in the E.164 form.
    number: str | None = None
    #: Part of a name the caller was shown under, or of their phonebook name (any case).
    name: str | None = None
    #: Either of the two: a number fragment if it is only digits and separators.
    text: str | None = None


def is_number_fragment(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and any(ch.isdigit() for ch in stripped) and set(stripped) <= _NUMBER_CHARS


def find_calls(db: sqlite3.Connection, query: CallQuery, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The calls matching ``query``, newest first, as dicts of ``columns``."""
    where: list[str] = []
    args: list[Any] = []
    if query.before is not None:
        where.append("first_event < ?")
        args.append(query.before)
    if query.since is not None:
        where.append("started_unix >= ?")
        args.append(query.since)
    if query.until is not None:
        where.append("started_unix < ?")
        args.append(query.until)
    if query.line is not None:
        where.append("line = ?")
        args.append(query.line)
    number, name = query.number, query.name
    if query.text and query.text.strip():
        if is_number_fragment(query.text):
            number = number or query.text
        else:
            name = name or query.text
    keyed = False
    if number is not None:
        clause, value = _number_clause(number)
        if clause is None:
            return []
        where.append(clause)
        args.append(value)
        keyed = True
    if name is not None and name.strip():
        fragment = _ascii_lower(name.strip())
        where.append(
            "caller_key IN (SELECT key FROM caller_names WHERE instr(lower(name), ?) > 0"
            " UNION SELECT key FROM contacts WHERE instr(lower(name), ?) > 0)"
        )
        args += [fragment, fragment]
        keyed = True
    # Force a caller index when searching by fragment: SQLite would otherwise often
    # walk every call newest first and test each (200 ms on a million calls).  With a
    # time range, the one that reads only each caller's calls in that range.
    ranged = query.since is not None or query.until is not None
    source = "calls"
    if keyed:
        source = "calls INDEXED BY calls_caller_time" if ranged else "calls INDEXED BY calls_caller"
    elif query.until is not None:
        # Calls before a moment: read that time range rather than walk every newer call.
        source = "calls INDEXED BY calls_started_unix"
    sql = f"SELECT {', '.join(columns)} FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY first_event DESC LIMIT ?"
    args.append(max(0, query.limit))
    rows = [dict(zip(columns, row, strict=True)) for row in db.execute(sql, args)]
    for row in rows:
        for flag in ("waiting", "blocked"):
            if flag in row:
                row[flag] = bool(row[flag])
    return rows


def _number_clause(fragment: str) -> tuple[str | None, str]:
    digits = "".join(ch for ch in fragment if ch.isdigit())
    if not digits:
        return None, ""
    if fragment.strip().startswith("+"):
        return "caller_key IN (SELECT key FROM callers WHERE instr(key, ?) > 0)", "+" + digits
    return "caller_key IN (SELECT key FROM callers WHERE instr(digits, ?) > 0)", digits


def _ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as SQLite's ``lower()`` does (other scripts unchanged)."""
    return "".join(ch.lower() if ch.isascii() else ch for ch in text)
