"""Call ids for the call log: ``<line>-<start>-<n>``, unique across restarts.

The call log keys a call's rows by its id.  A daemon that counted from 1 again after
a restart would merge its new calls into the old rows (found by
tests/reliability/test_crash.py), so each tracker's counter is prefixed with the wall
clock at its creation, in milliseconds (hex).  The sans-I/O call tracker
(:mod:`cidbridge.core.tracker`) reads no clock: a source whose calls are logged gives
its tracker :func:`restart_safe` ids (``new_call_id=``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable


def restart_safe(line: str, *, clock_ns: Callable[[], int] = time.time_ns) -> Callable[[], str]:
    """A factory of ids ``<line>-<ms since the epoch, hex>-<1, 2, …>`` for one tracker."""
    start = f"{clock_ns() // 1_000_000:x}"
    counter = itertools.count(1)
    return lambda: f"{line}-{start}-{next(counter)}"
