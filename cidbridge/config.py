"""The configuration: one TOML file, validated once into a :class:`Config`.

Everything the daemon needs is read and checked here, before anything is opened, so
a mistake is one clear message naming the key (:class:`ConfigError`), not a failure
an hour later.  ``config.example.toml`` documents every key.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cidbridge.core.formats import FORMATS

DEVICES = ("modem", "box")
DEFAULT_INIT = ("ATZ", "ATE0V1", "AT+VCID=1|AT#CID=1")


class ConfigError(Exception):
    """The configuration is wrong.  ``str()`` is one line: where, which key, what to do."""

    def __init__(self, key: str, message: str, *, file: str | None = None, line: int | None = None):
        self.key = key
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "config"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.key}: {self.message}"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    #: Named tokens: ``{"default": "…"}``.  Required when ``host`` is not loopback.
    tokens: dict[str, str] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    event_name: str = "cti-event"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    path: Path = field(default_factory=lambda: default_state_dir() / "calls.sqlite")
    retention_days: int = 90


@dataclass(frozen=True, slots=True)
class CallsConfig:
    ring_gap: float = 8.0
    region: str = "KR"
    replay_calls: int = 20


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


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    lines: tuple[LineConfig, ...] = ()
    log_level: str = "info"
    source: str | None = None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_state_dir() -> Path:
    """systemd's ``$STATE_DIRECTORY`` when run as a service, else the XDG state folder."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cidbridge"


# -- loading -----------------------------------------------------------------------

_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "server": {
        "host": str,
        "port": int,
        "token": str,
        "tokens": dict,
        "cors_origins": list,
        "event_name": str,
    },
    "store": {"path": str, "retention_days": int},
    "calls": {"ring_gap": (int, float), "region": str, "replay_calls": int},
    "lines": {
        "name": str,
        "port": str,
        "baudrate": int,
        "device": str,
        "format": str,
        "init": list,
        "command_timeout": (int, float),
    },
    "log": {"level": str},
}


class _Reader:
    """Checks one parsed TOML document against :data:`_SCHEMA`, naming keys in errors."""

    def __init__(self, text: str, file: str | None) -> None:
        self.text = text
        self.file = file

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(key, message, file=self.file, line=locate(self.text, key))

    def table(self, data: Any, section: str, key: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.error(key, "must be a table")
        schema = _SCHEMA[section]
        for name, value in data.items():
            if name not in schema:
                raise self.error(f"{key}.{name}", f"unknown key{_did_you_mean(name, schema)}")
            expected = schema[name]
            if isinstance(value, bool) or not isinstance(value, expected):
                kinds = expected if isinstance(expected, tuple) else (expected,)
                want = " or ".join(_TOML_NAMES[k] for k in kinds)
                raise self.error(f"{key}.{name}", f"must be {want}, not {value!r}")
        return data


_TOML_NAMES = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table"}


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(choices)}"


