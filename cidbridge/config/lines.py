"""The ``[[lines]]`` tables: one serial port each, its device, format, modem dialogue and channels.

The README's "Run it on a real port" and "Blocking callers" sections say what each
key does for a user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cidbridge.config.problems import Reader, did_you_mean
from cidbridge.core.formats import FORMATS
from cidbridge.core.modem import COUNTRY_CODES, DEFAULT_CALLER_ID, DEFAULT_HANGUP, DEFAULT_INIT, country_code

__all__ = ["BLOCK_ACTIONS", "DEVICES", "SCHEMA", "LineConfig", "read_lines"]

DEVICES = ("modem", "box")
#: What a line does with a blocked caller: hang up (modems), or only mark the call.
BLOCK_ACTIONS = ("hangup", "mark")

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "lines": {
        "name": str,
        "port": str,
        "baudrate": int,
        "device": str,
        "format": str,
        "init": list,
        "command_timeout": (int, float),
        "caller_id": str,
        "country": str,
        "extra_init": list,
        "keepalive": (int, float),
        "channels": dict,
        "capture": str,
        "capture_max_bytes": int,
        "block_action": str,
        "hangup": list,
        "hangup_delay": (int, float),
    },
}


@dataclass(frozen=True, slots=True)
class LineConfig:
    name: str
    port: str
    baudrate: int = 115200
    device: str = "modem"
    format: str = "auto"
    #: AT commands sent in order after opening; ``A|B`` means "A, or B if A fails".
    init: tuple[str, ...] = DEFAULT_INIT
    #: Seconds to wait for OK/ERROR after each command.
    command_timeout: float = 3.0
    #: The caller-ID enable chain, sent after ``init`` and the country; "" sends none.
    caller_id: str = DEFAULT_CALLER_ID
    #: ``AT+GCI=`` country (T.35 hex such as ``B4``); None leaves the modem's own.
    country: str | None = None
    #: Commands sent after the caller-ID enable (``ATS24=0``, …).
    extra_init: tuple[str, ...] = ()
    #: Seconds without a byte from the modem before an ``AT`` checks it still answers; 0 = off.
    keepalive: float = 30.0
    #: A multi-line box's channel (as its frames give it) → the line name its calls show under.
    channels: dict[str, str] = field(default_factory=dict)
    #: File that receives every byte read, rotated at ``capture_max_bytes``; None = off.
    capture: Path | None = None
    capture_max_bytes: int = 10_000_000
    #: A blocked caller: "hangup" (answer and hang up, modems only) or "mark" (log and show only).
    block_action: str = "hangup"
    #: The hang-up dialogue: the commands in order, ``hangup_delay`` s before the last one.
    hangup: tuple[str, ...] = DEFAULT_HANGUP
    hangup_delay: float = 1.0


def read_lines(reader: Reader, raw_lines: Any) -> tuple[LineConfig, ...]:
    if not isinstance(raw_lines, list):
        reader.problem("lines", "must be an array of tables: write [[lines]]")
        return ()
    lines: list[LineConfig] = []
    for i, raw in enumerate(raw_lines):
        line = reader.section(lambda i=i, raw=raw: _line(reader, i, raw), lambda: None)
        if line is not None:
            lines.append(line)
    seen: set[str] = set()
    for i, raw in enumerate(raw_lines):
        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str) and name:
            if name in seen:
                reader.problem(f"lines[{i}].name", f"{name!r} is used by two lines; names must differ")
            seen.add(name)
    _check_channel_names(reader, lines)
    return tuple(lines)


def _line(reader: Reader, index: int, data: Any) -> LineConfig | None:
    key = f"lines[{index}]"
    before = len(reader.problems)
    raw = reader.table(data, "lines", key)
    for required in ("name", "port"):
        if not raw.get(required) and f"{key}.{required}" not in {p.key for p in reader.problems}:
            reader.problem(f"{key}.{required}", f"is required (a string, e.g. {_EXAMPLES[required]})")
    device = raw.get("device", "modem")
    if device not in DEVICES:
        reader.problem(f"{key}.device", f'must be "modem" or "box", not {device!r}')
    fmt = raw.get("format", "auto")
    if fmt not in FORMATS:
        reader.problem(f"{key}.format", f"unknown format {fmt!r}{did_you_mean(fmt, FORMATS)}")
    baudrate = raw.get("baudrate", 115200)
    if baudrate <= 0:
        reader.problem(f"{key}.baudrate", f"must be a positive integer, not {baudrate}")
    init = raw.get("init", list(DEFAULT_INIT))
    if not all(isinstance(cmd, str) for cmd in init):
        reader.problem(f"{key}.init", 'must be a list of AT command strings, e.g. ["ATZ", "AT+VCID=1"]')
    timeout = float(raw.get("command_timeout", 3.0))
    reader.within(f"{key}.command_timeout", timeout, 0.1, 60, "seconds")
    extras = _line_extras(reader, key, raw)
    if len(reader.problems) > before:
        return None
    return LineConfig(raw["name"], raw["port"], baudrate, device, fmt, tuple(init), timeout, **extras)


def _line_extras(reader: Reader, key: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The modem-dialogue, keep-alive, channel and capture keys of one line."""
    extras: dict[str, Any] = {"caller_id": raw.get("caller_id", DEFAULT_CALLER_ID)}
    if "country" in raw:
        code = country_code(raw["country"])
        if code is None:
            names = ", ".join(COUNTRY_CODES)
            reader.problem(
                f"{key}.country", f'must be a T.35 code like "B4" or one of {names}, not {raw["country"]!r}'
            )
        extras["country"] = code
    extra_init = raw.get("extra_init", [])
    if not all(isinstance(cmd, str) for cmd in extra_init):
        reader.problem(f"{key}.extra_init", 'must be a list of AT command strings, e.g. ["ATS24=0"]')
    extras["extra_init"] = tuple(extra_init)
    keepalive = float(raw.get("keepalive", 30.0))
    if keepalive != 0 and not 0.2 <= keepalive <= 3600:
        reader.problem(f"{key}.keepalive", f"must be 0 (off) or 0.2-3600 seconds, not {keepalive}")
    extras["keepalive"] = keepalive
    channels = raw.get("channels", {})
    for channel, name in channels.items():
        if not isinstance(name, str) or not name:
            reader.problem(f"{key}.channels.{channel}", "must be a line name (a non-empty string)")
    extras["channels"] = dict(channels)
    if "capture" in raw:
        extras["capture"] = Path(raw["capture"]).expanduser()
    max_bytes = raw.get("capture_max_bytes", 10_000_000)
    if max_bytes < 1024:
        reader.problem(f"{key}.capture_max_bytes", f"must be at least 1024, not {max_bytes}")
    extras["capture_max_bytes"] = max_bytes
    extras.update(_blocking_keys(reader, key, raw))
    return extras


