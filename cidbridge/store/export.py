"""Calls as CSV, for a spreadsheet: ``cidbridge calls --csv`` and ``GET /api/calls.csv``.

Caller names come from the telephone network, and anyone can send any name: a name
like ``=HYPERLINK(...)`` would run as a formula when the file is opened in a
spreadsheet (CSV injection).  Cells that start with ``=``, ``+``, ``-``, ``@`` or a
control character are therefore prefixed with ``'``, except plain phone numbers
(``+821012345678``), which a spreadsheet treats as numbers anyway.

A spreadsheet may also split the file on another separator than the comma (``;``
where the comma is the decimal mark, a tab), so ``A;=1+1`` would become a cell
``=1+1`` there.  So a ``'`` also goes before any ``=``, ``+``, ``-`` or ``@`` that
follows a ``,``, ``;``, tab or ``|`` inside a cell (spaces and quotes between
included): no way of splitting the file starts a cell with a formula.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

from cidbridge.store.calllog import CALL_COLUMNS

#: Columns of the export: everything a call row has but the internal event ids.
CSV_COLUMNS = tuple(c for c in CALL_COLUMNS if c not in ("first_event", "last_event"))
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"\+?[0-9][0-9 ()\-]*")
#: A separator some spreadsheet may split on, then (after spaces or quotes) a formula start.
_FORMULA_AFTER_SEPARATOR = re.compile(r'([,;\t|][\s"]*)(?=[=+\-@])')


def safe_cell(value: Any) -> str:
    """``value`` as CSV text that no spreadsheet will run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    text = _FORMULA_AFTER_SEPARATOR.sub(r"\1'", text)
    if text.lstrip(' "').startswith(_FORMULA_START):
        return "'" + text
    return text


def calls_csv(calls: Iterable[dict[str, Any]]) -> str:
    """A header row, then one row per call, in :data:`CSV_COLUMNS` order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for call in calls:
        writer.writerow([safe_cell(call.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()
