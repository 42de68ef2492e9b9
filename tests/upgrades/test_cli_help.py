"""The real ``--help`` of every command: placeholders, not Python types, and nothing after a flag.

typer 0.27+ prints ``--since <str>`` and ``--port <list[str]>``, and 0.29 ``--version <bool>``
(cidbridge/cli/help.py sets the placeholders instead).  The command tree is walked, so a
new command or option is checked without editing this file; each help is the output of
``python -m cidbridge … --help`` as a user sees it, under whatever typer is installed
(the pinned one in tests/run, the lowest allowed one in .ci/lowest).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest
import typer.main

from cidbridge.cli.main import app

#: What typer ≥ 0.27 writes instead of a placeholder.
TYPE_LABEL = re.compile(r"<(?:bool|str|int|float|path|file|dir|datetime|uuid|list\[[^\]]*\]|[a-z]+ range)>")


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def _help(path: tuple[str, ...]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cidbridge", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert result.returncode == 0, f"cidbridge {' '.join(path)} --help failed:\n{result.stderr}"
    return result.stdout


def _row(text: str, option: str) -> str:
    """The rest of the help row of ``option`` after its names (long, then short)."""
    match = re.search(rf"(?m){re.escape(option)}(?:[ ,/]+-[A-Za-z])?\s+(.*)$", text)
    assert match, f"{option} is not in the help:\n{text}"
    return match.group(1)


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda p: " ".join(p) or "cidbridge")
def test_help_shows_placeholders_and_no_python_types(path):
    typer_version = version("typer")
    command = dict(COMMANDS)[path]
    text = _help(path)
    labels = TYPE_LABEL.findall(text)
    assert not labels, f"typer {typer_version}: `cidbridge {' '.join(path)} --help` shows {labels}:\n{text}"
    assert "BOOLEAN" not in text, text
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    for option in [*options, None]:
        long = "--help" if option is None else max(option.opts, key=len)
        first_word = "Show" if option is None else option.help.split()[0]
        row = _row(text, long)
        flag = option is None or option.is_flag
        expected = first_word if flag else (option.metavar or option.name.upper())
        assert row.split()[0] == expected, (
            f"typer {typer_version}: `cidbridge {' '.join(path)} --help`: {long} should be followed by "
            f"{expected!r}, not {row!r}"
        )