def _blocking_keys(reader: Reader, key: str, raw: dict[str, Any]) -> dict[str, Any]:
    """What a line does with a blocked caller: ``block_action``, ``hangup``, ``hangup_delay``."""
    device = raw.get("device", "modem")
    action = raw.get("block_action", "hangup" if device == "modem" else "mark")
    if action not in BLOCK_ACTIONS:
        reader.problem(f"{key}.block_action", f'must be "hangup" or "mark", not {action!r}')
    elif action == "hangup" and device != "modem":
        reader.problem(
            f"{key}.block_action", 'a caller-ID box cannot hang up; use "mark" (or device = "modem")'
        )
    hangup = raw.get("hangup", list(DEFAULT_HANGUP))
    if not hangup or not all(isinstance(cmd, str) and cmd.strip() for cmd in hangup):
        reader.problem(f"{key}.hangup", 'must be a list of AT commands, e.g. ["ATH1", "ATH0"]')
        hangup = list(DEFAULT_HANGUP)
    delay = float(raw.get("hangup_delay", 1.0))
    reader.within(f"{key}.hangup_delay", delay, 0, 10, "seconds")
    return {"block_action": action, "hangup": tuple(hangup), "hangup_delay": delay}


def _check_channel_names(reader: Reader, lines: list[LineConfig]) -> None:
    """A channel's line name must not be another line's (or another channel's) name."""
    owner: dict[str, str] = {line.name: line.name for line in lines}
    for i, line in enumerate(lines):
        for channel, name in line.channels.items():
            if owner.setdefault(name, line.name) != line.name:
                reader.problem(
                    f"lines[{i}].channels.{channel}", f"{name!r} is already the name of another line"
                )


_EXAMPLES = {"name": 'name = "front-desk"', "port": 'port = "/dev/ttyACM0"'}
