"""The phonebook and the block list, in the call log database.

Contacts are keyed by the number's key (:func:`cidbridge.numbers.match_key`: E.164
for the configured region, else the bare digits), so ``010-1234-5678``,
``01012345678`` and ``+82 10 1234 5678`` are one contact.  Each has a name and/or
a note, the time it last changed and where that change came from (``panel``,
``cli``, ``import``, ``file``).

**The ``[calls] phonebook`` file** is merged in at start and whenever it changes
(:meth:`Directory.sync_file`): a row that is new or changed in the file since the
last merge is written over the contact; a row that did not change leaves the contact
alone, so a name edited on the panel stays until someone edits that row of the file;
a row removed from the file removes the contact only if nobody edited it since.  In
short, the latest change wins, whichever side made it.  A file that did not change
since the last merge (a restart) changes nothing.

**The block list** (:mod:`cidbridge.core.blocking` matches it) is read again when
another process changed the database (``PRAGMA data_version``, checked when a call
needs the list: one cheap query), so ``cidbridge block add`` works while the daemon
runs.

Everything here runs on the caller's thread on the log's connection, like
:meth:`CallLog.append`; each write is one short transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cidbridge import numbers
from cidbridge.core.blocking import NUMBER, BadRule, BlockList, BlockRule, CallerView, normalise
from cidbridge.phonebook import MAX_NAME, MAX_NOTE, Entry, clean_text, detect_format, read_entries
from cidbridge.store import callers
from cidbridge.store.calllog import CallLog, StoreError

log = logging.getLogger(__name__)

SOURCES = ("panel", "cli", "import", "file")
_FILE_STAMP = "phonebook_file"


@dataclass(frozen=True, slots=True)
class Contact:
    """One phonebook entry."""

    key: str
    number: str
    name: str | None
    note: str | None
    #: Unix time of the last change.
    updated: float
    source: str

    def as_json(self, region: str) -> dict[str, Any]:
        """The contact as the HTTP API and ``--json`` give it."""
        return {
            "key": self.key,
            "number": self.number,
            "display": numbers.display(self.number, region),
            "e164": numbers.e164(self.number, region),
            "name": self.name,
            "note": self.note,
            "updated": iso(self.updated),
            "source": self.source,
        }


@dataclass(slots=True)
class ImportResult:
    """What an import or a merge did; ``skipped`` says why, per row or card."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": self.skipped,
        }


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix).astimezone().isoformat(timespec="seconds")


