"""Phonebook files: CSV in and out, vCard in, and the ``[calls] phonebook`` file kept in step.

The phonebook itself lives in the call log database (:mod:`cidbridge.store.directory`);
this module only reads and writes the files people bring.  Every reader returns
:class:`Entry` rows plus the problems it skipped, and never raises on bad content.

**CSV**: one contact a row, ``number, name[, note]``.  A header row is allowed (any
first row whose number column holds no digit, e.g. ``number,name,note`` or
``번호,이름,메모``).  Files saved by Excel are welcome: a UTF-8 byte-order mark is
skipped, and a file that is not UTF-8 is read as CP949, the encoding Korean Windows'
Excel saves CSV in.  Exports are UTF-8 with a byte-order mark (Excel shows Korean),
and a name that would run as a spreadsheet formula is defused.

**vCard** 2.1, 3.0 and 4.0 (what phones and address books export), read with
``vobject``: ``FN`` (or ``N``), every ``TEL`` (one contact per number), ``NOTE``;
folded lines, escapes, ``CHARSET`` and quoted-printable (with its soft line breaks,
which vCard 2.1 files from phones use for Korean names and vobject does not join
itself).  A card that cannot be parsed is skipped and counted.

:class:`PhonebookFile` watches the ``[calls] phonebook`` file: at most one ``stat``
a second, and the file's rows when it changed.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import vobject

from cidbridge.store.export import safe_cell

log = logging.getLogger(__name__)

#: Longest name and note kept (longer ones are cut, not refused).
MAX_NAME = 100
MAX_NOTE = 1000
#: Seconds between two looks at the phonebook file.
FILE_CHECK_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One contact read from a file: the number as written, a name and/or a note."""

    number: str
    name: str | None
    note: str | None = None


