"""The phonebook: names the front desk gave its callers, which win over the network's.

A CSV file, one contact a row: ``number, name[, note]``.  A header row is allowed
(any first row whose number column holds no digit, e.g. ``number,name,note`` or
``번호,이름,메모``).  Numbers may be written any way people write them
(``010-1234-5678``, ``+82 10 1234 5678``, ``(212) 555-1234``): rows and callers are
matched by the number in E.164 for the configured region (:func:`numbers.match_key`).

The file is re-read when it changes (checked on each lookup: one ``stat``), so staff
can edit it in a spreadsheet while the daemon runs.  Files saved by Excel are
welcome: a UTF-8 byte-order mark is skipped, and a file that is not UTF-8 is read
as CP949, the encoding Korean Windows' Excel saves CSV in.  A bad row is skipped
and logged with its row number; a missing or unreadable file means no names (and
one warning), never a failed call.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cidbridge.numbers import match_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Contact:
    """One phonebook row."""

    number: str
    name: str
    note: str | None = None


class Phonebook:
    """A CSV phonebook, re-read when the file changes.  See the module doc."""

    def __init__(self, path: str | os.PathLike[str], region: str) -> None:
        self.path = Path(path)
        self.region = region
        self._contacts: dict[str, Contact] = {}
        #: (mtime_ns, size, inode) of the file last read; None = not read / missing.
        self._stamp: tuple[int, int, int] | None = None
        self._missing_logged = False

    def __len__(self) -> int:
        self.refresh()
        return len(self._contacts)

    def lookup(self, number: str | None) -> Contact | None:
        """The contact for ``number`` (any spelling), or None."""
        key = match_key(number, self.region)
        if key is None:
            return None
        self.refresh()
        return self._contacts.get(key)

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read."""
        try:
            st = self.path.stat()
        except OSError as exc:
            if self._stamp is not None or not self._missing_logged:
                log.warning(
                    "phonebook %s cannot be read (%s); callers show the network's names", self.path, exc
                )
                self._missing_logged = True
            self._stamp, self._contacts = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            log.warning("phonebook %s cannot be read (%s); keeping the previous names", self.path, exc)
            return
        self._contacts = self._parse(raw)
        self._stamp = stamp
        self._missing_logged = False
        log.info("phonebook %s: %d contact(s)", self.path, len(self._contacts))

    def _parse(self, raw: bytes) -> dict[str, Contact]:
        contacts: dict[str, Contact] = {}
        for row_number, row in enumerate(csv.reader(io.StringIO(_decode(raw, self.path))), start=1):
            cells = [cell.strip() for cell in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if row_number == 1 and not any(ch.isdigit() for ch in cells[0]):
                continue  # a header row
            number, name = cells[0], cells[1] if len(cells) > 1 else ""
            note = cells[2] if len(cells) > 2 and cells[2] else None
            key = match_key(number, self.region)
            if key is None or not name:
                log.warning("phonebook %s row %d skipped: needs a number and a name", self.path, row_number)
                continue
            contacts[key] = Contact(number, name, note)  # a later row for a number wins
        return contacts


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("phonebook %s is not UTF-8; reading it as CP949 (Korean Excel)", path)
        return raw.decode("cp949", errors="replace")
