"""``cidbridge phonebook`` and ``cidbridge block``: the phonebook and the block list.

Both work on the call log database, like ``cidbridge calls``, and are safe while the
daemon runs: it looks names up in the database on every call, and reads the block
list again as soon as another process changed it.  (Panels already open show a
phonebook change made here the next time they fetch a card or list.)

Text from callers and contacts is printed as text, never as Rich markup, and with
control characters removed, so a hostile name cannot break or restyle the terminal.
"""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated

import phonenumbers
import typer
from rich.console import Console
from rich.table import Table

from cidbridge import config as config_module
from cidbridge import numbers
from cidbridge.cli.calls import log_path
from cidbridge.cli.errors import STORE, USAGE, fail
from cidbridge.cli.help import Command, Group
from cidbridge.cli.show import plain
from cidbridge.core.blocking import NUMBER, PREFIX, WITHHELD, WITHHELD_REASONS, BadRule, BlockRule
from cidbridge.phonebook import detect_format, read_entries, write_csv
from cidbridge.store import CallLog, StoreError
from cidbridge.store.directory import Directory

phonebook_app = typer.Typer(
    name="phonebook", cls=Group, help="The phonebook: names and notes for callers.", no_args_is_help=True
)
block_app = typer.Typer(
    name="block", cls=Group, help="The block list: callers a modem hangs up on.", no_args_is_help=True
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="The daemon's config file (gives the log's path).")
]
DbOpt = Annotated[Path | None, typer.Option("--db", help="The call log file itself.")]
RegionOpt = Annotated[
    str | None,
    typer.Option(help="Country numbers are written in (default: the config's [calls] region, else KR)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _open(
    config: Path | None, db: Path | None, region: str | None, *, write: bool
) -> tuple[CallLog, Directory]:
    path = log_path(config, db)
    if region is None:
        region = "KR"
        if config is not None:
            try:
                region = config_module.load(config).calls.region
            except config_module.ConfigError as exc:
                fail(str(exc), USAGE)
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        fail(f'--region must be a two-letter country code like "KR", not {region!r}', USAGE)
    # Writing may create the log, but only where the user pointed (not a guessed default).
    create = write and (db is not None or config is not None)
    try:
        store = CallLog(path).open(create=create)
    except StoreError as exc:
        fail(str(exc), STORE)
    return store, Directory(store, region)


# -- phonebook ---------------------------------------------------------------------------


@phonebook_app.command("list", cls=Command)
def list_contacts(
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Only names, notes or numbers with this.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 1000,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: RegionOpt = None,
) -> None:
    """Print the contacts, by name."""
    store, directory = _open(config, db, region, write=False)
    with closing(store):
        found = directory.contacts(search, limit=limit)
        total = directory.count_contacts()
    if as_json:
        print(json.dumps([c.as_json(directory.region) for c in found], ensure_ascii=False, indent=2))
        return
    console = Console()
    if not found:
        console.print(plain(f"No contacts in {store.path}" + (" match." if search else ".")))
        return
    table = Table(title=f"Contacts ({len(found)} of {total})", title_justify="left")
    for column in ("Number", "Name", "Note", "Source"):
        table.add_column(column)
    for contact in found:
        table.add_row(
            plain(numbers.display(contact.number, directory.region) or contact.number),
            plain(contact.name or ""),
            plain(contact.note or ""),
            plain(contact.source),
        )
    console.print(table)


@phonebook_app.command("import", cls=Command)
def import_contacts(
    file: Annotated[
        Path, typer.Argument(help="A CSV (number,name[,note]; UTF-8 or CP949) or vCard file; - for stdin.")
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv or vcard (default: from the file name or its content)."),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: RegionOpt = None,
) -> None:
    """Add or update contacts from a file (a row without a note keeps the contact's note)."""
    if fmt is not None and fmt not in ("csv", "vcard"):
        fail(f"--format must be csv or vcard, not {fmt!r}", USAGE)
    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file} ({exc.strerror or exc})", USAGE)
    read = read_entries(raw, fmt or detect_format(raw, None if str(file) == "-" else file.name), str(file))
    store, directory = _open(config, db, region, write=True)
    with closing(store):
        try:
            result = directory.import_entries(read.entries, source="import")
        except StoreError as exc:
            fail(str(exc), STORE)
    skipped = read.skipped + result.skipped
    for problem in skipped[:20]:
        print(f"cidbridge: skipped {problem}", file=sys.stderr)
    print(
        f"{result.added} added, {result.updated} updated, {result.unchanged} unchanged, "
        f"{len(skipped)} skipped ({store.path})"
    )


@phonebook_app.command("export", cls=Command)
def export_contacts(
    file: Annotated[Path | None, typer.Argument(help="Write here (default: standard output).")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: RegionOpt = None,
) -> None:
    """Write every contact as CSV (UTF-8 with a byte-order mark, for Excel)."""
    store, directory = _open(config, db, region, write=False)
    with closing(store):
        rows = [(c.number, c.name, c.note) for c in directory.contacts(limit=10_000_000)]
    text = "\ufeff" + write_csv(rows)
    if file is None or str(file) == "-":
        sys.stdout.write(text)
        return
    try:
        file.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        fail(f"cannot write {file} ({exc.strerror or exc})", USAGE)
    print(f"{len(rows)} contact(s) written to {file}")


@phonebook_app.command("set", cls=Command)
def set_contact(
    number: Annotated[str, typer.Argument(help="The number, written any way.")],
    name: Annotated[str | None, typer.Option("--name", help="The name to show.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note shown with the caller.")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: RegionOpt = None,
) -> None:
    """Add or change one contact."""
    if name is None and note is None:
        fail("give --name and/or --note", USAGE)
    store, directory = _open(config, db, region, write=True)
    with closing(store):
        existing = directory.lookup(number)
        name = name if name is not None else (existing.name if existing else None)
        note = note if note is not None else (existing.note if existing else None)
        try:
            contact = directory.set_contact(number, name, note, source="cli")
        except ValueError as exc:
            fail(str(exc), USAGE)
        except StoreError as exc:
            fail(str(exc), STORE)
    Console().print(plain(f"saved {contact.name or ''} ({contact.key})" if contact else "removed"))


@phonebook_app.command("remove", cls=Command)
def remove_contact(
    number: Annotated[str, typer.Argument(help="The number, written any way.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: RegionOpt = None,
) -> None:
    """Remove one contact."""
    store, directory = _open(config, db, region, write=True)
    with closing(store):
        if directory.key(number) is None:
            fail(f"{number!r} is not a phone number", USAGE)
        gone = directory.delete_contact(number)
    if gone is None:
        fail(f"there is no contact for {number!r}", USAGE)
    Console().print(plain(f"removed {gone.name or ''} ({gone.key})"))


# -- block ------------------------------------------------------------------------------


def _rule(number: str | None, prefix: str | None, withheld: str | None) -> tuple[str, str]:
    given = [
        (kind, value) for kind, value in ((NUMBER, number), (PREFIX, prefix), (WITHHELD, withheld)) if value
    ]
    if len(given) != 1:
        fail("give exactly one of: a NUMBER, --prefix DIGITS, --withheld REASON", USAGE)
    return given[0]


WithheldOpt = Annotated[
    str | None,
    typer.Option(
        "--withheld", metavar="REASON", help=f"Calls without a number: {', '.join(WITHHELD_REASONS)}."
    ),
]
PrefixOpt = Annotated[
    str | None, typer.Option("--prefix", metavar="DIGITS", help="Numbers starting with these.")
]


@block_app.command("add", cls=Command)
def block_add(
    number: Annotated[str | None, typer.Argument(help="A number to block, written any way.")] = None,
    prefix: PrefixOpt = None,
    withheld: WithheldOpt = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (shown in the list).")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: RegionOpt = None,
) -> None:
    """Block a number, a prefix or withheld numbers (the running daemon applies it at once)."""
    kind, value = _rule(number, prefix, withheld)
    store, directory = _open(config, db, region, write=True)
    with closing(store):
        try:
            rule, created = directory.add_block(kind, value, note)
        except BadRule as exc:
            fail(str(exc), USAGE)
        except StoreError as exc:
            fail(str(exc), STORE)
    print(
        f"{'blocked' if created else 'already blocked'}: {_describe(rule, directory.region)} (rule {rule.id})"
    )


@block_app.command("list", cls=Command)
def block_list(
    as_json: JsonOpt = False, config: ConfigOpt = None, db: DbOpt = None, region: RegionOpt = None
) -> None:
    """Print the block rules."""
    store, directory = _open(config, db, region, write=False)
    with closing(store):
        rules = directory.blocks()
    if as_json:
        rows = [{"id": r.id, "kind": r.kind, "value": r.value, "note": r.note} for r in rules]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    console = Console()
    if not rules:
        console.print("The block list is empty.")
        return
    table = Table(title=f"Blocked ({len(rules)})", title_justify="left")
    for column in ("Rule", "Blocks", "Note"):
        table.add_column(column)
    for rule in rules:
        table.add_row(str(rule.id), plain(_describe(rule, directory.region)), plain(rule.note or ""))
    console.print(table)


@block_app.command("remove", cls=Command)
def block_remove(
    rule: Annotated[
        str | None, typer.Argument(help="A rule's number in `block list`, or a blocked number.")
    ] = None,
    prefix: PrefixOpt = None,
    withheld: WithheldOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    region: RegionOpt = None,
) -> None:
    """Unblock: a rule by its number in the list, a number, a prefix or a withheld reason."""
    store, directory = _open(config, db, region, write=True)
    with closing(store):
        try:
            if rule is not None and rule.isdigit() and len(rule) < 7 and not (prefix or withheld):
                gone = directory.remove_block(int(rule))
            else:
                kind, value = _rule(rule, prefix, withheld)
                found = directory.find_block(kind, value)
                gone = directory.remove_block(found.id) if found else None
        except BadRule as exc:
            fail(str(exc), USAGE)
        except StoreError as exc:
            fail(str(exc), STORE)
    if gone is None:
        fail("no such rule; see `cidbridge block list`", USAGE)
    print(f"unblocked: {_describe(gone, directory.region)} (rule {gone.id})")


def _describe(rule: BlockRule, region: str) -> str:
    if rule.kind == NUMBER:
        return f"number {numbers.display(rule.value, region)}"
    if rule.kind == PREFIX:
        return f"numbers starting {rule.value}"
    return f"withheld numbers ({rule.value})"
