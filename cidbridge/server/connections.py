"""Connections before they are requests: how many may be open, and how long a request head may take.

Every open TCP connection costs a file descriptor, and a process has a fixed number
(``RLIMIT_NOFILE``: 1024 by default outside systemd; the unit raises it).  Idle
sockets that never send a request, or send its head one byte at a time (slowloris),
would otherwise use them all: then the daemon could not open anything else.  So:

* at most ``max_connections`` connections are open at once, and never more than the
  descriptor limit leaves room for (:func:`connection_budget` keeps
  :data:`FD_RESERVE` for the lines, the call log, the phonebook and the log);
* at most ``max_connections_per_address`` from one address (addresses listed in
  ``[server] trusted_proxies`` are exempt: every browser behind a proxy shares its
  address);
* a connection must deliver a complete request head within :data:`HEADER_TIMEOUT`
  seconds of opening, and each later request's head within the same time of the
  previous response (uvicorn also closes keep-alive connections idle for 5 s).

A connection over a limit is answered ``503`` and closed at once, so it holds its
descriptor for no time at all; the refusal is logged once a minute per address.
This works on uvicorn's HTTP protocol (:class:`GuardedHttpTools`, a subclass of
uvicorn's httptools protocol, given to uvicorn as ``http=``): that is the first code
that sees a new connection.  uvicorn's own ``limit_concurrency`` stays as a backstop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cidbridge.server.security import LogLimiter

log = logging.getLogger(__name__)

#: Seconds a connection may take to send a complete request head.
HEADER_TIMEOUT = 10.0
#: Descriptors kept for everything that is not a client connection.
FD_RESERVE = 128
#: However low the descriptor limit, this many connections are still allowed.
MIN_CONNECTIONS = 16
#: Closed connections are forgotten every this many new ones (and whenever a limit is reached).
_SWEEP_EVERY = 64

_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 5\r\nconnection: close\r\ncontent-length: 29\r\n\r\ntoo many connections; retry\r\n"
)
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 27\r\n\r\nrequest head took too long\r\n"
)


def descriptor_limit() -> int | None:
    """The soft ``RLIMIT_NOFILE`` of this process, or None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_budget(wanted: int, limit: int | None) -> int:
    """``wanted``, lowered so the connections fit in ``limit`` descriptors beside :data:`FD_RESERVE`."""
    if limit is None:
        return wanted
    return min(wanted, max(MIN_CONNECTIONS, limit - FD_RESERVE))


class ConnectionGuard:
    """Counts open connections per address and refuses those over a limit.

    Connections are tracked by their transport; one whose transport is closing no
    longer counts.  That holds whatever protocol the transport ends with (a
    WebSocket upgrade hands it from HTTP to the WebSocket protocol).
    """

    def __init__(
        self,
        max_connections: int,
        max_per_address: int,
        *,
        exempt: Iterable[str] = (),
        header_timeout: float = HEADER_TIMEOUT,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.exempt = [ipaddress.ip_network(entry, strict=False) for entry in exempt]
        self.header_timeout = header_timeout
        self.on_refused = on_refused
        self._by_address: dict[str, set[asyncio.BaseTransport]] = {}
        self._open = 0
        self._since_sweep = 0
        self._log = LogLimiter()
        #: Set when the daemon stops: a connection accepted from now on is closed at once
        #: (one that arrives after uvicorn has told the open ones to close would be
        #: left open and hold the graceful stop to its timeout).
        self.closing = False

    @property
    def open_connections(self) -> int:
        self._sweep()
        return self._open

    def set_limits(self, max_connections: int, max_per_address: int) -> None:
        """New limits (a reload); connections already open stay."""
        self.max_connections, self.max_per_address = max_connections, max_per_address

    def admit(self, transport: asyncio.BaseTransport, address: str) -> bool:
        """Count a new connection from ``address``; False (and answered, closed) if over a limit."""
        self._since_sweep += 1
        if self._since_sweep >= _SWEEP_EVERY or self._open >= self.max_connections:
            self._sweep()
        reason = None
        if self.closing:
            reason = "stopping"
        elif self._open >= self.max_connections:
            reason = "max_connections"
        elif not self._exempt(address):
            mine = self._by_address.get(address)
            if mine is not None and len(mine) >= self.max_per_address:
                mine.difference_update([t for t in mine if t.is_closing()])
                self._open = sum(len(s) for s in self._by_address.values())
                if len(mine) >= self.max_per_address:
                    reason = "max_connections_per_address"
        if reason is not None:
            self.refuse(transport, address, reason, _REFUSED)
            return False
        self._by_address.setdefault(address, set()).add(transport)
        self._open += 1
        return True

    def refuse(self, transport: Any, address: str, reason: str, answer: bytes) -> None:
        """Answer ``answer`` and close; log once a minute per address and reason."""
        if self.on_refused is not None and reason != "stopping":
            self.on_refused(reason)
        if reason != "stopping" and (repeats := self._log.check((address, reason))) is not None:
            more = f" ({repeats} more since the last report)" if repeats else ""
            what = {
                "max_connections": f"{self.max_connections} connections are open ([server] max_connections)",
                "max_connections_per_address": (
                    f"{self.max_per_address} connections from this address are open "
                    "([server] max_connections_per_address)"
                ),
                "header_timeout": f"no complete request within {self.header_timeout:g} s",
                "stopping": "cidbridge is stopping",
            }[reason]
            log.warning("closed a connection from %s: %s%s", address, what, more)
        if not transport.is_closing():
            transport.write(answer)
            transport.close()

    def _exempt(self, address: str) -> bool:
        if not self.exempt:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.exempt)

    def _sweep(self) -> None:
        self._since_sweep = 0
        for address in list(self._by_address):
            alive = {t for t in self._by_address[address] if not t.is_closing()}
            if alive:
                self._by_address[address] = alive
            else:
                del self._by_address[address]
        self._open = sum(len(s) for s in self._by_address.values())

    def protocol(self) -> type[HttpToolsProtocol]:
        """uvicorn's httptools protocol, guarded by this object (pass it as ``http=``)."""
        return type("GuardedHttpTools", (GuardedHttpTools,), {"guard": self})


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionGuard`'s limits and the head deadline."""

    guard: ConnectionGuard
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = _address(self.client)
        if self.guard.admit(transport, address):
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # the first byte of a request: its head has HEADER_TIMEOUT from now

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined:
            self._arm()  # the next request's head, however its bytes start, has the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.guard.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self.guard.refuse(self.transport, _address(self.client), "header_timeout", _TIMED_OUT)


def _address(client: tuple[str, int] | None) -> str:
    return client[0] if client else "unknown"
