"""The ``[ncid]`` and ``[udp]`` sections: the NCID server and CallerID.com UDP, in and out.

Their values, schema and checks; :mod:`cidbridge.config` holds them in the one
:class:`~cidbridge.config.Config`.  The README's "NCID clients" and "CallerID.com UDP"
sections say what each key does for a user.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cidbridge.config.problems import Reader
from cidbridge.config.server import is_loopback

if TYPE_CHECKING:
    from cidbridge.config.lines import LineConfig

__all__ = ["SCHEMA", "UDP_SOURCE_NAME", "NcidConfig", "UdpConfig", "read_ncid", "read_udp"]

#: The line name of the UDP source itself (its state in /healthz and line events).
UDP_SOURCE_NAME = "udp"


SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
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
}


@dataclass(frozen=True, slots=True)
class NcidConfig:
    """The NCID server (:mod:`cidbridge.outputs.ncid`); off by default."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 3333
    #: Client addresses or networks allowed besides loopback; required off loopback.
    allowed_clients: tuple[str, ...] = ()
    #: Calls sent to a connecting client as its call log; 0 sends none.
    call_log: int = 50
    max_clients: int = 50


@dataclass(frozen=True, slots=True)
class UdpConfig:
    """CallerID.com Ethernet Link UDP: in from Whozz Calling units, out to POS software."""

    listen: bool = False
    listen_host: str = "0.0.0.0"
    listen_port: int = 3520
    #: Source addresses or networks packets are taken from; empty = private networks only.
    allowed_sources: tuple[str, ...] = ()
    #: ``"unit:channel"`` → the line name its calls are shown under.
    channels: dict[str, str] = field(default_factory=dict)
    send: bool = False
    send_to: str = "255.255.255.255"
    send_port: int = 3520
    #: The unit number and serial (12 hex digits) the records are sent as.
    unit: int = 1
    serial: str = "434944425247"
    #: Line name → the two-digit line number its calls are sent with.
    line_numbers: dict[str, int] = field(default_factory=dict)


def _networks(reader: Reader, key: str, values: list[Any]) -> tuple[str, ...]:
    """Addresses or networks (``192.168.1.20``, ``192.168.1.0/24``), each checked."""
    kept = []
    for value in values:
        try:
            ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            reader.problem(
                key, f'{value!r} is not an address or network like "192.168.1.20" or "192.168.1.0/24"'
            )
            continue
        kept.append(str(value))
    return tuple(kept)


def _port(reader: Reader, key: str, value: int, default: int, *, zero: bool = True) -> int:
    if not (0 if zero else 1) <= value <= 65535:
        reader.problem(key, f"must be {'0' if zero else '1'}-65535, not {value}")
        return default
    return value


def read_ncid(reader: Reader, raw: dict[str, Any]) -> NcidConfig:
    """``[ncid]``: NCID has no tokens, so off loopback an allow-list is required."""
    host = raw.get("host", "127.0.0.1")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            reader.problem("ncid.host", f'must be an IP address to listen on, like "127.0.0.1", not {host!r}')
    allowed = _networks(reader, "ncid.allowed_clients", raw.get("allowed_clients", []))
    if not is_loopback(host) and not raw.get("allowed_clients"):
        reader.problem(
            "ncid.allowed_clients",
            f"required because host {host!r} is reachable from other machines and NCID has no "
            'passwords; list the NCID clients\' addresses, e.g. ["192.168.1.20"], or host = "127.0.0.1"',
        )
    call_log = raw.get("call_log", 50)
    reader.within("ncid.call_log", call_log, 0, 10_000, "calls")
    max_clients = raw.get("max_clients", 50)
    reader.within("ncid.max_clients", max_clients, 1, 1000)
    return NcidConfig(
        raw.get("enabled", False),
        host,
        _port(reader, "ncid.port", raw.get("port", 3333), 3333),
        allowed,
        call_log,
        max_clients,
    )


def read_udp(reader: Reader, raw: dict[str, Any], lines: tuple[LineConfig, ...]) -> UdpConfig:
    """``[udp]``: Whozz Calling Ethernet units in, CallerID.com records out."""
    host = raw.get("listen_host", "0.0.0.0")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        reader.problem(
            "udp.listen_host", f'must be an IPv4 address, "0.0.0.0" to hear broadcasts, not {host!r}'
        )
    send_to = raw.get("send_to", "255.255.255.255")
    try:
        ipaddress.IPv4Address(send_to)
    except ValueError:
        reader.problem(
            "udp.send_to",
            f'must be an IPv4 address ("255.255.255.255" broadcasts on the LAN), not {send_to!r}',
        )
    channels = raw.get("channels", {})
    taken = {line.name for line in lines} | {n for line in lines for n in line.channels.values()}
    for key, name in channels.items():
        if not re.fullmatch(r"\d+:\d+", key):
            reader.problem(
                f"udp.channels.{key}", 'keys are "unit:line" as the units number them, e.g. "1:01"'
            )
        elif not isinstance(name, str) or not name:
            reader.problem(f"udp.channels.{key}", "must be a line name (a non-empty string)")
        elif name in taken or name == UDP_SOURCE_NAME:
            reader.problem(f"udp.channels.{key}", f"{name!r} is already the name of another line")
    if raw.get("listen") and UDP_SOURCE_NAME in taken:
        reader.problem(
            "udp.listen", f'a [[lines]] table is named "{UDP_SOURCE_NAME}", the UDP source\'s name'
        )
    numbers = raw.get("line_numbers", {})
    for name, number in numbers.items():
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 99:
            reader.problem(f"udp.line_numbers.{name}", "must be a line number 1-99")
    unit = raw.get("unit", 1)
    if not 0 <= unit < 2**48:
        reader.problem("udp.unit", f"must be 0-{2**48 - 1}, not {unit}")
    serial = raw.get("serial", "434944425247")
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", serial):
        reader.problem("udp.serial", f'must be 12 hex digits (6 bytes), e.g. "434944425247", not {serial!r}')
    return UdpConfig(
        listen=raw.get("listen", False),
        listen_host=host,
        listen_port=_port(reader, "udp.listen_port", raw.get("listen_port", 3520), 3520),
        allowed_sources=_networks(reader, "udp.allowed_sources", raw.get("allowed_sources", [])),
        channels=dict(channels),
        send=raw.get("send", False),
        send_to=send_to,
        send_port=_port(reader, "udp.send_port", raw.get("send_port", 3520), 3520, zero=False),
        unit=unit,
        serial=serial.lower(),
        line_numbers=dict(numbers),
    )
