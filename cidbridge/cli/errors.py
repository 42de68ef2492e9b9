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

``serve`` exits 2, 3 or 4 at start-up only.  A serial port that is missing, refused or
busy never stops it: the line is reported down with the reason and retried, so the
service survives a USB device plugged in after boot.  Status 5 is ``probe`` and
``monitor``'s.  Under systemd, status 2 is not restarted (``RestartPreventExitStatus``).
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
