"""The configuration: one TOML file, validated once into a :class:`Config`.

Everything the daemon needs is read and checked here, before anything is opened, so
a mistake is a clear message naming the key (:class:`ConfigError`), not a failure
an hour later.  ``config.example.toml`` documents every key (a test keeps it so).

Validation collects *every* problem in the file, so ``cidbridge config check`` can
list them all at once; :func:`parse` and :func:`load` raise the first one (with the
others in :attr:`ConfigError.problems`), which is what the daemon needs.  Collecting
and locating problems is :mod:`cidbridge.config_problems`' job; this module holds the
schema and what each value means.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from cidbridge.config_outputs import (
    MQTT_SCHEMA,
    WEBHOOK_EVENTS,
    WEBHOOK_SCHEMA,
    MqttConfig,
    WebhookConfig,
    read_mqtt,
    read_webhooks,
)
from cidbridge.config_problems import ConfigError, Reader, did_you_mean, locate, read_text
from cidbridge.config_protocols import NcidConfig, UdpConfig, read_ncid, read_udp
from cidbridge.core.formats import FORMATS
from cidbridge.core.modem import COUNTRY_CODES, DEFAULT_CALLER_ID, DEFAULT_HANGUP, DEFAULT_INIT, country_code
from cidbridge.open_url import OpenUrlError
from cidbridge.open_url import check as check_open_url

__all__ = [
    "DEVICES",
    "LOG_LEVELS",
    "SCHEMA",
    "WEBHOOK_EVENTS",
    "BroadcastConfig",
    "CallsConfig",
    "Config",
    "ConfigError",
    "LineConfig",
    "MqttConfig",
    "NcidConfig",
    "PanelConfig",
    "ServerConfig",
    "StoreConfig",
    "UdpConfig",
    "WebhookConfig",
    "check",
    "default_state_dir",
    "is_loopback",
    "load",
    "locate",
    "parse",
    "read_text",
]

DEVICES = ("modem", "box")
#: What a line does with a blocked caller: hang up (modems), or only mark the call.
BLOCK_ACTIONS = ("hangup", "mark")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    #: Named tokens: ``{"default": "…"}``.  Required when ``host`` is not loopback.
    tokens: dict[str, str] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    event_name: str = "cti-event"
    #: PEM certificate chain and private key: serve HTTPS/WSS when both are set.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Socket.IO connection attempts one address may make at once, then per second.
    connect_burst: int = 100
    connect_rate: float = 10.0
    #: Host names (besides loopback and ``host``) browsers may use to reach the daemon.
    allowed_hosts: tuple[str, ...] = ()
    #: Proxies whose ``X-Forwarded-For`` is believed (addresses or networks); none by default.
    trusted_proxies: tuple[str, ...] = ()
    #: Connections open at once, in all and from one address (lowered to fit RLIMIT_NOFILE).
    max_connections: int = 1000
    max_connections_per_address: int = 100

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    """Scale-out (see ``cidbridge.server.cluster``): empty ``redis_url`` = one process."""

    redis_url: str = ""
    #: This node's name, unique in the cluster; empty = the host name.
    node: str = ""
    channel: str = "cidbridge"


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


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    lines: tuple[LineConfig, ...] = ()
    log_level: str = "info"
    source: str | None = None
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)
    ncid: NcidConfig = field(default_factory=NcidConfig)
    udp: UdpConfig = field(default_factory=UdpConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    panel: PanelConfig = field(default_factory=PanelConfig)


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

#: Every section and key a config file may hold, with the TOML type(s) it must have.
#: ``config.example.toml`` documents each of them (tests/service/test_config_doc.py).
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "server": {
        "host": str,
        "port": int,
        "token": str,
        "tokens": dict,
        "cors_origins": list,
        "event_name": str,
        "tls_cert": str,
        "tls_key": str,
        "connect_burst": int,
        "connect_rate": (int, float),
        "allowed_hosts": list,
        "trusted_proxies": list,
        "max_connections": int,
        "max_connections_per_address": int,
    },
    "broadcast": {"redis_url": str, "node": str, "channel": str},
    "store": {"path": str, "retention_days": int, "synchronous": str},
    "calls": {
        "ring_gap": (int, float),
        "ringless_timeout": (int, float),
        "region": str,
        "replay_calls": int,
        "phonebook": str,
    },
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
    "log": {"level": str},
    "ncid": {
        "enabled": bool,
        "host": str,
        "port": int,
        "allowed_clients": list,
        "call_log": int,
        "max_clients": int,
    },
    "udp": {
        "listen": bool,
        "listen_host": str,
        "listen_port": int,
        "allowed_sources": list,
        "channels": dict,
        "send": bool,
        "send_to": str,
        "send_port": int,
        "unit": int,
        "serial": str,
        "line_numbers": dict,
    },
    "mqtt": MQTT_SCHEMA,
    "webhooks": WEBHOOK_SCHEMA,
    "panel": {"open_url": str, "unknown_is_missed": bool, "missed_days": int},
}
#: The public name of the schema (read by ``config check`` and the tests).
SCHEMA = _SCHEMA
#: The names this module's section readers use (the machinery is in config_problems).
_Reader = Reader
_did_you_mean = did_you_mean


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` on any problem."""
    return parse(read_text(path), file=str(path))


