"""The ``[server]`` and ``[broadcast]`` sections: the web server, its tokens and limits; scale-out.

The README's "Security" and "Several cidbridge processes" sections say what each key
does for a user.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cidbridge.config.problems import Reader, pem_file

__all__ = [
    "MIN_TOKEN_LENGTH",
    "REDIS_SCHEMES",
    "SCHEMA",
    "BroadcastConfig",
    "ServerConfig",
    "is_loopback",
    "read_broadcast",
    "read_server",
]

SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
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
}


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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_server(reader: Reader, raw: dict[str, Any]) -> ServerConfig:
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
        tls_cert=pem_file(reader, raw, "server.tls_cert"),
        tls_key=pem_file(reader, raw, "server.tls_key"),
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
        reader.within(f"server.{key}", getattr(server, key), 1, 1_000_000)
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


def _token_too_short(reader: Reader, key: str, value: Any) -> bool:
    if isinstance(value, str) and len(value) < MIN_TOKEN_LENGTH:
        reader.problem(
            key,
            f"is {len(value)} characters; use at least {MIN_TOKEN_LENGTH} random characters ({_TOKEN_HOWTO})",
        )
        return True
    return False


def _has_problem(reader: Reader, key: str) -> bool:
    return any(p.key == key for p in reader.problems)


def _allowed_hosts(reader: Reader, raw: Any) -> tuple[str, ...]:
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


def _trusted_proxies(reader: Reader, raw: Any) -> tuple[str, ...]:
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


REDIS_SCHEMES = ("redis", "rediss", "unix", "valkey", "valkeys", "redis+sentinel", "valkey+sentinel")


def read_broadcast(reader: Reader, raw: dict[str, Any]) -> BroadcastConfig:
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
