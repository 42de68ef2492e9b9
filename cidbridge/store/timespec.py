"""Times as people type them in ``--since`` and ``?since=``: relative, a date, or a moment.

Accepted (a time without an offset is local time, like the panel shows):

* relative to now: ``30m``, ``2h``, ``7d``, ``1w`` (also ``90s``);
* ``today``, ``yesterday`` (local midnight);
* a date: ``2025-11-26`` (its local midnight);
* a moment: ``2025-11-26T09:30``, ``2025-11-26 09:30:15``, ``2025-11-26T09:30+09:00``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_RELATIVE = re.compile(r"(\d{1,12}(?:\.\d{1,6})?)\s*([smhdw])", re.ASCII)


class TimeSpecError(ValueError):
    """The text is not a time this module understands; the message shows what is."""


def parse_time(text: str, *, now: float | None = None) -> float:
    """Unix seconds for ``text`` (see the module doc); raise :class:`TimeSpecError`."""
    now = time.time() if now is None else now
    spec = text.strip().lower()
    relative = _RELATIVE.fullmatch(spec)
    if relative:
        return now - float(relative.group(1)) * _UNITS[relative.group(2)]
    if spec in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        if spec == "yesterday":
            midnight -= timedelta(days=1)
        return midnight.timestamp()
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except (ValueError, OverflowError):
        raise TimeSpecError(
            f"{text[:40]!r} is not a time; use e.g. 2h, 7d, today, 2025-11-26 or 2025-11-26T09:30"
        ) from None
