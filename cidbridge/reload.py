"""What a reload (SIGHUP, ``systemctl reload``) does with each config key: one table.

:data:`KEYS` has one row per key of :data:`cidbridge.config.SCHEMA`.  A row says
whether a changed value **applies live** (and which of the daemon's appliers,
``Daemon._apply_<name>``, applies it) or **needs a restart** (the daemon keeps the
running value until then).  The same table gives the reload's log line
(:meth:`ReloadPlan.summary`: ``applied: …; needs a restart: …``).

Adding a config key: add its row here, next to its section's rows.  A live key names
an applier (an existing one, or a new ``Daemon._apply_<name>(old, new)``), or
``None`` when the running code reads the config each time it needs the value.  Then
give the key a case in tests/service/test_reload_keys.py, which fails for a schema
key without a row or a case, and checks each live key is really applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cidbridge.config import SCHEMA, Config, LineConfig

LIVE = "live"
RESTART = "restart"


@dataclass(frozen=True, slots=True)
class Key:
    """How a reload treats one config key (``section.key`` as in the schema)."""

    key: str
    when: str
    #: ``Daemon._apply_<applier>`` applies it (live keys); None: read where it is used.
    applier: str | None = None
    #: The running value of the key in a :class:`Config` (default: ``config.section.key``).
    read: Callable[[Config], Any] | None = None

    def value(self, config: Config) -> Any:
        if self.read is not None:
            return self.read(config)
        section, name = self.key.split(".", 1)
        return getattr(getattr(config, section), name)


def _line_field(name: str) -> Callable[[Config], Any]:
    return lambda config: {line.name: getattr(line, name) for line in config.lines}


def _webhook_field(name: str) -> Callable[[Config], Any]:
    return lambda config: tuple(getattr(hook, name) for hook in config.webhooks)


_ROWS = [
    # [server]
    Key("server.host", RESTART),
    Key("server.port", RESTART),
    Key("server.token", LIVE, "tokens", read=lambda c: c.server.tokens.get("default")),
    Key("server.tokens", LIVE, "tokens"),
    Key("server.cors_origins", LIVE, "cors"),
    Key("server.event_name", LIVE, "event_name"),
    # A renewed certificate: new connections get it.  Turning TLS on or off changes the
    # scheme: the applier reports that as needing a restart.
    Key("server.tls_cert", LIVE, "tls"),
    Key("server.tls_key", LIVE, "tls"),
    Key("server.connect_burst", LIVE, "connect_limits"),
    Key("server.connect_rate", LIVE, "connect_limits"),
    Key("server.allowed_hosts", LIVE, "allowed_hosts"),
    # uvicorn reads the proxies it believes (X-Forwarded-For) once, when it starts.
    Key("server.trusted_proxies", RESTART),
    Key("server.max_connections", LIVE, "connection_limits"),
    Key("server.max_connections_per_address", LIVE, "connection_limits"),
    # [broadcast]: the Redis link is built at start.
    Key("broadcast.redis_url", RESTART),
    Key("broadcast.node", RESTART),
    Key("broadcast.channel", RESTART),
    # [store]
    Key("store.path", RESTART),
    Key("store.retention_days", LIVE, None),  # read by the pruning task each hour
    Key("store.synchronous", RESTART),
    # [calls]
    Key("calls.ring_gap", LIVE, "call_timing"),
    Key("calls.ringless_timeout", LIVE, "call_timing"),
    Key("calls.region", LIVE, "region"),
    Key("calls.replay_calls", LIVE, "replay_calls"),
    Key("calls.phonebook", LIVE, None),  # the reload hooks re-read the phonebook every time
    # [log]
    Key("log.level", LIVE, "log_level", read=lambda c: c.log_level),
    # [ncid] and [udp]: their sockets and outputs are made at start.
    *(Key(f"ncid.{name}", RESTART) for name in SCHEMA["ncid"]),
    *(Key(f"udp.{name}", RESTART) for name in SCHEMA["udp"]),
    # [panel]: read per request by the panel's API (cidbridge/server/directory_api.py).
    Key("panel.open_url", LIVE, None),
    Key("panel.unknown_is_missed", LIVE, None),
    Key("panel.missed_days", LIVE, None),
    # [[lines]]: an added line starts, a removed one stops, a changed one restarts.
    *(Key(f"lines.{name}", LIVE, "lines", read=_line_field(name)) for name in SCHEMA["lines"]),
    # [mqtt] and [[webhooks]]: each output's connection and place in the log are set up at start.
    *(Key(f"mqtt.{name}", RESTART) for name in SCHEMA["mqtt"]),
    *(Key(f"webhooks.{name}", RESTART, read=_webhook_field(name)) for name in SCHEMA["webhooks"]),
]

#: Every config key, ``section.key`` → its row.
KEYS: dict[str, Key] = {row.key: row for row in _ROWS}


def schema_keys() -> list[str]:
    """Every ``section.key`` of the config schema (the table must have a row for each)."""
    return [f"{section}.{key}" for section, keys in SCHEMA.items() for key in keys]


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a new configuration changes in a running daemon, by :data:`KEYS`."""

    new: Config
    lines_added: tuple[LineConfig, ...] = ()
    lines_removed: tuple[str, ...] = ()
    lines_changed: tuple[LineConfig, ...] = ()
    tokens_revoked: bool = False
    #: Keys that changed but only take effect after a restart.
    needs_restart: tuple[str, ...] = ()
    #: Keys that changed and apply live.
    changed: tuple[str, ...] = ()

    @classmethod
    def between(cls, old: Config, new: Config) -> ReloadPlan:
        changed = [row for row in KEYS.values() if row.value(old) != row.value(new)]
        old_lines = {line.name: line for line in old.lines}
        new_lines = {line.name: line for line in new.lines}
        added = tuple(line for name, line in new_lines.items() if name not in old_lines)
        removed = tuple(name for name in old_lines if name not in new_lines)
        changed_lines = tuple(
            line for name, line in new_lines.items() if name in old_lines and old_lines[name] != line
        )
        # Going from "no token" to tokens revokes the open door, too.
        revoked = (not old.server.tokens and bool(new.server.tokens)) or any(
            new.server.tokens.get(name) != value for name, value in old.server.tokens.items()
        )
        return cls(
            new,
            added,
            removed,
            changed_lines,
            revoked,
            tuple(row.key for row in changed if row.when == RESTART),
            tuple(row.key for row in changed if row.when == LIVE),
        )

    def appliers(self) -> list[str]:
        """The daemon's appliers to run, once each, in table order."""
        names = [KEYS[key].applier for key in self.changed]
        return list(dict.fromkeys(name for name in names if name))

    def keys_of(self, applier: str) -> list[str]:
        """The changed keys ``applier`` applies."""
        return [key for key in self.changed if KEYS[key].applier == applier]

    def keep_running(self, old: Config) -> Config:
        """The new config with every needs-a-restart key at its running value."""
        from dataclasses import replace

        sections: dict[str, dict[str, Any]] = {}
        for key in self.needs_restart:
            section, name = key.split(".", 1)
            sections.setdefault(section, {})[name] = KEYS[key].value(old)
        config = self.new
        for section, values in sections.items():
            if isinstance(getattr(config, section), tuple):  # an array of tables ([[webhooks]]): kept whole
                config = replace(config, **{section: getattr(old, section)})
            else:
                config = replace(config, **{section: replace(getattr(config, section), **values)})
        return config

    def summary(self, not_applied: dict[str, str] | None = None) -> str:
        """One line for the log: what was applied, what was not (and why), what waits for a restart.

        ``not_applied`` maps live keys an applier could not apply to the reason.
        """
        not_applied = not_applied or {}
        parts = []
        applied = [key for key in self.changed if key not in not_applied]
        if applied:
            parts.append("applied: " + ", ".join(applied))
        if self.lines_added:
            parts.append("lines added: " + ", ".join(line.name for line in self.lines_added))
        if self.lines_removed:
            parts.append("lines removed: " + ", ".join(self.lines_removed))
        if self.lines_changed:
            parts.append("lines restarted: " + ", ".join(line.name for line in self.lines_changed))
        if not_applied:
            parts.append("not applied: " + ", ".join(f"{key} ({why})" for key, why in not_applied.items()))
        if self.needs_restart:
            parts.append(
                "needs a restart: "
                + ", ".join(self.needs_restart)
                + " (running as before until `systemctl restart cidbridge`)"
            )
        return "; ".join(parts) or "nothing changed"
