"""The configuration: one TOML file, validated once into a :class:`Config`.

Everything the daemon needs is read and checked here, before anything is opened, so
a mistake is a clear message naming the key (:class:`ConfigError`), not a failure
an hour later.  ``config.example.toml`` documents every key (a test keeps it so).

Validation collects *every* problem in the file, so ``cidbridge config check`` can
list them all at once; :func:`parse` and :func:`load` raise the first one (with the
others in :attr:`ConfigError.problems`), which is what the daemon needs.

Where each section is read: its dataclass, its ``SCHEMA`` (key → TOML type) and its
checks are together in one module.

=====================================  ====================================
section                                module
=====================================  ====================================
``[server]``, ``[broadcast]``          :mod:`cidbridge.config.server`
``[store]``, ``[calls]``, ``[panel]``  :mod:`cidbridge.config.calls`
``[[lines]]``                          :mod:`cidbridge.config.lines`
``[ncid]``, ``[udp]``                  :mod:`cidbridge.config.protocols`
``[mqtt]``, ``[[webhooks]]``           :mod:`cidbridge.config.outputs`
``[log]``                              here
=====================================  ====================================

:mod:`cidbridge.config.problems` collects and locates problems (``file:line: key:
…``, "did you mean").  This module assembles the sections into :class:`Config`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field

from cidbridge.config import calls, lines, outputs, protocols, server
from cidbridge.config.calls import CallsConfig, PanelConfig, StoreConfig, default_state_dir
from cidbridge.config.lines import DEVICES, LineConfig
from cidbridge.config.outputs import WEBHOOK_EVENTS, MqttConfig, WebhookConfig
from cidbridge.config.problems import ConfigError, Reader, did_you_mean, locate, read_text
from cidbridge.config.protocols import UDP_SOURCE_NAME, NcidConfig, UdpConfig
from cidbridge.config.server import MIN_TOKEN_LENGTH, BroadcastConfig, ServerConfig, is_loopback

__all__ = [
    "DEVICES",
    "LOG_LEVELS",
    "MIN_TOKEN_LENGTH",
    "SCHEMA",
    "UDP_SOURCE_NAME",
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

LOG_LEVELS = ("debug", "info", "warning", "error")


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


#: Every section and key a config file may hold, with the TOML type(s) it must have, in
#: the order ``config check`` and "did you mean" list them.  ``config.example.toml``
#: documents each of them (tests/service/test_config_doc.py).
SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "server": server.SCHEMA["server"],
    "broadcast": server.SCHEMA["broadcast"],
    "store": calls.SCHEMA["store"],
    "calls": calls.SCHEMA["calls"],
    "lines": lines.SCHEMA["lines"],
    "log": {"level": str},
    "ncid": protocols.SCHEMA["ncid"],
    "udp": protocols.SCHEMA["udp"],
    "mqtt": outputs.SCHEMA["mqtt"],
    "webhooks": outputs.SCHEMA["webhooks"],
    "panel": calls.SCHEMA["panel"],
}


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
    reader = Reader(text, file, SCHEMA)
    for name in data:
        if name not in SCHEMA:
            reader.problem(name, f"unknown section{did_you_mean(name, SCHEMA)}")

    def table(name: str) -> dict[str, object]:
        return reader.table(data.get(name, {}), name, name)

    server_config = reader.section(lambda: server.read_server(reader, table("server")), ServerConfig)
    store = reader.section(lambda: calls.read_store(reader, table("store")), StoreConfig)
    calls_config = reader.section(lambda: calls.read_calls(reader, table("calls")), CallsConfig)
    line_configs = reader.section(lambda: lines.read_lines(reader, data.get("lines", [])), tuple)
    level = str(table("log").get("level", "info")).lower()
    if level not in LOG_LEVELS:
        reader.problem("log.level", f"must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    broadcast = reader.section(lambda: server.read_broadcast(reader, table("broadcast")), BroadcastConfig)
    ncid = reader.section(lambda: protocols.read_ncid(reader, table("ncid")), NcidConfig)
    udp = reader.section(lambda: protocols.read_udp(reader, table("udp"), line_configs), UdpConfig)
    panel = reader.section(lambda: calls.read_panel(reader, table("panel")), PanelConfig)
    mqtt = reader.section(lambda: outputs.read_mqtt(reader, data.get("mqtt", {})), MqttConfig)
    webhooks = reader.section(lambda: outputs.read_webhooks(reader, data.get("webhooks", [])), tuple)
    problems = sorted(reader.problems, key=lambda p: p.line if p.line is not None else 0)
    if problems:
        return None, problems
    sections = {"ncid": ncid, "udp": udp, "panel": panel, "mqtt": mqtt, "webhooks": webhooks}
    return (
        Config(
            server_config, store, calls_config, line_configs, level, file, broadcast=broadcast, **sections
        ),
        [],
    )