def locate(text: str, key: str) -> int | None:
    """Best-effort line number of a dotted key (``lines[1].port``) in TOML ``text``."""
    match = re.fullmatch(r"(\w+)(?:\[(\d+)\])?(?:\.([\w-]+))?(?:\.([\w-]+))?", key)
    if not match:
        return None
    section, index, leaf, subleaf = match.groups()
    want = int(index) if index is not None else None
    current, count = None, {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.fullmatch(r"(\[\[?)\s*([\w.-]+)\s*\]\]?", line)
        if header:
            current = header.group(2)
            if header.group(1) == "[[":
                count[current] = count.get(current, -1) + 1
            in_place = current == section and (want is None or count.get(current) == want)
            if in_place and leaf is None:
                return number
            if current == f"{section}.{leaf}" and subleaf is None:
                return number
            continue
        if current == section and (want is None or count.get(current) == want):
            if leaf and re.match(rf"{re.escape(leaf)}\s*=", line):
                return number
        elif current == f"{section}.{leaf}" and subleaf and re.match(rf"{re.escape(subleaf)}\s*=", line):
            return number
    return None


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` on any problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file", "not found; create it from config.example.toml", file=file) from None
    except OSError as exc:
        raise ConfigError("file", f"cannot be read ({exc.strerror})", file=file) from None
    return parse(text, file=file)


def parse(text: str, *, file: str | None = None) -> Config:
    """Validate TOML ``text`` into a :class:`Config`; raise :class:`ConfigError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            "syntax", f"invalid TOML ({exc})", file=file, line=int(match.group(1)) if match else None
        ) from None
    reader = _Reader(text, file)
    for name in data:
        if name not in _SCHEMA:
            raise reader.error(name, f"unknown section{_did_you_mean(name, _SCHEMA)}")
    server = _server(reader, reader.table(data.get("server", {}), "server", "server"))
    store = _store(reader, reader.table(data.get("store", {}), "store", "store"))
    calls = _calls(reader, reader.table(data.get("calls", {}), "calls", "calls"))
    raw_lines = data.get("lines", [])
    if not isinstance(raw_lines, list):
        raise reader.error("lines", "must be an array of tables: write [[lines]]")
    lines = tuple(_line(reader, i, raw) for i, raw in enumerate(raw_lines))
    names = [line.name for line in lines]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise reader.error(f"lines[{i}].name", f"{name!r} is used by two lines; names must differ")
    log = reader.table(data.get("log", {}), "log", "log")
    level = log.get("level", "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        raise reader.error("log.level", "must be one of debug, info, warning, error")
    return Config(server, store, calls, lines, level, file)


def _server(reader: _Reader, raw: dict[str, Any]) -> ServerConfig:
    tokens = dict(raw.get("tokens", {}))
    for name, value in tokens.items():
        if not isinstance(value, str) or not value:
            raise reader.error(f"server.tokens.{name}", "must be a non-empty string")
    if raw.get("token"):
        tokens.setdefault("default", raw["token"])
    port = raw.get("port", 8765)
    if not 0 <= port <= 65535:
        raise reader.error("server.port", f"must be 0-65535 (0 = any free port), not {port}")
    server = ServerConfig(
        host=raw.get("host", "127.0.0.1"),
        port=port,
        tokens=tokens,
        cors_origins=tuple(str(o) for o in raw.get("cors_origins", [])),
        event_name=raw.get("event_name", "cti-event"),
    )
    if not server.loopback and not tokens:
        raise reader.error(
            "server.token",
            f"required because host {server.host!r} is reachable from other machines; "
            'set token = "<a long random string>" or host = "127.0.0.1"',
        )
    return server


def _store(reader: _Reader, raw: dict[str, Any]) -> StoreConfig:
    retention = raw.get("retention_days", 90)
    if retention < 1:
        raise reader.error("store.retention_days", f"must be at least 1, not {retention}")
    if "path" in raw:
        return StoreConfig(Path(raw["path"]).expanduser(), retention)
    return StoreConfig(retention_days=retention)


def _calls(reader: _Reader, raw: dict[str, Any]) -> CallsConfig:
    ring_gap = float(raw.get("ring_gap", 8.0))
    if not 1.0 <= ring_gap <= 60.0:
        raise reader.error("calls.ring_gap", f"must be 1-60 seconds, not {ring_gap}")
    region = raw.get("region", "KR").upper()
    if not re.fullmatch(r"[A-Z]{2}", region):
        raise reader.error("calls.region", f'must be a two-letter country code like "KR", not {region!r}')
    replay = raw.get("replay_calls", 20)
    if replay < 0:
        raise reader.error("calls.replay_calls", "must be 0 or more")
    return CallsConfig(ring_gap, region, replay)


def _line(reader: _Reader, index: int, data: Any) -> LineConfig:
    key = f"lines[{index}]"
    raw = reader.table(data, "lines", key)
    for required in ("name", "port"):
        if not raw.get(required):
            raise reader.error(f"{key}.{required}", "is required")
    device = raw.get("device", "modem")
    if device not in DEVICES:
        raise reader.error(f"{key}.device", f'must be "modem" or "box", not {device!r}')
    fmt = raw.get("format", "auto")
    if fmt not in FORMATS:
        raise reader.error(f"{key}.format", f"unknown format {fmt!r}{_did_you_mean(fmt, FORMATS)}")
    baudrate = raw.get("baudrate", 115200)
    if baudrate <= 0:
        raise reader.error(f"{key}.baudrate", f"must be a positive integer, not {baudrate}")
    init = raw.get("init", list(DEFAULT_INIT))
    if not all(isinstance(cmd, str) for cmd in init):
        raise reader.error(f"{key}.init", "must be a list of AT command strings")
    timeout = float(raw.get("command_timeout", 3.0))
    if not 0.1 <= timeout <= 60:
        raise reader.error(f"{key}.command_timeout", "must be 0.1-60 seconds")
    return LineConfig(raw["name"], raw["port"], baudrate, device, fmt, tuple(init), timeout)
