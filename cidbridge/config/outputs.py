"""The ``[mqtt]`` and ``[[webhooks]]`` sections of the configuration: schema, values, checks.

:mod:`cidbridge.config` includes these in its one schema and its one validation pass
(every problem collected, ``file:line: key: …``).  The README's "MQTT and Home
Assistant" and "Webhooks" sections say what each key does for a user.  Secrets (the
broker password, a webhook's secret, URL and headers) are kept out of the
dataclasses' ``repr``, so logging a configuration never shows them.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cidbridge.config.problems import Reader, did_you_mean, pem_file

__all__ = [
    "SCHEMA",
    "WEBHOOK_EVENTS",
    "MqttConfig",
    "WebhookConfig",
    "read_mqtt",
    "read_webhooks",
]


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """``[mqtt]``: every event, each line's state and Home Assistant discovery to a broker.

    Off unless ``host`` is set.
    """

    host: str = ""
    port: int = 1883
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    #: PEM file of the CA that signed the broker's certificate (None: the system's CAs).
    ca_file: Path | None = None
    #: MQTT client id; empty: ``cidbridge-<node>``.
    client_id: str = ""
    topic_prefix: str = "cidbridge"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    qos: int = 1
    keepalive: int = 60
    #: Events kept while the broker is unreachable; then the oldest are dropped (counted).
    queue: int = 1000
    #: Also publish the calls relayed from other cidbridge nodes (``origin`` events).
    relayed: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One ``[[webhooks]]`` table: POST events to ``url``."""

    name: str
    url: str = field(repr=False)
    #: HMAC-SHA256 key for the ``X-Cidbridge-Signature`` header; empty: unsigned.
    secret: str = field(default="", repr=False)
    #: Which events to send (:data:`WEBHOOK_EVENTS`); empty: every event.
    events: tuple[str, ...] = ()
    #: Extra request headers (an ``Authorization`` the receiver wants, …).
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 10.0
    #: Longest wait between two attempts at one event (the backoff doubles up to it).
    max_backoff: float = 300.0
    #: Events the webhook may fall behind by; beyond it the oldest are skipped (counted).
    max_backlog: int = 10_000
    #: Also send the calls relayed from other cidbridge nodes (``origin`` events).
    relayed: bool = False
    #: PEM file of the CA that signed the receiver's certificate (None: the system's CAs).
    ca_file: Path | None = None


#: What a webhook's ``events`` may list: the event types, ``missed`` (a call nobody answered)
#: and ``blocked`` (a blocked caller's call nobody answered).
WEBHOOK_EVENTS = ("ring", "call", "update", "end", "line", "missed", "blocked")

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "mqtt": {
        "host": str,
        "port": int,
        "username": str,
        "password": str,
        "tls": bool,
        "ca_file": str,
        "client_id": str,
        "topic_prefix": str,
        "discovery": bool,
        "discovery_prefix": str,
        "qos": int,
        "keepalive": int,
        "queue": int,
        "relayed": bool,
    },
    "webhooks": {
        "name": str,
        "url": str,
        "secret": str,
        "events": list,
        "headers": dict,
        "timeout": (int, float),
        "max_backoff": (int, float),
        "max_backlog": int,
        "relayed": bool,
        "ca_file": str,
    },
}

