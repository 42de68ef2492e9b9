"""The NCID server: every call, as NCID clients expect it, on TCP port 3333.

The protocol is :mod:`cidbridge.core.ncid`'s; this module is the asyncio server
around it.  One event's lines are built once and written to every live client's
transport; a client whose unsent bytes pass :data:`CLIENT_BUFFER` (it stopped
reading, or its network is gone) is cut off and counted, so it never holds up the
hub or the other clients.  It reconnects and gets the call log again.

A new client gets the greeting, then up to :data:`HELLO_WAIT` seconds to send its
``HELLO:`` lines (the start-up goes on at once when it says ``HELLO: CMD: …``), then
the call log read from the call log database (``[ncid] call_log`` calls) and the
events committed since, in order, with none missing and none twice: the log is read
and the client goes live with no await in between, and events already in the log
are skipped by id.

NCID has no passwords.  The server listens on loopback unless ``[ncid] host`` says
otherwise, and then only addresses in ``allowed_clients`` (and this PC, 127.0.0.1
and ::1) are served; others are closed at once, without a word, counted, and logged
at most once a minute per address.  At most
``max_clients`` clients (50, ncidd's limit); the next one gets
``MSG: Too many clients connected`` and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from cidbridge import __version__
from cidbridge.config import NcidConfig
from cidbridge.core import ncid
from cidbridge.outputs import Output
from cidbridge.server.security import LogLimiter

if TYPE_CHECKING:
    from cidbridge.hub import Hub

log = logging.getLogger(__name__)

#: Seconds a new client has to send its HELLO: lines before the start-up goes on.
HELLO_WAIT = 0.25
#: Unsent bytes a client may have before it is cut off as not reading.
CLIENT_BUFFER = 256 * 1024
#: Events a client in its start-up may have waiting before it is cut off.
STARTUP_EVENTS = 1000
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
#: Always allowed: a client on this PC itself.
_THIS_PC = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


class NcidServer(Output):
    """``[ncid]``: an NCID server (see the module doc)."""

    def __init__(self, config: NcidConfig, hub: Hub, *, hangs_up: Callable[[str], bool]) -> None:
        super().__init__("ncid")
        self.config = config
        self.hub = hub
        self.feed = ncid.NcidFeed(hangs_up)
        self.allowed = [ipaddress.ip_network(a, strict=False) for a in config.allowed_clients]
        self.clients: set[_Client] = set()
        self.refused = 0
        self.cut_off = 0
        self.listening: tuple[str, int] | None = None
        self._refusals = LogLimiter()
        self._server: asyncio.Server | None = None

    # -- the hub's side ------------------------------------------------------------

    def deliver(self, event: dict[str, Any]) -> None:
        """Build the event's lines once and write them to every client (never blocks)."""
        lines = self.feed.lines(event)
        if not lines:
            return
        data = ncid.encode(lines)
        sent = False
        for client in list(self.clients):
            sent = client.send_event(event.get("id", 0), data) or sent
        if sent:
            self.delivered += 1

    def status(self) -> dict[str, Any]:
        status = super().status()
        host, port = self.listening or (self.config.host, self.config.port)
        status.update(
            listen=f"{host}:{port}",
            clients=len(self.clients),
            gauges={"clients": len(self.clients)},
            counters={"clients_refused": self.refused, "clients_cut_off": self.cut_off},
        )
        return status

    # -- the server ----------------------------------------------------------------

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        loop = asyncio.get_running_loop()
        while True:
            try:
                self._server = await loop.create_server(
                    lambda: _Client(self), self.config.host, self.config.port, reuse_address=True
                )
            except OSError as exc:
                self.set_state("down", self._why(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            self.listening = self._server.sockets[0].getsockname()[:2]
            self.set_state("up", f"listening on {self.listening[0]}:{self.listening[1]}")
            await asyncio.Event().wait()  # serve until cancelled (close)

    def _why(self, exc: OSError) -> str:
        where = f"{self.config.host}:{self.config.port}"
        if exc.errno == 98:
            return f"port {where} is in use (another NCID server, ncidd?); stop it or set [ncid] port"
        if exc.errno in (1, 13):
            return f"not allowed to listen on {where}; use a port above 1023"
        return f"cannot listen on {where} ({exc.strerror or exc}); check [ncid] host"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.close()
        await super().close()

    # -- clients -------------------------------------------------------------------

    def admit(self, client: _Client, address: str) -> str | None:
        """None to serve ``client``, else why it is refused (and it is counted)."""
        if not self._allowed(address):
            self.refused += 1
            suppressed = self._refusals.check(address)
            if suppressed is not None:
                more = f" ({suppressed} more since)" if suppressed else ""
                log.warning("ncid: %s refused: not in [ncid] allowed_clients%s", address, more)
            return "refused"
        if len(self.clients) >= self.config.max_clients:
            self.refused += 1
            log.warning("ncid: connection from %s refused: %d clients already", address, len(self.clients))
            return "MSG: Too many clients connected"
        self.clients.add(client)
        return None

    def _allowed(self, address: str) -> bool:
        """No allow-list (loopback only): anyone who can connect; else the list and this PC."""
        if not self.allowed:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip in _THIS_PC or any(ip in network for network in self.allowed)

    def start_up(self, session: ncid.ClientSession) -> tuple[bytes, int]:
        """The rest of a client's start-up (call log, options, 300), and the last id it covers.

        Synchronous on purpose: reading the log and going live happen with no await in
        between, so no event can fall between the two (the module doc).
        """
        store = self.hub.store
        last_id = store.last_id()
        calls: list[dict[str, Any]] = []
        wanted = session.wants_log and self.config.call_log > 0
        if wanted:
            calls = list(reversed(store.calls(limit=self.config.call_log)))
        lines = ncid.call_log(calls, self.feed, requested=session.wants_log, enabled=self.config.call_log > 0)
        lines += ncid.startup_end(self.hub.region)
        return ncid.encode(lines), last_id if wanted else 0

    def gone(self, client: _Client, *, cut_off: bool = False) -> None:
        self.clients.discard(client)
        if cut_off:
            self.cut_off += 1


class _Client(asyncio.Protocol):
    """One NCID client connection: start-up, then live events."""

    def __init__(self, server: NcidServer) -> None:
        self.server = server
        self.session = ncid.ClientSession()
        self.transport: asyncio.Transport | None = None
        self.address = "?"
        self.live = False
        self.closed = False
        #: Events committed during the start-up: (id, bytes), sent after it.
        self._early: list[tuple[int, bytes]] = []
        self._covered = 0
        self._hello_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have its methods.
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.address = str(peer[0])
        refusal = self.server.admit(self, self.address)
        if refusal is not None:
            if refusal != "refused":
                transport.write(ncid.encode([refusal]))
            self.closed = True
            transport.close()
            return
        log.info("ncid: client %s connected (%d now)", self.address, len(self.server.clients))
        transport.write(ncid.encode(ncid.greeting(__version__)))
        self._hello_timer = asyncio.get_running_loop().call_later(HELLO_WAIT, self._start_up)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            received = self.session.receive(data)
        except ncid.LineTooLong as exc:
            log.warning("ncid: client %s closed: %s", self.address, exc)
            self.close()
            return
        if received.ignored:
            log.debug("ncid: client %s: ignored %d line(s)", self.address, len(received.ignored))
        if received.replies:
            self._write(ncid.encode(received.replies))
        if self.session.goodbye:
            self.close()
        elif self.session.hello_done and not self.live:
            self._start_up()

    def _start_up(self) -> None:
        if self.live or self.closed:
            return
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        try:
            data, self._covered = self.server.start_up(self.session)
        except Exception:
            log.exception("ncid: start-up of client %s failed", self.address)
            self.close()
            return
        self.live = True
        early, self._early = self._early, []
        self._write(data + b"".join(chunk for event_id, chunk in early if event_id > self._covered))
        if self.session.ident:
            log.info("ncid: client %s is %s", self.address, self.session.ident)

    def send_event(self, event_id: int, data: bytes) -> bool:
        """Write one event's lines (or keep them until the start-up is done)."""
        if self.closed:
            return False
        if not self.live:
            self._early.append((event_id, data))
            if len(self._early) > STARTUP_EVENTS:
                self._cut_off()
            return False
        if event_id and event_id <= self._covered:
            return False  # already in the call log it was sent
        return self._write(data)

    def _write(self, data: bytes) -> bool:
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            return False
        transport.write(data)
        if transport.get_write_buffer_size() > CLIENT_BUFFER:
            self._cut_off()
            return False
        return True

    def _cut_off(self) -> None:
        log.warning("ncid: client %s cut off: it stopped reading", self.address)
        self.server.gone(self, cut_off=True)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.server.gone(self)
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        if not self.closed:
            self.closed = True
            self.server.gone(self)
            log.info("ncid: client %s disconnected", self.address)
        with contextlib.suppress(Exception):
            self._early.clear()
