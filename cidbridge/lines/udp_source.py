"""Whozz Calling? Ethernet units on the LAN: a source of calls, like a serial line.

The units broadcast one UDP packet per event to port 3520 (see
:mod:`cidbridge.core.callerid_udp`).  :class:`UdpSource` listens there and turns each
packet into frames with the same decoder a serial Whozz Calling box gets
(``callerid-com``), and each frame into call events with a call tracker per phone
line (a :class:`~cidbridge.core.source.CallSource` driven by
:class:`~cidbridge.lines.pushed.PushedCalls`), named ``<unit>:<line>`` (``"1:01"``)
or as ``[udp] channels`` says.  From there a
call is like any other: the hub commits it and every client and output gets it.

Packets are checked in this order, each refusal counted in :attr:`UdpSource.packets`
and never a crash: the source address (``allowed_sources``; when empty, only
private, link-local and loopback addresses — UDP sources can be forged by anyone on
the LAN, so this keeps out other networks, it does not authenticate a unit), the
header, our own output's unit and serial (cidbridge's UDP output broadcasts to the
same port: its packets must not come back in as calls), repeats (units send each
packet more than once).

Like a line, the source reports ``up`` once it listens and ``down`` with the reason
(port in use, permission) while it cannot, retrying with backoff; its state is in
``/healthz`` under ``lines`` (as ``udp``) with the units heard.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cidbridge.call_ids import restart_safe
from cidbridge.config import UDP_SOURCE_NAME, UdpConfig
from cidbridge.core.callerid_udp import Deduper, PacketError, parse_packet
from cidbridge.core.formats.callerid_com import CallerIdComDecoder
from cidbridge.core.source import CallSource
from cidbridge.lines.pushed import PushedCalls
from cidbridge.lines.status import EventSink, SourceStatus, now_iso
from cidbridge.server.security import LogLimiter

log = logging.getLogger(__name__)

#: Packets waiting between the socket and the tracker loop; beyond, new ones are dropped.
MAX_WAITING = 1000
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
#: Packet results counted in :attr:`UdpSource.packets` (and in /metrics).
RESULTS = ("accepted", "duplicate", "refused", "malformed", "own", "overflow")


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, source: UdpSource) -> None:
        self.source = source

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.source._arrived(data, str(addr[0]), self.source.clock())

    def error_received(self, exc: Exception) -> None:
        log.debug("udp source: %s", exc)


class UdpSource(SourceStatus):
    """Listens for Ethernet Link packets; create it, then ``await run()`` until cancelled."""

    def __init__(
        self,
        config: UdpConfig,
        sink: EventSink,
        *,
        ring_gap: float = 8.0,
        ringless_timeout: float = 45.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sink, clock)
        self.config = config
        self.name = UDP_SOURCE_NAME
        self.decoder = CallerIdComDecoder()
        #: A tracker per ``unit:line``, fed packet by packet, with its own timers.
        self.calls = PushedCalls(
            CallSource(
                "",
                config.channels,
                ring_gap=ring_gap,
                ringless_timeout=ringless_timeout,
                call_ids=restart_safe,
            ),
            sink,
            clock=clock,
        )
        self.dedup = Deduper()
        self.allowed = [ipaddress.ip_network(a, strict=False) for a in config.allowed_sources]
        #: Our own UDP output's (unit, serial): its packets are not calls to take in.
        self.own = (config.unit, config.serial.lower()) if config.send else None
        self.packets = dict.fromkeys(RESULTS, 0)
        #: unit number → what /healthz shows about it.
        self.units: dict[int, dict[str, Any]] = {}
        self.bound: tuple[str, int] | None = None
        self._waiting: deque[tuple[bytes, str, float]] = deque()
        self._wake = asyncio.Event()
        self._refusals = LogLimiter()

    @property
    def names(self) -> list[str]:
        return [self.name]

    def status(self) -> dict[str, Any]:
        host, port = self.bound or (self.config.listen_host, self.config.listen_port)
        return {
            "state": self.state,
            "reason": self.reason,
            "port": f"udp://{host}:{port}",
            "since": self.since,
            "channels": dict(self.config.channels),
            "units": {str(unit): dict(info) for unit, info in self.units.items()},
            "packets": dict(self.packets),
        }

    def set_timing(self, ring_gap: float, ringless_timeout: float) -> None:
        self.calls.set_timing(ring_gap, ringless_timeout)

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        timers = asyncio.create_task(self.calls.run(), name="udp timers")
        try:
            await self._listen_forever()
        finally:
            timers.cancel()
            await asyncio.gather(timers, return_exceptions=True)

    async def _listen_forever(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            try:
                transport = await self._listen()
            except OSError as exc:
                await self._set_state("down", self._why(exc))
                self.first_attempt_done.set()
                await asyncio.sleep(backoff)  # calls in progress still end: the timers run
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            try:
                await self._set_state("up", None)
                self.first_attempt_done.set()
                await self._serve()
            finally:
                transport.close()

    async def _listen(self) -> asyncio.DatagramTransport:
        cfg = self.config
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # A POS program on this PC may listen on the same port: both get each broadcast.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((cfg.listen_host, cfg.listen_port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self), sock=sock)
        self.bound = sock.getsockname()[:2]
        log.info("udp: listening for Whozz Calling units on %s:%d", *self.bound)
        return transport

    def _why(self, exc: OSError) -> str:
        where = f"{self.config.listen_host}:{self.config.listen_port}"
        if exc.errno in (13, 1):
            return f"not allowed to listen on UDP {where} ({exc.strerror}); use a port above 1023"
        if exc.errno == 98:
            return f"UDP {where} is in use by a program that does not share it; stop it or set listen_port"
        return f"cannot listen on UDP {where} ({exc.strerror or exc}); check [udp] listen_host"

    async def _serve(self) -> None:
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            while self._waiting:
                data, address, now = self._waiting.popleft()
                await self._packet(data, address, now)

    # -- packets -----------------------------------------------------------------

    def _arrived(self, data: bytes, address: str, now: float) -> None:
        if len(self._waiting) >= MAX_WAITING:
            self.packets["overflow"] += 1
            return
        self._waiting.append((data, address, now))
        self._wake.set()

    def _address_allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.allowed:
            return any(ip in network for network in self.allowed)
        return ip.is_private or ip.is_loopback or ip.is_link_local

    async def _packet(self, data: bytes, address: str, now: float) -> None:
        if not self._address_allowed(address):
            self.packets["refused"] += 1
            suppressed = self._refusals.check(address)
            if suppressed is not None:
                more = f" ({suppressed} more since)" if suppressed else ""
                log.warning("udp: packet from %s ignored: not in [udp] allowed_sources%s", address, more)
            return
        try:
            packet = parse_packet(data)
        except PacketError as exc:
            self.packets["malformed"] += 1
            log.debug("udp: packet from %s ignored: %s", address, exc)
            return
        if self.own is not None and (packet.unit, packet.serial) == self.own:
            self.packets["own"] += 1
            return
        if self.dedup.is_repeat(data, packet, now):
            self.packets["duplicate"] += 1
            return
        self.packets["accepted"] += 1
        self.units[packet.unit] = {
            "address": address,
            "serial": packet.serial,
            "last_heard": now_iso(),
            "packets": self.units.get(packet.unit, {}).get("packets", 0) + 1,
        }
        for frame in self.decoder.feed(packet.record + b"\r\n", now):
            channel = getattr(frame, "line", None) or "00"
            await self.calls.receive(frame, f"{packet.unit}:{channel}", now)

    def _log_state(self) -> None:
        if self.state == "down":
            log.warning("udp source down: %s", self.reason)


def owns_line(config: UdpConfig, line: str) -> bool:
    """Whether calls on ``line`` come from the UDP source (its names: see the module doc)."""
    if not config.listen:
        return False
    if line in config.channels.values():
        return True
    unit, sep, channel = line.partition(":")
    return bool(sep) and unit.isdigit() and channel.isdigit()