def parse(text: str, *, file: str | None = None) -> Config:
    """Validate TOML ``text`` into a :class:`Config`; raise the first :class:`ConfigError`.

    The error's ``problems`` lists every problem found.
    """
    config, problems = check(text, file=file)
    if problems:
        first = problems[0]
        first.problems = problems
        raise first
    assert config is not None
    return config


def check(text: str, *, file: str | None = None) -> tuple[Config | None, list[ConfigError]]:
    """Validate TOML ``text``: the config (None if it has problems) and every problem, in file order."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        return None, [ConfigError("syntax", f"invalid TOML ({exc})", file=file, line=line)]
    reader = _Reader(text, file, _SCHEMA)
    for name in data:
        if name not in _SCHEMA:
            reader.problem(name, f"unknown section{_did_you_mean(name, _SCHEMA)}")
    server = reader.section(
        lambda: _server(reader, reader.table(data.get("server", {}), "server", "server")), ServerConfig
    )
    store = reader.section(
        lambda: _store(reader, reader.table(data.get("store", {}), "store", "store")), StoreConfig
    )
    calls = reader.section(
        lambda: _calls(reader, reader.table(data.get("calls", {}), "calls", "calls")), CallsConfig
    )
    lines = reader.section(lambda: _lines(reader, data.get("lines", [])), tuple)
    log = reader.table(data.get("log", {}), "log", "log")
    level = str(log.get("level", "info")).lower()
    if level not in LOG_LEVELS:
        reader.problem("log.level", f"must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    broadcast = reader.section(
        lambda: _broadcast(reader, reader.table(data.get("broadcast", {}), "broadcast", "broadcast")),
        BroadcastConfig,
    )
    ncid = reader.section(
        lambda: read_ncid(reader, reader.table(data.get("ncid", {}), "ncid", "ncid")), NcidConfig
    )
    udp = reader.section(
        lambda: read_udp(reader, reader.table(data.get("udp", {}), "udp", "udp"), lines), UdpConfig
    )
    panel = reader.section(
        lambda: _panel(reader, reader.table(data.get("panel", {}), "panel", "panel")), PanelConfig
    )
    # MQTT and webhooks (cidbridge.config_outputs).
    mqtt = reader.section(lambda: read_mqtt(reader, data.get("mqtt", {})), MqttConfig)
    webhooks = reader.section(lambda: read_webhooks(reader, data.get("webhooks", [])), tuple)
    problems = sorted(reader.problems, key=lambda p: p.line if p.line is not None else 0)
    if problems:
        return None, problems
    sections = {"ncid": ncid, "udp": udp, "panel": panel, "mqtt": mqtt, "webhooks": webhooks}
    return Config(server, store, calls, lines, level, file, broadcast=broadcast, **sections), []


def _panel(reader: _Reader, raw: dict[str, Any]) -> PanelConfig:
    open_url = raw.get("open_url", "")
    if open_url:
        try:
            check_open_url(open_url)
        except OpenUrlError as exc:
            reader.problem("panel.open_url", str(exc))
            open_url = ""
    days = raw.get("missed_days", 7)
    if not 1 <= days <= 366:
        reader.problem("panel.missed_days", f"must be 1-366 days, not {days}")
        days = 7
    return PanelConfig(open_url, bool(raw.get("unknown_is_missed", False)), days)


def _server(reader: _Reader, raw: dict[str, Any]) -> ServerConfig:
    tokens: dict[str, str] = {}
    for name, value in raw.get("tokens", {}).items():
        if not isinstance(value, str) or not value:
            reader.problem(f"server.tokens.{name}", "must be a non-empty string")
        elif _token_too_short(reader, f"server.tokens.{name}", value):
            pass
        else:
            tokens[name] = value
    if raw.get("token") and not _token_too_short(reader, "server.token", raw["token"]):
        tokens.setdefault("default", raw["token"])
    port = raw.get("port", 8765)
    if not 0 <= port <= 65535:
        reader.problem("server.port", f"must be 0-65535 (0 = any free port), not {port}")
        port = 8765
    server = ServerConfig(
        host=raw.get("host", "127.0.0.1"),
        port=port,
        tokens=tokens,
        cors_origins=tuple(str(o) for o in raw.get("cors_origins", [])),
        event_name=raw.get("event_name", "cti-event"),
        tls_cert=_tls_file(reader, raw, "tls_cert"),
        tls_key=_tls_file(reader, raw, "tls_key"),
        connect_burst=raw.get("connect_burst", 100),
        connect_rate=float(raw.get("connect_rate", 10.0)),
        allowed_hosts=_allowed_hosts(reader, raw.get("allowed_hosts", [])),
        trusted_proxies=_trusted_proxies(reader, raw.get("trusted_proxies", [])),
        max_connections=raw.get("max_connections", 1000),
        max_connections_per_address=raw.get("max_connections_per_address", 100),
    )
    if server.connect_burst < 1 or server.connect_rate <= 0:
        reader.problem("server.connect_burst", "connect_burst must be 1 or more and connect_rate above 0")
    for key in ("max_connections", "max_connections_per_address"):
        if not 1 <= getattr(server, key) <= 1_000_000:
            reader.problem(f"server.{key}", f"must be 1-1000000, not {getattr(server, key)}")
    if ("tls_cert" in raw) != ("tls_key" in raw):
        reader.problem("server.tls_cert", "tls_cert and tls_key go together: set both, or neither")
    if not server.loopback and not tokens and not _has_problem(reader, "server.token"):
        reader.problem(
            "server.token",
            f"required because host {server.host!r} is reachable from other machines; "
            f'set token = "<{MIN_TOKEN_LENGTH} or more random characters>" ({_TOKEN_HOWTO}) '
            'or host = "127.0.0.1"',
        )
    if "*" in server.cors_origins and not tokens and not _has_problem(reader, "server.token"):
        reader.problem(
            "server.cors_origins",
            '["*"] lets every web page read the calls, so it needs a token: set token, '
            'or list the panels\' origins (e.g. ["http://localhost:3000"])',
        )
    return server


#: The shortest token accepted, and how to make a good one.
MIN_TOKEN_LENGTH = 16
_TOKEN_HOWTO = (
    "`cidbridge config init` writes one; or `python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`"
)
#: What an allowed_hosts entry may look like: a host name, an address, "*.domain" or "*".
_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_HOST_NAME = re.compile(rf"\*|(\*\.)?{_LABEL}(\.{_LABEL})*\.?")


def _token_too_short(reader: _Reader, key: str, value: Any) -> bool:
    if isinstance(value, str) and len(value) < MIN_TOKEN_LENGTH:
        reader.problem(
            key,
            f"is {len(value)} characters; use at least {MIN_TOKEN_LENGTH} random characters ({_TOKEN_HOWTO})",
        )
        return True
    return False


def _has_problem(reader: _Reader, key: str) -> bool:
    return any(p.key == key for p in reader.problems)


def _allowed_hosts(reader: _Reader, raw: Any) -> tuple[str, ...]:
    hosts = []
    for i, entry in enumerate(raw):
        name = entry.strip().lower() if isinstance(entry, str) else ""
        try:
            ipaddress.ip_address(name.strip("[]"))
            hosts.append(name)
            continue
        except ValueError:
            pass
        if not _HOST_NAME.fullmatch(name) or ":" in name:
            reader.problem(
                f"server.allowed_hosts[{i}]",
                f'must be a host name, an IP address, "*.example.org" or "*" (no port), not {entry!r}',
            )
        else:
            hosts.append(name)
    return tuple(hosts)


def _trusted_proxies(reader: _Reader, raw: Any) -> tuple[str, ...]:
    proxies = []
    for i, entry in enumerate(raw):
        try:
            if not isinstance(entry, str):
                raise ValueError(entry)
            network = ipaddress.ip_network(entry.strip(), strict=False)
            single = network.num_addresses == 1
            proxies.append(str(network.network_address) if single else str(network))
        except ValueError:
            reader.problem(
                f"server.trusted_proxies[{i}]",
                f'must be an IP address or network like "127.0.0.1" or "10.0.0.0/8", not {entry!r}',
            )
    return tuple(proxies)


def _tls_file(reader: _Reader, raw: dict[str, Any], key: str) -> Path | None:
    if key not in raw:
        return None
    path = Path(raw[key]).expanduser()
    if not path.is_file():
        reader.problem(f"server.{key}", f"{str(path)!r} is not a readable file (a PEM file)")
    return path


REDIS_SCHEMES = ("redis", "rediss", "unix", "valkey", "valkeys", "redis+sentinel", "valkey+sentinel")


def _broadcast(reader: _Reader, raw: dict[str, Any]) -> BroadcastConfig:
    url = raw.get("redis_url", "")
    if url and ("://" not in url or url.split("://", 1)[0].lower() not in REDIS_SCHEMES):
        reader.problem(
            "broadcast.redis_url", f'must be a Redis URL like "redis://127.0.0.1:6379/0", not {url!r}'
        )
    node = raw.get("node", "")
    if node and not re.fullmatch(r"[\w.:@-]{1,64}", node):
        reader.problem("broadcast.node", "must be 1-64 letters, digits or . : @ _ -")
    channel = raw.get("channel", "cidbridge")
    if not channel:
        reader.problem("broadcast.channel", "must not be empty")
    return BroadcastConfig(url, node, channel or "cidbridge")


def _store(reader: _Reader, raw: dict[str, Any]) -> StoreConfig:
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


def _calls(reader: _Reader, raw: dict[str, Any]) -> CallsConfig:
    ring_gap = float(raw.get("ring_gap", 8.0))
    if not 1.0 <= ring_gap <= 60.0:
        reader.problem("calls.ring_gap", f"must be 1-60 seconds, not {ring_gap}")
        ring_gap = 8.0
    ringless = float(raw.get("ringless_timeout", 45.0))
    if not 5.0 <= ringless <= 600.0:
        reader.problem("calls.ringless_timeout", f"must be 5-600 seconds, not {ringless}")
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


def _lines(reader: _Reader, raw_lines: Any) -> tuple[LineConfig, ...]:
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


def _line(reader: _Reader, index: int, data: Any) -> LineConfig | None:
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
        reader.problem(f"{key}.format", f"unknown format {fmt!r}{_did_you_mean(fmt, FORMATS)}")
    baudrate = raw.get("baudrate", 115200)
    if baudrate <= 0:
        reader.problem(f"{key}.baudrate", f"must be a positive integer, not {baudrate}")
    init = raw.get("init", list(DEFAULT_INIT))
    if not all(isinstance(cmd, str) for cmd in init):
        reader.problem(f"{key}.init", 'must be a list of AT command strings, e.g. ["ATZ", "AT+VCID=1"]')
    timeout = float(raw.get("command_timeout", 3.0))
    if not 0.1 <= timeout <= 60:
        reader.problem(f"{key}.command_timeout", f"must be 0.1-60 seconds, not {timeout}")
    extras = _line_extras(reader, key, raw)
    if len(reader.problems) > before:
        return None
    return LineConfig(raw["name"], raw["port"], baudrate, device, fmt, tuple(init), timeout, **extras)


def _line_extras(reader: _Reader, key: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The modem-dialogue, keep-alive, channel and capture keys of one line (issue #4)."""
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


def _blocking_keys(reader: _Reader, key: str, raw: dict[str, Any]) -> dict[str, Any]:
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
    if not 0 <= delay <= 10:
        reader.problem(f"{key}.hangup_delay", f"must be 0-10 seconds, not {delay}")
    return {"block_action": action, "hangup": tuple(hangup), "hangup_delay": delay}


def _check_channel_names(reader: _Reader, lines: list[LineConfig]) -> None:
    """A channel's line name must not be another line's (or another channel's) name."""
    owner: dict[str, str] = {line.name: line.name for line in lines}
    for i, line in enumerate(lines):
        for channel, name in line.channels.items():
            if owner.setdefault(name, line.name) != line.name:
                reader.problem(
                    f"lines[{i}].channels.{channel}", f"{name!r} is already the name of another line"
                )


_EXAMPLES = {"name": 'name = "front-desk"', "port": 'port = "/dev/ttyACM0"'}
