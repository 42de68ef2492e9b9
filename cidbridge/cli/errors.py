"""Exit statuses and the one-line error every command ends with when it cannot run.

Documented in the README ("Exit statuses"):

====  =============================================================
0     success
1     an unexpected failure (a bug: please report it with the log)
2     bad usage or a bad configuration file
3     the call log cannot be opened or written
4     the web server cannot listen (port in use, bad host)
5     a serial port cannot be used (missing, permission, busy)
130   interrupted (Ctrl-C)
====  =============================================================
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

OK = 0
FAILURE = 1
USAGE = 2
STORE = 3
NETWORK = 4
PORT = 5
INTERRUPTED = 130


def fail(message: str, status: int) -> NoReturn:
    """Print ``cidbridge: error: <message>`` on stderr and exit with ``status``."""
    print(f"cidbridge: error: {message}", file=sys.stderr)
    raise typer.Exit(status)