@dataclass(slots=True)
class ReadResult:
    """What a file gave: its entries, and one sentence per row or card skipped."""

    entries: list[Entry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def clean_text(value: str | None, limit: int, *, lines: bool = False) -> str | None:
    """Text as stored: control characters (terminal escapes, NUL, bidi overrides) removed,
    trimmed, capped at ``limit`` characters; None when nothing is left.

    With ``lines`` (notes) line breaks are kept; otherwise they become spaces.
    """
    if value is None:
        return None
    text = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    if not lines:
        text = text.replace("\n", " ")
    kept = "".join(ch for ch in text if ch == "\n" or ch.isprintable())
    return kept.strip()[:limit].strip() or None


def decode_text(raw: bytes, label: str = "file") -> str:
    """UTF-8 (with or without a byte-order mark), else CP949 (Korean Excel)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("%s is not UTF-8; reading it as CP949 (Korean Excel)", label)
        return raw.decode("cp949", errors="replace")


def detect_format(raw: bytes, filename: str | None = None) -> str:
    """``"vcard"`` or ``"csv"``, from the file name's extension, else from the content."""
    suffix = Path(filename).suffix.lower() if filename else ""
    if suffix in (".vcf", ".vcard"):
        return "vcard"
    if suffix == ".csv":
        return "csv"
    head = raw[:64].lstrip(b"\xef\xbb\xbf \r\n\t").upper()
    return "vcard" if head.startswith(b"BEGIN:VCARD") else "csv"


def read_entries(raw: bytes, fmt: str, label: str = "file") -> ReadResult:
    """Entries from CSV or vCard bytes (``fmt`` from :func:`detect_format`)."""
    return read_vcard(raw, label) if fmt == "vcard" else read_csv(raw, label)


# -- CSV ---------------------------------------------------------------------------


def read_csv(raw: bytes, label: str = "file") -> ReadResult:
    """Rows of ``number, name[, note]``; see the module doc."""
    result = ReadResult()
    for row_number, row in enumerate(csv.reader(io.StringIO(decode_text(raw, label))), start=1):
        cells = [cell.strip() for cell in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if row_number == 1 and not any(ch.isdigit() for ch in cells[0]):
            continue  # a header row
        number = cells[0]
        name = clean_text(cells[1], MAX_NAME) if len(cells) > 1 else None
        note = clean_text(cells[2], MAX_NOTE, lines=True) if len(cells) > 2 else None
        if not any(ch.isdigit() for ch in number) or not name:
            result.skipped.append(f"row {row_number}: needs a number and a name")
            continue
        result.entries.append(Entry(number, name, note))
    return result


def write_csv(rows: Iterable[tuple[str, str | None, str | None]]) -> str:
    """``number,name,note`` rows as CSV text with a header (no byte-order mark added)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("number", "name", "note"))
    for number, name, note in rows:
        writer.writerow((safe_cell(number), safe_cell(name), safe_cell(note)))
    return out.getvalue()


# -- vCard -------------------------------------------------------------------------

_CARD = re.compile(r"BEGIN:VCARD.*?END:VCARD", re.IGNORECASE | re.DOTALL)
_QP_PROPERTY = re.compile(r"^[^:]*ENCODING=QUOTED-PRINTABLE[^:]*:", re.IGNORECASE)
_QP_SHORT = re.compile(r"^[^:;]*;([^:]*;)*QUOTED-PRINTABLE[;:]", re.IGNORECASE)


def read_vcard(raw: bytes, label: str = "file") -> ReadResult:
    """Contacts from a vCard file: one entry per ``TEL`` of each card."""
    result = ReadResult()
    text = decode_text(raw, label)
    for index, match in enumerate(_CARD.finditer(text), start=1):
        try:
            card = vobject.readOne(_join_soft_breaks(match.group(0)), ignoreUnreadable=True)
        except Exception as exc:  # vobject raises many kinds; a bad card is only skipped
            result.skipped.append(f"card {index}: cannot be read ({type(exc).__name__})")
            continue
        name = clean_text(_card_name(card), MAX_NAME)
        notes = [str(n.value) for n in card.contents.get("note", []) if isinstance(n.value, str)]
        note = clean_text("\n".join(notes), MAX_NOTE, lines=True) if notes else None
        numbers = [_tel(t.value) for t in card.contents.get("tel", []) if isinstance(t.value, str)]
        numbers = [n for n in numbers if any(ch.isdigit() for ch in n)]
        if not numbers or not name:
            result.skipped.append(f"card {index}: needs a name and a phone number")
            continue
        result.entries.extend(Entry(number, name, note) for number in dict.fromkeys(numbers))
    return result


def _join_soft_breaks(card: str) -> str:
    """Join quoted-printable soft line breaks (a line ending in ``=``) with the next line."""
    lines = card.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    continuing = False
    for line in lines:
        if continuing:
            out[-1] = out[-1][:-1] + line.lstrip(" \t")
        else:
            out.append(line)
        current = out[-1]
        quoted = bool(_QP_PROPERTY.match(current) or _QP_SHORT.match(current))
        continuing = quoted and current.endswith("=")
    return "\r\n".join(out) + "\r\n"


def _card_name(card: vobject.base.Component) -> str | None:
    fn = card.contents.get("fn")
    if fn and isinstance(fn[0].value, str) and fn[0].value.strip():
        return str(fn[0].value)
    n = card.contents.get("n")
    if not n:
        return None
    value = n[0].value
    family = str(getattr(value, "family", "") or "").strip()
    given = str(getattr(value, "given", "") or "").strip()
    if _is_hangul(family + given):
        return family + given or None  # Korean order, no space: 김민지
    return " ".join(part for part in (given, family) if part) or None


def _tel(value: str) -> str:
    """``tel:+1-212-555-1234;ext=5`` (vCard 4.0 URIs) → ``+1-212-555-1234``."""
    value = value.strip()
    if value.lower().startswith("tel:"):
        value = value[4:]
    return value.split(";", 1)[0].strip()


def _is_hangul(text: str) -> bool:
    return bool(text) and all("\uac00" <= ch <= "\ud7a3" or ch == " " for ch in text)


# -- the [calls] phonebook file ----------------------------------------------------


class PhonebookFile:
    """The configured CSV (or vCard) file; :meth:`changed` gives its rows when it changed.

    Looks at the file at most once every :data:`FILE_CHECK_EVERY` seconds (one
    ``stat``), so asking on every call costs nothing.  A missing or unreadable file
    is logged once and gives nothing (the contacts already imported stay).
    """

    def __init__(self, path: str | os.PathLike[str], *, clock=time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock
        self._checked = float("-inf")
        #: (mtime_ns, size, inode) of the file last read; None = not read / missing.
        self._stamp: tuple[int, int, int] | None = None
        self._missing_logged = False

    def changed(self, *, force: bool = False) -> bytes | None:
        """The file's bytes if it changed since the last call (or on the first), else None."""
        now = self._clock()
        if not force and now - self._checked < FILE_CHECK_EVERY:
            return None
        self._checked = now
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp == self._stamp and not force:
                return None
            raw = self.path.read_bytes()
        except OSError as exc:
            if not self._missing_logged:
                log.warning(
                    "phonebook %s cannot be read (%s); keeping the contacts already imported", self.path, exc
                )
                self._missing_logged = True
            self._stamp = None
            return None
        self._stamp = stamp
        self._missing_logged = False
        return raw
