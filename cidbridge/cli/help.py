"""``--help`` that reads the same under every typer version cidbridge allows.

typer 0.27 and later print each option's Python type in the help (``--since <str>``,
``--port <list[str]>``), and 0.29 prints ``<bool>`` after flags that take no value
(``--version <bool>``, ``--help <bool>``); earlier versions print click's ``TEXT``
and nothing after a flag.  cidbridge sets the placeholder itself, through the
public ``metavar`` of click's parameters: a flag gets none, an option or argument
gets its own (``--since WHEN``) or, failing that, its name in capitals
(``--baudrate BAUDRATE``), the way argparse and most Unix tools write it.  A
positional argument is shown by its name alone: typer 0.27 and later add a type
column (``PORT <str>``) through ``display_type_rich``, which is turned off for it
(typer's one internal name used here; the help test fails if it changes).
tests/upgrades/test_cli_help.py reads the real ``--help`` of every command.
"""

from __future__ import annotations

from typing import Any

import typer.core


def tidy_metavars(params: list[Any]) -> None:
    """Give every parameter the placeholder its help line should show (see the module doc)."""
    for param in params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
        elif param.metavar is None and param.name:
            param.metavar = param.name.upper()
        if getattr(param, "param_type_name", "") == "argument" and hasattr(param, "display_type_rich"):
            param.display_type_rich = _no_type


def _no_type(ctx: Any = None) -> None:
    return None


class Command(typer.core.TyperCommand):
    """A typer command whose help shows cidbridge's placeholders."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        tidy_metavars(self.get_params(ctx))
        super().format_help(ctx, formatter)


class Group(typer.core.TyperGroup):
    """A typer group (``cidbridge``, ``cidbridge config``) whose help shows cidbridge's placeholders."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        tidy_metavars(self.get_params(ctx))
        super().format_help(ctx, formatter)
