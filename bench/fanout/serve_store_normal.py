"""``cidbridge serve`` with the call log at ``synchronous=NORMAL``: a what-if for run.py.

The daemon commits every event with ``synchronous=FULL`` (an fsync per event, so a
call a browser has seen survives a power cut) before it sends it.  This wrapper
runs the same daemon with SQLite's ``NORMAL`` (WAL: committed rows survive the
process being killed, not the machine losing power) to show how much of
cidbridge's latency is that fsync.  Bench-only; the product has no such switch.

    python bench/fanout/serve_store_normal.py serve --config FILE
"""

from __future__ import annotations

import sys
from typing import Any

from cidbridge.cli.main import main
from cidbridge.store import calllog

_original_init = calllog.CallLog.__init__


def _init_normal(self: calllog.CallLog, *args: Any, **kwargs: Any) -> None:
    kwargs["synchronous"] = "NORMAL"
    _original_init(self, *args, **kwargs)


if __name__ == "__main__":
    calllog.CallLog.__init__ = _init_normal  # type: ignore[method-assign]
    sys.argv[0] = "cidbridge"
    main()