class Directory:
    """Contacts and block rules over an open :class:`CallLog`.  See the module doc."""

    def __init__(self, store: CallLog, region: str | Callable[[], str] = "KR") -> None:
        self.store = store
        self._region = region if callable(region) else (lambda: region)
        self._blocks: BlockList | None = None
        self._blocks_version: int | None = None

    @property
    def region(self) -> str:
        return self._region()

    def key(self, number: str | None) -> str | None:
        """The key contacts and calls share for ``number`` (None if it is no number)."""
        return numbers.match_key(number, self.region)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self.store.db
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(f"cannot write to the call log {self.store.path} ({exc})") from None
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- contacts ------------------------------------------------------------------

    def contact(self, key: str | None) -> Contact | None:
        """The contact with this key (the hot path: one primary-key lookup)."""
        if not key:
            return None
        row = self.store.db.execute(
            "SELECT key, number, name, note, updated, source FROM contacts WHERE key = ?", (key,)
        ).fetchone()
        return Contact(*row) if row else None

    def lookup(self, number: str | None) -> Contact | None:
        """The contact for ``number`` written any way, or None."""
        return self.contact(self.key(number))

    def set_contact(self, number: str, name: str | None, note: str | None, *, source: str) -> Contact | None:
        """Save ``number``'s name and note (cleaned); both empty deletes it.  None = deleted.

        Raises :class:`ValueError` when ``number`` is no phone number.
        """
        key = self.key(number)
        if key is None:
            raise ValueError(f"{number!r} is not a phone number")
        name, note = clean_text(name, MAX_NAME), clean_text(note, MAX_NOTE, lines=True)
        with self._write() as db:
            if name is None and note is None:
                db.execute("DELETE FROM contacts WHERE key = ?", (key,))
                return None
            self._upsert(db, key, number.strip(), name, note, source)
        return self.contact(key)

    def delete_contact(self, number: str) -> Contact | None:
        """Remove ``number``'s contact; return what it was (None if there was none)."""
        existing = self.lookup(number)
        if existing is not None:
            with self._write() as db:
                db.execute("DELETE FROM contacts WHERE key = ?", (existing.key,))
        return existing

    def contacts(self, search: str | None = None, *, limit: int = 100, offset: int = 0) -> list[Contact]:
        """Contacts by name (then key), optionally those whose name, note or number has ``search``."""
        sql = "SELECT key, number, name, note, updated, source FROM contacts"
        args: list[Any] = []
        if search and search.strip():
            text = search.strip()
            digits = "".join(ch for ch in text if ch.isdigit())
            sql += " WHERE instr(lower(coalesce(name, '')), ?) > 0 OR instr(lower(coalesce(note, '')), ?) > 0"
            args += [_ascii_lower(text)] * 2
            if digits:
                sql += " OR instr(replace(replace(replace(number, '-', ''), ' ', ''), '+', ''), ?) > 0"
                sql += " OR instr(key, ?) > 0"
                args += [digits, digits]
        sql += " ORDER BY name IS NULL, name, key LIMIT ? OFFSET ?"
        args += [max(0, limit), max(0, offset)]
        return [Contact(*row) for row in self.store.db.execute(sql, args)]

    def count_contacts(self) -> int:
        return int(self.store.db.execute("SELECT count(*) FROM contacts").fetchone()[0])

    def import_entries(self, entries: Iterable[Entry], *, source: str) -> ImportResult:
        """Write file rows over the contacts they name (a row without a note keeps the old note)."""
        result = ImportResult()
        rows = list(entries)
        for start in range(0, len(rows), 500):  # short transactions: a call may be arriving
            with self._write() as db:
                for entry in rows[start : start + 500]:
                    key = self.key(entry.number)
                    name = clean_text(entry.name, MAX_NAME)
                    note = clean_text(entry.note, MAX_NOTE, lines=True)
                    if key is None or (name is None and note is None):
                        result.skipped.append(f"{entry.number!r}: needs a phone number and a name")
                        continue
                    old = self.contact(key)
                    if old is not None and note is None:
                        note = old.note
                    if old is not None and (old.name, old.note) == (name, note):
                        result.unchanged += 1
                        continue
                    self._upsert(db, key, entry.number.strip(), name, note, source)
                    if old is None:
                        result.added += 1
                    else:
                        result.updated += 1
        return result

    @staticmethod
    def _upsert(
        db: sqlite3.Connection, key: str, number: str, name: str | None, note: str | None, source: str
    ):
        db.execute(
            "INSERT INTO contacts (key, number, name, note, updated, source) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET number = excluded.number, name = excluded.name,"
            " note = excluded.note, updated = excluded.updated, source = excluded.source",
            (key, number, name, note, time.time(), source),
        )

    # -- the [calls] phonebook file --------------------------------------------------

    def sync_file(self, path: Path, raw: bytes) -> ImportResult | None:
        """Merge the phonebook file's content in (see the module doc); None if unchanged."""
        stamp = f"{path}\n{hashlib.sha256(raw).hexdigest()}"
        db = self.store.db
        row = db.execute("SELECT value FROM settings WHERE name = ?", (_FILE_STAMP,)).fetchone()
        if row is not None and row[0] == stamp:
            return None
        read = read_entries(raw, detect_format(raw, path.name), str(path))
        result = ImportResult(skipped=list(read.skipped))
        rows: dict[str, tuple[str, str | None, str | None]] = {}
        for entry in read.entries:
            key = self.key(entry.number)
            if key is None:
                result.skipped.append(f"{entry.number!r}: not a phone number")
                continue
            rows[key] = (entry.number, entry.name, entry.note)  # a later row for a number wins
        before = {
            key: (name, note) for key, name, note in db.execute("SELECT key, name, note FROM phonebook_file")
        }
        with self._write() as db:
            for key, (number, name, note) in rows.items():
                if before.get(key) == (name, note):
                    result.unchanged += 1
                    continue
                existed = self.contact(key) is not None
                self._upsert(db, key, number, name, note, "file")
                result.added += not existed
                result.updated += existed
            for key in before.keys() - rows.keys():
                current = self.contact(key)
                if (
                    current is not None
                    and current.source == "file"
                    and (current.name, current.note) == before[key]
                ):
                    db.execute("DELETE FROM contacts WHERE key = ?", (key,))
                    result.removed += 1
            db.execute("DELETE FROM phonebook_file")
            db.executemany(
                "INSERT INTO phonebook_file (key, name, note) VALUES (?, ?, ?)",
                [(key, name, note) for key, (_, name, note) in rows.items()],
            )
            db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (_FILE_STAMP, stamp))
        for problem in result.skipped[:20]:
            log.warning("phonebook %s: %s skipped", path, problem)
        log.info(
            "phonebook %s merged: %d added, %d changed, %d removed, %d unchanged, %d skipped",
            path, result.added, result.updated, result.removed, result.unchanged, len(result.skipped),
        )  # fmt: skip
        return result

    # -- callers' history and missed calls (store/callers.py) -------------------------

    def history(
        self, key: str, *, current: str | None = None, now: float | None = None, missed_days: float = 7
    ) -> dict[str, Any]:
        now = time.time() if now is None else now
        return callers.history(self.store.db, key, now=now, current=current, missed_days=missed_days)

    def missed(self, *, since: float, include_unknown: bool, limit: int = 200) -> list[dict[str, Any]]:
        return callers.missed(self.store.db, since=since, include_unknown=include_unknown, limit=limit)

    def mark_returned(self, call_id: str, how: str = callers.CALLED_BACK) -> list[str] | None:
        """Mark a missed call (and its caller's earlier ones) returned; see store/callers.py."""
        with self._write() as db:
            return callers.mark_returned(db, call_id, how=how, when=iso(time.time()))

    def answered_later(self, call_id: str) -> list[str]:
        """``call_id`` was answered: its caller's earlier missed calls leave the list."""
        with self._write() as db:
            return callers.answered_later(db, call_id, when=iso(time.time()))

    # -- the block list --------------------------------------------------------------

    def block_list(self) -> BlockList:
        """The rules in force, read again if another process changed the database."""
        version = self.store.db.execute("PRAGMA data_version").fetchone()[0]
        if self._blocks is None or version != self._blocks_version:
            self._blocks = BlockList(self.blocks())
            self._blocks_version = version
        return self._blocks

    def blocks(self) -> list[BlockRule]:
        rows = self.store.db.execute("SELECT id, kind, value, note FROM blocks ORDER BY id")
        return [BlockRule(*row) for row in rows]

    def rule_value(self, kind: str, value: str) -> str:
        """``value`` as a ``kind`` rule stores it; :class:`BadRule` if it cannot be one."""
        value = normalise(kind, value)
        if kind == NUMBER:
            key = self.key(value)
            if key is None:
                raise BadRule(f"{value!r} is not a phone number")
            return key
        return value

    def add_block(self, kind: str, value: str, note: str | None = None) -> tuple[BlockRule, bool]:
        """Add a rule (or find the same one); True if it is new.  :class:`BadRule` if invalid."""
        stored = self.rule_value(kind, value)
        with self._write() as db:
            db.execute(
                "INSERT INTO blocks (kind, value, note, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (kind, stored, clean_text(note, MAX_NAME), time.time()),
            )
            created = db.execute("SELECT changes()").fetchone()[0] > 0
        self._blocks = None
        row = self.store.db.execute(
            "SELECT id, kind, value, note FROM blocks WHERE kind = ? AND value = ?", (kind, stored)
        ).fetchone()
        return BlockRule(*row), created

    def remove_block(self, rule_id: int) -> BlockRule | None:
        """Remove the rule with this id; return it (None if there was none)."""
        row = self.store.db.execute(
            "SELECT id, kind, value, note FROM blocks WHERE id = ?", (rule_id,)
        ).fetchone()
        if row is None:
            return None
        with self._write() as db:
            db.execute("DELETE FROM blocks WHERE id = ?", (rule_id,))
        self._blocks = None
        return BlockRule(*row)

    def find_block(self, kind: str, value: str) -> BlockRule | None:
        stored = self.rule_value(kind, value)
        row = self.store.db.execute(
            "SELECT id, kind, value, note FROM blocks WHERE kind = ? AND value = ?", (kind, stored)
        ).fetchone()
        return BlockRule(*row) if row else None

    def caller_view(self, number: str | None, absence: str | None, known: bool) -> CallerView:
        """The caller as block rules see it (every written form of the number)."""
        if not number:
            return CallerView(None, (), absence, known)
        key = self.key(number)
        forms = {"".join(ch for ch in number if ch.isdigit() or ch == "+")}
        display = numbers.display(number, self.region)
        if display and not display.startswith("+"):
            forms.add("".join(ch for ch in display if ch.isdigit()))
        e164 = numbers.e164(number, self.region)
        if e164:
            forms.add(e164)
        return CallerView(key, tuple(sorted(forms)), None, known)


def _ascii_lower(text: str) -> str:
    return "".join(ch.lower() if ch.isascii() else ch for ch in text)
