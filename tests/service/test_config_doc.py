"""config.example.toml documents every key the config schema accepts, with its default."""

from __future__ import annotations

import re
from pathlib import Path

from cidbridge import config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def documented_keys(text: str) -> dict[str, set[str]]:
    """Keys per section, commented-out ones (``# path = …``) included, and commented-out
    sections too (``# [[webhooks]]``: a table that is off by default cannot be shown on)."""
    keys: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\s*#?\s*\[\[?\s*([\w.-]+)\s*\]\]?\s*", line)
        if header:
            section = header.group(1)
            keys.setdefault(section, set())
            continue
        key = re.match(r"\s*#?\s*([A-Za-z_][\w-]*)\s*=", line)
        if key and section:
            keys[section].add(key.group(1))
    return keys


def test_every_schema_key_is_documented() -> None:
    documented = documented_keys(EXAMPLE.read_text(encoding="utf-8"))
    missing = [
        f"[{section}] {key}"
        for section, schema in config.SCHEMA.items()
        for key in schema
        if key not in documented.get(section, set())
    ]
    assert not missing, f"config.example.toml does not document: {', '.join(missing)}"


def test_documented_keys_exist() -> None:
    documented = documented_keys(EXAMPLE.read_text(encoding="utf-8"))
    unknown = [
        f"[{section}] {key}"
        for section, keys in documented.items()
        if section in config.SCHEMA
        for key in keys
        if key not in config.SCHEMA[section]
    ]
    assert not unknown, f"config.example.toml shows keys cidbridge does not accept: {unknown}"


def test_the_example_is_valid_and_shows_the_defaults() -> None:
    """Every value the example sets is the default, so the comments' "default" is true."""
    example = config.load(EXAMPLE)
    assert example.server == config.ServerConfig()
    assert example.store == config.StoreConfig()
    assert example.calls == config.CallsConfig()
    assert example.log_level == "info"
    assert example.ncid == config.NcidConfig()
    assert example.udp == config.UdpConfig()
    assert example.mqtt == config.MqttConfig() and not example.mqtt.enabled
    assert example.webhooks == ()
    (line,) = example.lines
    assert line == config.LineConfig(name=line.name, port=line.port)
