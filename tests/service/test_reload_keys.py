"""Every config key, reloaded: applied live, or reported as needing a restart and kept.

:data:`cidbridge.reload.KEYS` is the one table the daemon's reload follows.  This file
fails for a schema key without a row (a new key must be classified) and for a row
without a case below.  Each case starts the real :class:`Daemon` in-process on a config
file, rewrites one key, reloads, and reads the running value back from the daemon's
parts (the Socket.IO server, the HTTP app, the lines, the TLS listener...), not from
the config object alone.

Adding a key: a row in cidbridge/reload.py, then a case in CASES: the key's new value
(TOML, merged into BASE) and how to read the value the running daemon uses.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cidbridge.config import load
from cidbridge.daemon import Daemon
from cidbridge.reload import KEYS, LIVE, RESTART, schema_keys
from tests.broadcast.support import InProcessDaemon

LINE = {"name": "front", "port": "/dev/cidbridge-test-absent", "device": "box"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    return repr(value)


#: Sections that are arrays of tables: a case's change applies to the first table.
ARRAYS = ("lines", "webhooks")


def write(path: Path, sections: dict[str, Any]) -> None:
    text = []
    for section, values in sections.items():
        if section in ARRAYS:
            for table in values:
                text.append(f"[[{section}]]")
                text += [f"{k} = {_toml(v)}" for k, v in table.items()]
        else:
            text.append(f"[{section}]")
            text += [f"{k} = {_toml(v)}" for k, v in values.items()]
    path.write_text("\n".join(text) + "\n")


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def served_certificate(url: str) -> str:
    """The CN of the certificate a new TLS connection to the daemon gets."""
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    text = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
        input=der,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return text.strip().rsplit("=", 1)[-1].strip()


@dataclass
class Case:
    #: The key's new value(s), merged into the section (or into the line).
    change: Callable[[Path], dict[str, Any]]
    #: What the running daemon uses for it.
    running: Callable[[Daemon], Any]
    #: Extra base config (e.g. TLS to renew).
    base: Callable[[Path], dict[str, Any]] = lambda tmp: {}


def _line(daemon: Daemon) -> Any:
    [line] = daemon.lines
    return line


def _line_case(field: str, value: Any) -> Case:
    return Case(lambda tmp: {"lines": {field: value}}, lambda d: {line.name: line.config for line in d.lines})


def _tls_base(tmp: Path) -> dict[str, Any]:
    cert, key = make_cert(tmp, "first")
    return {"server": {"tls_cert": cert, "tls_key": key}}


def _renewed(tmp: Path) -> dict[str, Any]:
    cert, key = make_cert(tmp, "renewed")
    return {"server": {"tls_cert": cert, "tls_key": key}}


def _phonebook(tmp: Path) -> dict[str, Any]:
    book = tmp / "book.csv"
    book.write_text("number,name\n010-1234-5678,Kim Minji\n")
    return {"calls": {"phonebook": book}}


def _output(daemon: Daemon, name: str) -> Any:
    [output] = [output for output in daemon.outputs.outputs if output.name == name]
    return output


def _pem(tmp: Path) -> Path:
    pem = tmp / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return pem


#: An MQTT output and a webhook whose peers are not there: enough to start and reload.
_MQTT = {"host": "127.0.0.1", "port": 1, "username": "desk"}
_WEBHOOK = {"name": "hook", "url": "http://127.0.0.1:1/hook"}


def _mqtt_case(change: Callable[[Path], dict[str, Any]]) -> Case:
    return Case(
        lambda tmp: {"mqtt": change(tmp)},
        lambda d: _output(d, "mqtt").config,
        base=lambda tmp: {"mqtt": _MQTT},
    )


def _webhook_case(change: Callable[[Path], dict[str, Any]]) -> Case:
    return Case(
        lambda tmp: {"webhooks": change(tmp)},
        lambda d: _output(d, "webhook:hook").config,
        base=lambda tmp: {"webhooks": [_WEBHOOK]},
    )


CASES: dict[str, Case] = {
    "server.host": Case(lambda tmp: {"server": {"host": "127.0.0.2"}}, lambda d: d.url),
    "server.port": Case(lambda tmp: {"server": {"port": 1}}, lambda d: d.url),
    "server.token": Case(
        lambda tmp: {"server": {"token": "new-token-0123456789"}}, lambda d: dict(d.http.tokens)
    ),
    "server.tokens": Case(
        lambda tmp: {"server": {"tokens": {"office": "office-token-0123456789"}}},
        lambda d: dict(d.http.tokens),
    ),
    "server.cors_origins": Case(
        lambda tmp: {"server": {"cors_origins": ["http://panel.test"]}},
        lambda d: (d.broadcaster.sio.eio.cors_allowed_origins, d.http.cors._serve is d.http.cors.app),
    ),
    "server.event_name": Case(
        lambda tmp: {"server": {"event_name": "call-event"}}, lambda d: d.broadcaster.event_name
    ),
    "server.tls_cert": Case(_renewed, lambda d: served_certificate(d.url), base=_tls_base),
    "server.tls_key": Case(_renewed, lambda d: served_certificate(d.url), base=_tls_base),
    "server.connect_burst": Case(
        lambda tmp: {"server": {"connect_burst": 7}}, lambda d: d.broadcaster._connects.burst
    ),
    "server.connect_rate": Case(
        lambda tmp: {"server": {"connect_rate": 2.5}}, lambda d: d.broadcaster._connects.rate
    ),
    "server.allowed_hosts": Case(
        lambda tmp: {"server": {"allowed_hosts": ["frontdesk.test"]}}, lambda d: d.web.host_check.hosts
    ),
    "server.trusted_proxies": Case(
        lambda tmp: {"server": {"trusted_proxies": ["127.0.0.1"]}},
        lambda d: (d.server.config.forwarded_allow_ips, d.web.connections.exempt),
    ),
    "server.max_connections": Case(
        lambda tmp: {"server": {"max_connections": 50}},
        lambda d: (d.web.connections.max_connections, d.server.config.limit_concurrency),
    ),
    "server.max_connections_per_address": Case(
        lambda tmp: {"server": {"max_connections_per_address": 7}},
        lambda d: d.web.connections.max_per_address,
    ),
    "broadcast.redis_url": Case(
        lambda tmp: {"broadcast": {"redis_url": "redis://127.0.0.1:1/0"}}, lambda d: d.web.cluster is None
    ),
    "broadcast.node": Case(lambda tmp: {"broadcast": {"node": "other-node"}}, lambda d: d.web.node),
    "broadcast.channel": Case(
        lambda tmp: {"broadcast": {"channel": "other"}}, lambda d: d.config.broadcast.channel
    ),
    "store.path": Case(lambda tmp: {"store": {"path": tmp / "other.sqlite"}}, lambda d: str(d.store.path)),
    "store.retention_days": Case(
        lambda tmp: {"store": {"retention_days": 30}}, lambda d: d.config.store.retention_days
    ),
    "store.synchronous": Case(lambda tmp: {"store": {"synchronous": "full"}}, lambda d: d.store.synchronous),
    "calls.ring_gap": Case(
        lambda tmp: {"calls": {"ring_gap": 12}}, lambda d: (_line(d).calls.ring_gap, d.posted.calls.ring_gap)
    ),
    "calls.ringless_timeout": Case(
        lambda tmp: {"calls": {"ringless_timeout": 60}},
        lambda d: (_line(d).calls.ringless_timeout, d.posted.calls.ringless_timeout),
    ),
    "calls.region": Case(lambda tmp: {"calls": {"region": "US"}}, lambda d: d.hub.region),
    "calls.replay_calls": Case(
        lambda tmp: {"calls": {"replay_calls": 3}},
        lambda d: (d.http.replay_calls, d.broadcaster.config.calls.replay_calls),
    ),
    "calls.phonebook": Case(
        _phonebook, lambda d: (d.hub.phonebook_file is not None, d.hub.directory.count_contacts())
    ),
    "log.level": Case(lambda tmp: {"log": {"level": "debug"}}, lambda d: logging.getLogger().level),
    "lines.name": _line_case("name", "back"),
    "lines.port": _line_case("port", "/dev/cidbridge-test-other"),
    "lines.baudrate": _line_case("baudrate", 9600),
    "lines.device": _line_case("device", "modem"),
    "lines.format": _line_case("format", "tci"),
    "lines.init": _line_case("init", ["ATZ"]),
    "lines.command_timeout": _line_case("command_timeout", 5.0),
    "lines.caller_id": _line_case("caller_id", "AT#CID=1"),
    "lines.country": _line_case("country", "B4"),
    "lines.extra_init": _line_case("extra_init", ["ATS0=0"]),
    "lines.keepalive": _line_case("keepalive", 0),
    "lines.channels": _line_case("channels", {"1": "front-1"}),
    "lines.capture": _line_case("capture", "/tmp/cidbridge-test-capture.bin"),
    "lines.capture_max_bytes": _line_case("capture_max_bytes", 4096),
    "mqtt.host": _mqtt_case(lambda tmp: {"host": "127.0.0.2"}),
    "mqtt.port": _mqtt_case(lambda tmp: {"port": 2}),
    "mqtt.username": _mqtt_case(lambda tmp: {"username": "other"}),
    "mqtt.password": _mqtt_case(lambda tmp: {"password": "new-password"}),
    "mqtt.tls": _mqtt_case(lambda tmp: {"tls": True}),
    "mqtt.ca_file": _mqtt_case(lambda tmp: {"tls": True, "ca_file": _pem(tmp)}),
    "mqtt.client_id": _mqtt_case(lambda tmp: {"client_id": "other-id"}),
    "mqtt.topic_prefix": _mqtt_case(lambda tmp: {"topic_prefix": "other"}),
    "mqtt.discovery": _mqtt_case(lambda tmp: {"discovery": False}),
    "mqtt.discovery_prefix": _mqtt_case(lambda tmp: {"discovery_prefix": "ha"}),
    "mqtt.qos": _mqtt_case(lambda tmp: {"qos": 0}),
    "mqtt.keepalive": _mqtt_case(lambda tmp: {"keepalive": 30}),
    "mqtt.queue": _mqtt_case(lambda tmp: {"queue": 10}),
    "mqtt.relayed": _mqtt_case(lambda tmp: {"relayed": True}),
    "webhooks.name": _webhook_case(lambda tmp: {"name": "other"}),
    "webhooks.url": _webhook_case(lambda tmp: {"url": "http://127.0.0.1:2/hook"}),
    "webhooks.secret": _webhook_case(lambda tmp: {"secret": "a-new-secret-0123456789"}),
    "webhooks.events": _webhook_case(lambda tmp: {"events": ["call"]}),
    "webhooks.headers": _webhook_case(lambda tmp: {"headers": {"Authorization": "Bearer x"}}),
    "webhooks.timeout": _webhook_case(lambda tmp: {"timeout": 5}),
    "webhooks.max_backoff": _webhook_case(lambda tmp: {"max_backoff": 10}),
    "webhooks.max_backlog": _webhook_case(lambda tmp: {"max_backlog": 5}),
    "webhooks.relayed": _webhook_case(lambda tmp: {"relayed": True}),
    "webhooks.ca_file": _webhook_case(lambda tmp: {"ca_file": _pem(tmp)}),
    # The base line is a box, which can only mark: a modem hangs up by default.
    "lines.block_action": Case(
        lambda tmp: {"lines": {"device": "modem", "block_action": "hangup"}},
        lambda d: {line.name: line.config.block_action for line in d.lines},
    ),
    "lines.hangup": _line_case("hangup", ["ATA", "ATH0"]),
    "lines.hangup_delay": _line_case("hangup_delay", 0.5),
    # [panel]: what the panel's API reads per request.
    "panel.open_url": Case(
        lambda tmp: {"panel": {"open_url": "https://emr.test/p?phone={e164}"}},
        lambda d: d.web.config.panel.open_url,
    ),
    "panel.unknown_is_missed": Case(
        lambda tmp: {"panel": {"unknown_is_missed": True}}, lambda d: d.web.config.panel.unknown_is_missed
    ),
    "panel.missed_days": Case(
        lambda tmp: {"panel": {"missed_days": 3}}, lambda d: d.web.config.panel.missed_days
    ),
}


def _output(daemon: Daemon, name: str) -> Any:
    return next((output for output in daemon.outputs.outputs if output.name == name), None)


def _udp_source(daemon: Daemon) -> Any:
    return next((line for line in daemon.lines if line.name == "udp"), None)


def _ncid_base(tmp: Path) -> dict[str, Any]:
    return {"ncid": {"enabled": True, "port": 0}}


def _udp_base(tmp: Path) -> dict[str, Any]:
    udp = {"listen": True, "listen_host": "127.0.0.1", "listen_port": 0}
    return {"udp": {**udp, "send": True, "send_to": "127.0.0.1", "send_port": 9}}


def _ncid_case(key: str, value: Any, running: Callable[[Any], Any]) -> Case:
    return Case(lambda tmp: {"ncid": {key: value}}, lambda d: running(_output(d, "ncid")), base=_ncid_base)


def _udp_case(key: str, value: Any, running: Callable[[Daemon], Any]) -> Case:
    return Case(lambda tmp: {"udp": {key: value}}, running, base=_udp_base)


# The sockets of [ncid] and [udp] are opened at start: every key needs a restart.
CASES |= {
    "ncid.enabled": _ncid_case("enabled", False, lambda server: server is not None),
    "ncid.host": _ncid_case("host", "127.0.0.2", lambda server: server.listening[0]),
    "ncid.port": _ncid_case("port", 1, lambda server: server.listening),
    "ncid.allowed_clients": _ncid_case("allowed_clients", ["10.0.0.1"], lambda server: server.allowed),
    "ncid.call_log": _ncid_case("call_log", 5, lambda server: server.config.call_log),
    "ncid.max_clients": _ncid_case("max_clients", 5, lambda server: server.config.max_clients),
    "udp.listen": _udp_case("listen", False, lambda d: _udp_source(d) is not None),
    "udp.listen_host": _udp_case("listen_host", "127.0.0.2", lambda d: _udp_source(d).bound),
    "udp.listen_port": _udp_case("listen_port", 1, lambda d: _udp_source(d).bound),
    "udp.allowed_sources": _udp_case("allowed_sources", ["10.0.0.1"], lambda d: _udp_source(d).allowed),
    "udp.channels": _udp_case("channels", {"1:01": "unit-1"}, lambda d: _udp_source(d).config.channels),
    "udp.send": _udp_case("send", False, lambda d: _output(d, "callerid-udp") is not None),
    "udp.send_to": _udp_case("send_to", "127.0.0.2", lambda d: _output(d, "callerid-udp").destination),
    "udp.send_port": _udp_case("send_port", 10, lambda d: _output(d, "callerid-udp").destination),
    "udp.unit": _udp_case("unit", 5, lambda d: (_output(d, "callerid-udp").config.unit, _udp_source(d).own)),
    "udp.serial": _udp_case("serial", "000000000001", lambda d: _output(d, "callerid-udp").serial),
    "udp.line_numbers": _udp_case(
        "line_numbers", {"front": 7}, lambda d: _output(d, "callerid-udp").line_number("front")
    ),
}


def test_every_schema_key_has_a_row_in_the_reload_table():
    missing = sorted(set(schema_keys()) - set(KEYS))
    assert not missing, f"classify these keys in cidbridge/reload.py (live or restart): {missing}"
    assert not set(KEYS) - set(schema_keys()), "the reload table has rows for keys the schema does not have"


def test_every_row_has_a_case_and_every_applier_exists():
    assert sorted(set(KEYS) - set(CASES)) == [], "add a case to CASES in this file"
    for row in KEYS.values():
        assert row.when in (LIVE, RESTART)
        if row.applier is not None:
            assert callable(getattr(Daemon, f"_apply_{row.applier}", None)), row


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = {
        section: (list(values) if section in ARRAYS else dict(values)) for section, values in base.items()
    }
    for section, values in extra.items():
        if section in ARRAYS and isinstance(values, list):
            merged[section] = list(values)  # the base's tables
        elif section in ARRAYS:
            merged[section] = [{**merged[section][0], **values}]  # a change to the first table
        else:
            merged.setdefault(section, {}).update(values)
    return merged


@pytest.mark.parametrize("key", sorted(KEYS))
def test_reloading_a_key_applies_it_or_says_it_needs_a_restart(key, tmp_path, caplog):
    if key.startswith("server.tls") and not _has_openssl():
        pytest.skip("openssl is not installed (apt install openssl)")
    case, row = CASES[key], KEYS[key]
    base = _merge(
        {
            "server": {"port": 0, "token": "first-token-0123456789"},
            "store": {"path": tmp_path / "calls.sqlite"},
            "lines": [LINE],
        },
        case.base(tmp_path),
    )
    config_file = tmp_path / "cidbridge.toml"
    write(config_file, base)
    level = logging.getLogger().level
    running = InProcessDaemon(load(config_file))
    try:
        daemon = running.daemon
        before = case.running(daemon)
        write(config_file, _merge(base, case.change(tmp_path)))
        with caplog.at_level(logging.INFO, logger="cidbridge.daemon"):
            plan = running.run(daemon.reload(), timeout=30)
        after = case.running(daemon)
        new_value = row.value(load(config_file))
    finally:
        running.stop()
        logging.getLogger().setLevel(level)
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reloaded ")]
    if row.when == LIVE:
        assert key in plan.changed and key not in plan.needs_restart
        assert after != before, f"{key}: the running daemon still uses {before!r}"
        assert row.value(daemon.config) == new_value
        assert key in summary.split("applied: ")[1].split(";")[0], summary
    else:
        assert key in plan.needs_restart and key not in plan.changed
        assert after == before, (
            f"{key} needs a restart, yet the running daemon changed: {before!r} -> {after!r}"
        )
        assert row.value(daemon.config) != new_value, "the config keeps the running value until a restart"
        assert key in summary.split("needs a restart: ")[1], summary


def _has_openssl() -> bool:
    from shutil import which

    return which("openssl") is not None


@pytest.mark.parametrize("kind", ["turned on", "mismatched key"])
def test_a_certificate_that_cannot_be_applied_is_reported_and_the_old_one_kept(kind, tmp_path, caplog):
    if not _has_openssl():
        pytest.skip("openssl is not installed (apt install openssl)")
    base = {"server": {"port": 0}, "store": {"path": tmp_path / "calls.sqlite"}}
    if kind == "mismatched key":
        base = _merge(base, _tls_base(tmp_path))
    config_file = tmp_path / "cidbridge.toml"
    write(config_file, base)
    running = InProcessDaemon(load(config_file))
    try:
        renewed = _renewed(tmp_path)["server"]
        if kind == "mismatched key":
            renewed["tls_key"] = tmp_path / "first.key"
        write(config_file, _merge(base, {"server": renewed}))
        with caplog.at_level(logging.INFO, logger="cidbridge.daemon"):
            running.run(running.daemon.reload(), timeout=30)
        if kind == "mismatched key":
            assert served_certificate(running.url) == "first"
        else:
            assert running.url.startswith("http://")
        assert running.daemon.config.server.tls_cert == base["server"].get("tls_cert")
    finally:
        running.stop()
    [summary] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reloaded ")]
    assert "not applied: server.tls_cert (" in summary, summary
    assert not re.search(r"(?<!not )applied: server.tls", summary), summary
