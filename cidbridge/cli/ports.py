"""``cidbridge ports``: every serial port, its stable path, and what cidbridge knows about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cidbridge.lines.discovery import BY_ID_DIR, list_serial_ports


def ports(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array instead of a table.")] = False,
    by_id_dir: Annotated[
        Path, typer.Option("--by-id-dir", hidden=True, help="Where udev's by-id links are (tests).")
    ] = BY_ID_DIR,
) -> None:
    """List serial ports with their /dev/serial/by-id path, USB ids and caller-ID hints."""
    found = list_serial_ports(by_id_dir)
    if as_json:
        print(json.dumps([port.to_json() for port in found], indent=2))
        return
    console = Console()
    if not found:
        console.print("No serial ports found.  Plug the modem or box in, then run this again.")
        return
    table = Table(title="Serial ports", title_justify="left", show_lines=True)
    table.add_column("Port (use this path)", overflow="fold")
    table.add_column("VID:PID")
    table.add_column("Manufacturer / product", overflow="fold")
    table.add_column("Serial")
    table.add_column("Hint", overflow="fold")
    for port in found:
        where = port.stable_path
        if port.by_id:
            where += f"\n[dim]→ {port.device}[/dim]"
        maker = " / ".join(part for part in (port.manufacturer, port.product or port.description) if part)
        table.add_row(
            where,
            port.usb_id or "",
            maker,
            port.serial_number or "",
            f"[green]{port.hint}[/green]" if port.hint else "",
        )
    console.print(table)
    console.print(
        "Put the /dev/serial/by-id/… path in the config: it survives replugging.  "
        "Next: [bold]cidbridge probe PORT[/bold] to find the init and format."
    )