#: A topic prefix: MQTT topic levels without wildcards, not a ``$SYS``-style topic.
_TOPIC_PREFIX = re.compile(r"[^\s+#$/][^\s+#]{0,99}")
_WEBHOOK_NAME = re.compile(r"[\w.-]{1,64}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
#: Headers cidbridge sets itself; a configured header may not replace them.
_RESERVED_HEADERS = ("content-type", "content-length", "host", "idempotency-key", "user-agent")
#: The shortest webhook secret accepted (a short one can be guessed from signed requests).
MIN_SECRET = 16


def read_mqtt(reader: Reader, data: Any) -> MqttConfig:
    raw = reader.table(data, "mqtt", "mqtt")
    host = raw.get("host", "")
    tls = raw.get("tls", False)
    ca_file = pem_file(reader, raw, "mqtt.ca_file")
    port = raw.get("port", 8883 if tls else 1883)
    reader.within("mqtt.port", port, 1, 65535)
    if raw.get("password") and not raw.get("username"):
        reader.problem("mqtt.password", "needs a username too")
    if ca_file is not None and not tls:
        reader.problem("mqtt.ca_file", "is used for TLS only: set tls = true too")
    client_id = raw.get("client_id", "")
    if client_id and not re.fullmatch(r"[\x21-\x7e]{1,64}", client_id):
        reader.problem("mqtt.client_id", "must be 1-64 printable ASCII characters without spaces")
    for key, default in (("topic_prefix", "cidbridge"), ("discovery_prefix", "homeassistant")):
        prefix = raw.get(key, default)
        if not _TOPIC_PREFIX.fullmatch(prefix) or prefix.endswith("/"):
            reader.problem(
                f"mqtt.{key}",
                f"must be an MQTT topic like {default!r} (no + or #, not starting with $ or /), "
                f"not {prefix!r}",
            )
    qos = raw.get("qos", 1)
    if qos not in (0, 1, 2):
        reader.problem("mqtt.qos", f"must be 0, 1 or 2, not {qos}")
    keepalive = raw.get("keepalive", 60)
    reader.within("mqtt.keepalive", keepalive, 5, 3600, "seconds")
    queue = raw.get("queue", 1000)
    reader.within("mqtt.queue", queue, 1, 1_000_000, "events")
    return MqttConfig(
        host=host,
        port=port,
        username=raw.get("username", ""),
        password=raw.get("password", ""),
        tls=tls,
        ca_file=ca_file,
        client_id=client_id,
        topic_prefix=raw.get("topic_prefix", "cidbridge"),
        discovery=raw.get("discovery", True),
        discovery_prefix=raw.get("discovery_prefix", "homeassistant"),
        qos=qos,
        keepalive=keepalive,
        queue=queue,
        relayed=raw.get("relayed", False),
    )


def read_webhooks(reader: Reader, raw_hooks: Any) -> tuple[WebhookConfig, ...]:
    if not isinstance(raw_hooks, list):
        reader.problem("webhooks", "must be an array of tables: write [[webhooks]]")
        return ()
    hooks: list[WebhookConfig] = []
    seen: set[str] = set()
    for index, data in enumerate(raw_hooks):
        hook = _webhook(reader, index, data)
        if hook is None:
            continue
        if hook.name in seen:
            reader.problem(
                f"webhooks[{index}].name", f"{hook.name!r} is used by two webhooks; names must differ"
            )
        seen.add(hook.name)
        hooks.append(hook)
    return tuple(hooks)


def _webhook(reader: Reader, index: int, data: Any) -> WebhookConfig | None:
    key = f"webhooks[{index}]"
    before = len(reader.problems)
    raw = reader.table(data, "webhooks", key)
    name = raw.get("name", "")
    if not _WEBHOOK_NAME.fullmatch(name):
        reader.problem(
            f"{key}.name",
            'is required: 1-64 letters, digits or . _ - (e.g. name = "crm"); it keys the '
            "webhook's place in the call log, so keep it when the URL changes",
        )
    url = raw.get("url", "")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        reader.problem(
            f"{key}.url", 'is required: an http:// or https:// URL, e.g. "https://crm.example/cid"'
        )
    secret = raw.get("secret", "")
    if secret and len(secret) < MIN_SECRET:
        reader.problem(f"{key}.secret", f"must be at least {MIN_SECRET} characters (a long random string)")
    events = raw.get("events")
    if events is not None:
        if not events:
            reader.problem(f"{key}.events", "must not be empty; leave it out to send every event")
        for event in events:
            if event not in WEBHOOK_EVENTS:
                reader.problem(
                    f"{key}.events", f"unknown event {event!r}{did_you_mean(str(event), WEBHOOK_EVENTS)}"
                )
    headers = raw.get("headers", {})
    for header, value in headers.items():
        if (
            not _HEADER_NAME.fullmatch(header)
            or not isinstance(value, str)
            or any(c in value for c in "\r\n")
        ):
            reader.problem(f"{key}.headers", f"{header!r} must be a header name with a one-line string value")
        elif header.lower() in _RESERVED_HEADERS or header.lower().startswith("x-cidbridge-"):
            reader.problem(f"{key}.headers", f"{header!r} is set by cidbridge itself")
    # Checked as written (``150``, not ``150.0``, in the message), then made floats.
    timeout = raw.get("timeout", 10.0)
    reader.within(f"{key}.timeout", timeout, 1, 120, "seconds")
    max_backoff = raw.get("max_backoff", 300.0)
    reader.within(f"{key}.max_backoff", max_backoff, 1, 86_400, "seconds")
    max_backlog = raw.get("max_backlog", 10_000)
    reader.within(f"{key}.max_backlog", max_backlog, 1, 10_000_000, "events")
    ca_file = pem_file(reader, raw, f"{key}.ca_file")
    if len(reader.problems) > before:
        return None
    return WebhookConfig(
        name=name,
        url=url,
        secret=secret,
        events=tuple(events or ()),
        headers=dict(headers),
        timeout=float(timeout),
        max_backoff=float(max_backoff),
        max_backlog=max_backlog,
        relayed=raw.get("relayed", False),
        ca_file=ca_file,
    )
