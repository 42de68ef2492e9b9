"""``cidbridge calls``: the call log as a table, JSON or CSV.

It reads the same SQLite file the daemon writes (safe while the daemon runs: the log
is in WAL mode, readers never block the writer).  The file is found from
``--db``, else the ``[store] path`` of ``--config``, else the default location.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cidbridge import config as config_module
from cidbridge.cli.errors import STORE, USAGE, fail
from cidbridge.cli.show import json_safe, plain
from cidbridge.store import CallLog, CallQuery, StoreError
from cidbridge.store.export import calls_csv
from cidbridge.store.timespec import TimeSpecError, parse_time

#: How an absent number reads in the table (absence values: docs/formats.md).
_ABSENCE = {
    "private": "Private",
    "unavailable": "No caller ID",
    "payphone": "Payphone",
    "conflict": "Unavailable (conflict)",
}
#: How each outcome reads, and its colour.  ``unknown`` reads "ended" everywhere (CLI,
#: panel): the call ended, and the device (a modem) cannot see whether anyone answered.
OUTCOME_TEXT = {"answered": "answered", "missed": "missed", "unknown": "ended", "blocked": "blocked"}
_OUTCOME_STYLE = {"answered": "green", "missed": "bold red", "unknown": "dim", "blocked": "magenta"}


def calls(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The daemon's config file (gives the log's path).")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help="The call log file itself.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only calls from then on: 2h, 7d, today, 2025-11-26, 2025-11-26T09:30.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only calls before then (same forms as --since).")] = None,
    line: Annotated[str | None, typer.Option("--line", "-l", help="Only calls on this line.")] = None,
    number: Annotated[str | None, typer.Option(help="Only numbers containing these digits.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Only callers whose name (or phonebook name) contains this.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many calls.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of calls.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (for a spreadsheet).")] = False,
) -> None:
    """Print recent calls, newest first."""
    if as_json and as_csv:
        fail("--json and --csv cannot be used together", USAGE)
    try:
        query = CallQuery(
            limit=limit,
            since=parse_time(since) if since else None,
            until=parse_time(until) if until else None,
            line=line,
            number=number,
            name=name,
        )
    except TimeSpecError as exc:
        fail(str(exc), USAGE)
    path = log_path(config, db)
    try:
        with CallLog(path).open(create=False) as store:
            rows = store.calls(query)
    except StoreError as exc:
        fail(str(exc), STORE)
    if as_json:
        print(json_safe(rows, indent=2))
    elif as_csv:
        sys.stdout.write(calls_csv(rows))
    else:
        _table(rows, path)


def log_path(config: Path | None, db: Path | None) -> Path:
    if db is not None:
        return db
    if config is not None:
        try:
            return config_module.load(config).store.path
        except config_module.ConfigError as exc:
            fail(str(exc), USAGE)
    return config_module.StoreConfig().path


def caller_text(call: dict[str, Any]) -> str:
    """The caller as people read it: the formatted number, or why there is none."""
    if call.get("display") or call.get("number"):
        return str(call.get("display") or call.get("number"))
    return _ABSENCE.get(call.get("number_absence") or "unavailable", "No caller ID")


def _when(iso: str | None) -> str:
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso).astimezone()
    today = datetime.now().astimezone().date()
    return f"{moment:%H:%M:%S}" if moment.date() == today else f"{moment:%Y-%m-%d %H:%M}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _table(rows: list[dict[str, Any]], path: Path) -> None:
    console = Console()
    if not rows:
        console.print(plain(f"No calls in {path} match."))
        return
    table = Table(title=f"Calls ({len(rows)}, newest first)", title_justify="left")
    for column, justify in (
        ("When", "left"),
        ("Line", "left"),
        ("Caller", "left"),
        ("Name", "left"),
        ("Rings", "right"),
        ("Outcome", "left"),
        ("Length", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for call in rows:
        name = call.get("name") or ""
        if call.get("note"):
            name = f"{name} — {call['note']}"
        outcome = call.get("outcome") or ("ringing" if not call.get("ended") else "")
        # Text, never markup: names come from callers and may hold "[/]" or escapes.
        table.add_row(
            _when(call.get("started")),
            plain(call.get("line")),
            plain(caller_text(call)),
            plain(name),
            str(call.get("rings") or ""),
            Text(OUTCOME_TEXT.get(outcome, outcome), style=_OUTCOME_STYLE.get(outcome, "")),
            _duration(call.get("duration_s")),
        )
    console.print(table)
