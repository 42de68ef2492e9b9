"""The ``[store]``, ``[calls]`` and ``[panel]`` sections: the call log, following calls, the panel.

The README's "Calls, history and catching up" section says what each key does for a
user.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from cidbridge.config.problems import Reader
from cidbridge.open_url import OpenUrlError
from cidbridge.open_url import check as check_open_url

__all__ = [
    "SCHEMA",
    "CallsConfig",
    "PanelConfig",
    "StoreConfig",
    "default_state_dir",
    "read_calls",
    "read_panel",
    "read_store",
]

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "store": {"path": str, "retention_days": int, "synchronous": str},
    "calls": {
        "ring_gap": (int, float),
        "ringless_timeout": (int, float),
        "region": str,
        "replay_calls": int,
        "phonebook": str,
    },
    "panel": {"open_url": str, "unknown_is_missed": bool, "missed_days": int},
}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path = field(default_factory=lambda: default_state_dir() / "calls.sqlite")
    retention_days: int = 90
    #: "normal": synced within a second, off the event loop; "full": fsync before broadcast.
    synchronous: str = "normal"


@dataclass(frozen=True, slots=True)
class CallsConfig:
    ring_gap: float = 8.0
    #: Seconds a call on a device that reports no rings waits for a pick-up.
    ringless_timeout: float = 45.0
    region: str = "KR"
    replay_calls: int = 20
    #: CSV of number, name[, note] whose names win over the network's (None: no phonebook).
    phonebook: Path | None = None


@dataclass(frozen=True, slots=True)
class PanelConfig:
    """What the panel (built-in or a React one) is told by ``GET /api/panel-config``."""

    #: A link template into the site's own system (see cidbridge/open_url.py); "" = none.
    open_url: str = ""
    #: Count calls whose answer a modem cannot see (outcome ``unknown``) as missed.
    unknown_is_missed: bool = False
    #: How far back the missed-call list looks.
    missed_days: int = 7


def default_state_dir() -> Path:
    """systemd's ``$STATE_DIRECTORY`` when run as a service, else the XDG state folder."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cidbridge"


def read_store(reader: Reader, raw: dict[str, Any]) -> StoreConfig:
    retention = raw.get("retention_days", 90)
    if retention < 1:
        reader.problem("store.retention_days", f"must be at least 1, not {retention}")
        retention = 90
    synchronous = raw.get("synchronous", "normal")
    if synchronous not in ("normal", "full"):
        reader.problem("store.synchronous", f'must be "normal" or "full", not {synchronous!r}')
        synchronous = "normal"
    if "path" in raw:
        return StoreConfig(Path(raw["path"]).expanduser(), retention, synchronous)
    return StoreConfig(retention_days=retention, synchronous=synchronous)


def read_calls(reader: Reader, raw: dict[str, Any]) -> CallsConfig:
    ring_gap = float(raw.get("ring_gap", 8.0))
    if not reader.within("calls.ring_gap", ring_gap, 1, 60, "seconds"):
        ring_gap = 8.0
    ringless = float(raw.get("ringless_timeout", 45.0))
    if not reader.within("calls.ringless_timeout", ringless, 5, 600, "seconds"):
        ringless = 45.0
    region = raw.get("region", "KR").upper()
    if not re.fullmatch(r"[A-Z]{2}", region) or region not in phonenumbers.SUPPORTED_REGIONS:
        reader.problem("calls.region", f'must be a two-letter country code like "KR", not {region!r}')
        region = "KR"
    replay = raw.get("replay_calls", 20)
    if replay < 0:
        reader.problem("calls.replay_calls", f"must be 0 or more, not {replay}")
        replay = 20
    phonebook = None
    if raw.get("phonebook"):
        # A relative path is relative to the config file, like a web server's includes.
        phonebook = Path(raw["phonebook"]).expanduser()
        if not phonebook.is_absolute() and reader.file:
            phonebook = Path(reader.file).resolve().parent / phonebook
    return CallsConfig(ring_gap, ringless, region, replay, phonebook)


def read_panel(reader: Reader, raw: dict[str, Any]) -> PanelConfig:
    open_url = raw.get("open_url", "")
    if open_url:
        try:
            check_open_url(open_url)
        except OpenUrlError as exc:
            reader.problem("panel.open_url", str(exc))
            open_url = ""
    days = raw.get("missed_days", 7)
    if not reader.within("panel.missed_days", days, 1, 366, "days"):
        days = 7
    return PanelConfig(open_url, bool(raw.get("unknown_is_missed", False)), days)
