"""``cidbridge probe PORT``: is it a modem or a box, what works, and the ``[[lines]]`` block to paste."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import serial
import typer
from rich.console import Console
from rich.table import Table

from cidbridge.cli.errors import PORT, fail
from cidbridge.cli.show import json_safe, markup_safe
from cidbridge.lines import probe as probing
from cidbridge.lines.diagnose import describe_open_error, modemmanager_running
from cidbridge.lines.discovery import find_port
from cidbridge.lines.port import is_url
from cidbridge.lines.probe import ProbeReport, lines_block


def probe(
    port: Annotated[str, typer.Argument(help="Device path or pyserial URL (`cidbridge ports` lists them).")],
    baudrate: Annotated[int, typer.Option(help="Serial speed (modems 115200, Korean boxes 19200).")] = 115200,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each AT answer.")] = 1.0,
    listen: Annotated[
        float, typer.Option(help="Seconds to listen for a caller-ID box's frame when nothing answers AT.")
    ] = 30.0,
    name: Annotated[str, typer.Option(help="Line name to put in the [[lines]] block.")] = "front-desk",
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Find out what is on PORT (a modem? which commands? a box? which format?) and print its config."""
    err = Console(stderr=True)

    def progress(step: str) -> None:
        err.print(f"[dim]probe: {step}[/dim]", highlight=False)

    try:
        report = asyncio.run(probing.probe(port, baudrate, timeout=timeout, listen=listen, progress=progress))
    except (serial.SerialException, OSError, ValueError) as exc:
        fail(describe_open_error(port, exc), PORT)
    stable = None if is_url(port) else getattr(find_port(port), "stable_path", None)
    block = lines_block(report, path=stable or port, name=name)
    if as_json:
        print(json_safe(_as_json(report, block), indent=2))
        return
    _render(Console(), report, block)


def _render(console: Console, report: ProbeReport, block: str) -> None:
    if report.modem:
        _render_modem(console, report)
    else:
        _render_box(console, report)
    console.print("\nPaste this into the config:", style="bold")
    # Plain print: no wrapping or colour codes in what is meant to be copied.
    print(block, flush=True)


def _render_modem(console: Console, report: ProbeReport) -> None:
    console.print(f"[bold green]A modem answers on {report.port}.[/bold green]")
    table = Table("Command", "Answer", title="Identification", title_justify="left")
    for response in report.identity:
        table.add_row(markup_safe(response.command), markup_safe(response.text))
    console.print(table)
    cid = Table("Caller-ID command", "Result", title="Caller ID", title_justify="left")
    for response in report.caller_id:
        mark = "[green]OK[/green]" if response.ok else f"[red]{markup_safe(response.text)}[/red]"
        cid.add_row(markup_safe(response.command), mark)
    console.print(cid)
    working = report.working_caller_id
    if working:
        console.print(f"Caller ID is enabled with [bold]{working}[/bold].")
    else:
        console.print(
            "[red]No caller-ID command answered OK.[/red]  Look up your chipset's command "
            '(README, "Modems") and set caller_id; a modem that only ever shows RING may not '
            "support caller ID at all."
        )
    if report.forgets_after_reset:
        console.print(
            "This modem turns caller ID off again after ATZ (many Conexant modems do); "
            "cidbridge re-sends it after every reset, so there is nothing to do."
        )
    if report.country:
        console.print(
            f"Country (AT+GCI?): [bold]{report.country}[/bold].  It selects how the modem listens "
            'for caller ID; if only RING arrives, set country (e.g. "KR", "B4" for the UK).'
        )
    if modemmanager_running():
        console.print(
            "[yellow]ModemManager is running and may probe this modem too; "
            "see the README's udev rule.[/yellow]"
        )


def _render_box(console: Console, report: ProbeReport) -> None:
    console.print(
        f"[bold]Nothing answered AT on {report.port}:[/bold] not a modem (or the baud rate is wrong).  "
        "Listening as a caller-ID box."
    )
    if not report.heard:
        console.print(
            "[yellow]Nothing was heard.[/yellow]  Call this line while probing; check the baud rate "
            "(Korean adapters 19200, Whozz Calling 9600) and the cable."
        )
        return
    console.print(f"Heard {len(report.heard)} bytes.")
    if not report.formats:
        console.print(
            "[yellow]No decoder recognised them.[/yellow]  Capture them with "
            "`cidbridge monitor PORT --capture FILE` and open an issue with the file."
        )
        return
    table = Table(
        "Format", "Calls", "Frames", "First caller", title="Formats that decode it", title_justify="left"
    )
    for guess in report.formats:
        first = next((f for f in guess.frames if f.kind == "cid"), None)
        who = f"{getattr(first, 'number', None) or '-'} {getattr(first, 'name', None) or ''}" if first else ""
        table.add_row(guess.format, str(guess.calls), str(guess.valid), markup_safe(who))
    console.print(table)


def _as_json(report: ProbeReport, block: str) -> dict[str, Any]:
    def answers(responses: list[Any]) -> list[dict[str, Any]]:
        return [
            {"command": r.command, "ok": r.ok, "lines": r.lines, "timed_out": r.timed_out} for r in responses
        ]

    return {
        "port": report.port,
        "baudrate": report.baudrate,
        "device": "modem" if report.modem else "box",
        "identity": answers(report.identity),
        "caller_id": answers(report.caller_id),
        "working_caller_id": report.working_caller_id,
        "forgets_after_reset": report.forgets_after_reset,
        "country": report.country,
        "heard_bytes": len(report.heard),
        "formats": [
            {"format": g.format, "calls": g.calls, "frames": [f.to_json() for f in g.frames]}
            for g in report.formats
        ],
        "lines_block": block,
    }
