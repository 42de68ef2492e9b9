"""The ``cidbridge`` entry point: the typer app and the commands' registration."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cidbridge import __version__
from cidbridge.cli import calls, config_cmd, decode, directory, monitor, ports, probe, serve
from cidbridge.cli.help import Command, Group

app = typer.Typer(
    name="cidbridge",
    cls=Group,
    help="Caller ID from modems and caller-ID boxes, live in every browser.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"cidbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Caller ID from modems and caller-ID boxes, live in every browser."""


app.command("serve", cls=Command)(serve.serve)
app.command("demo", cls=Command)(serve.demo)
app.command("decode", cls=Command)(decode.decode)
app.command("calls", cls=Command)(calls.calls)
app.command("ports", cls=Command)(ports.ports)
app.command("probe", cls=Command)(probe.probe)
app.command("monitor", cls=Command)(monitor.monitor)
app.add_typer(config_cmd.app, name="config")
app.add_typer(directory.phonebook_app, name="phonebook")
app.add_typer(directory.block_app, name="block")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
