"""MQTT topics and Home Assistant discovery messages: pure formatting, no I/O.

Topics (``prefix`` is ``[mqtt] topic_prefix``, ``node`` this cidbridge's name)::

    <prefix>/<node>/status                    online / offline (retained; offline is the last will)
    <prefix>/<node>/event                     every event, as JSON (the cti-event schema)
    <prefix>/<node>/line/<line>/state         the line's state and caller (retained JSON)
    <prefix>/<node>/line/<line>/event         {"event_type": ring|call|answered|update|missed|end, …}
    <prefix>/<node>/line/<line>/connection    up / down (retained; serial lines)

Home Assistant MQTT discovery (its documented schema: ``<discovery_prefix>/<component>/
<node_id>/<object_id>/config``, a ``device`` block, ``unique_id``, ``availability``,
``origin``) makes each line a device with a *State* sensor (idle / ringing / talking,
the caller as attributes), a *Caller* sensor, a *Call* event entity and, for lines
that report their connection, a *Connection* binary sensor.  The README lists the
entities and their ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cidbridge import __version__
from cidbridge.core.linestate import NOTICES, STATES

__all__ = ["Topics", "discovery_messages", "encode", "object_id", "topic_level"]

_NOT_IN_A_LEVEL = re.compile(r"[/+#\x00]")
_NOT_AN_ID = re.compile(r"[^A-Za-z0-9_-]")


def topic_level(name: str) -> str:
    """``name`` as one MQTT topic level: ``/``, ``+``, ``#`` and NUL become ``_``."""
    return _NOT_IN_A_LEVEL.sub("_", name) or "_"


def object_id(name: str) -> str:
    """``name`` as a Home Assistant discovery id (``[A-Za-z0-9_-]``), unique per name.

    A name that needs changing gets a short hash of the original appended, so two
    names that differ only in such characters (``1:2`` and ``1/2``) stay apart.
    """
    safe = _NOT_AN_ID.sub("_", name)
    if safe != name or not safe:
        safe = f"{safe}_{hashlib.sha1(name.encode()).hexdigest()[:6]}"
    return safe


def encode(payload: Any) -> bytes:
    """The bytes published for a JSON payload (compact, UTF-8)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic this node publishes to."""

    prefix: str
    node: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{topic_level(self.node)}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    def line(self, line: str, leaf: str) -> str:
        """``state``, ``event`` or ``connection`` of ``line``."""
        return f"{self.base}/line/{topic_level(line)}/{leaf}"


def discovery_messages(
    topics: Topics, line: str, *, discovery_prefix: str, connection: bool
) -> list[tuple[str, dict[str, Any]]]:
    """The retained discovery ``(topic, config)`` messages that make ``line`` a device in Home Assistant."""
    node_id = object_id(topics.node)
    line_id = object_id(line)
    uid = f"cidbridge_{node_id}_{line_id}"
    common: dict[str, Any] = {
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [uid],
            "name": line,
            "manufacturer": "cidbridge",
            "model": "Phone line",
            "sw_version": __version__,
        },
        "origin": {"name": "cidbridge", "sw_version": __version__},
    }
    state = topics.line(line, "state")
    entities: list[tuple[str, str, dict[str, Any]]] = [
        (
            "sensor",
            "state",
            {
                "name": "State",
                "state_topic": state,
                "value_template": "{{ value_json.state }}",
                "json_attributes_topic": state,
                "device_class": "enum",
                "options": list(STATES),
                "icon": "mdi:phone-classic",
            },
        ),
        (
            "sensor",
            "caller",
            {
                "name": "Caller",
                "state_topic": state,
                "value_template": "{{ value_json.caller }}",
                "json_attributes_topic": state,
                "icon": "mdi:card-account-phone",
            },
        ),
        (
            "event",
            "call",
            {
                "name": "Call",
                "state_topic": topics.line(line, "event"),
                "event_types": list(NOTICES),
                "icon": "mdi:phone-incoming",
            },
        ),
    ]
    if connection:
        entities.append(
            (
                "binary_sensor",
                "connection",
                {
                    "name": "Connection",
                    "state_topic": topics.line(line, "connection"),
                    "payload_on": "up",
                    "payload_off": "down",
                    "device_class": "connectivity",
                    "entity_category": "diagnostic",
                },
            )
        )
    return [
        (
            f"{discovery_prefix}/{component}/{node_id}/{line_id}_{suffix}/config",
            {**config, "unique_id": f"{uid}_{suffix}", **common},
        )
        for component, suffix, config in entities
    ]
