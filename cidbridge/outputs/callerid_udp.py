"""Every call as a Whozz Calling? Ethernet unit would broadcast it (CallerID.com UDP).

POS and restaurant software that listens on UDP port 3520 for CallerID.com units
then shows calls from modems, Korean adapters and every other source too.  Which
records an event becomes is :class:`~cidbridge.core.callerid_udp.RecordFeed`'s
table (ring ``R``, call ``S``, answer ``F``, end ``N`` + ``E``); packets are
byte-for-byte what a unit sends (83-byte call records, 52-byte detail records).

Not sent: calls read from Whozz Calling units by this daemon's own UDP input (the
units broadcast them already; sending them again would show each call twice), and
calls relayed from other cidbridge nodes (each node broadcasts its own).  The
packets carry ``[udp] unit`` and ``serial``, which the UDP input recognises as ours.

Line numbers: ``[udp] line_numbers`` when it names the line, else the line's place
among the configured lines and their channels (1, 2, …), else the next free number
in the order lines first call (stable until a restart).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from cidbridge.config import Config, UdpConfig
from cidbridge.core.callerid_udp import RecordFeed, encode_packet
from cidbridge.outputs import Output

log = logging.getLogger(__name__)


def line_numbers(config: Config) -> dict[str, int]:
    """The configured lines (then their channels' names) numbered 1, 2, …, then ``line_numbers``."""
    numbers: dict[str, int] = {}
    for line in config.lines:
        for name in (line.name, *line.channels.values()):
            numbers.setdefault(name, len(numbers) + 1)
    numbers.update(config.udp.line_numbers)
    return numbers


class _Sender(asyncio.DatagramProtocol):
    def __init__(self, output: CallerIdUdpOutput) -> None:
        self.output = output

    def error_received(self, exc: Exception) -> None:
        self.output.errors += 1
        self.output.set_state("down", f"sending to {self.output.destination_text} failed: {exc}")


class CallerIdUdpOutput(Output):
    """``[udp] send``: CallerID.com records to ``send_to:send_port`` (broadcast by default)."""

    def __init__(
        self, config: UdpConfig, *, numbers: dict[str, int], skip_line: Callable[[str], bool]
    ) -> None:
        super().__init__("callerid-udp")
        self.config = config
        self.destination = (config.send_to, config.send_port)
        self.destination_text = f"{config.send_to}:{config.send_port}"
        self.serial = bytes.fromhex(config.serial)
        self.skip_line = skip_line
        self._numbers = dict(numbers)
        self._used = set(self._numbers.values())
        self.feed = RecordFeed(self.line_number)
        self.packets_sent = 0
        self.errors = 0

    def line_number(self, line: str) -> int:
        number = self._numbers.get(line)
        if number is None:
            free = [n for n in range(1, 100) if n not in self._used]
            number = free[0] if free else 99
            self._numbers[line] = number
            self._used.add(number)
        return number

    def status(self) -> dict[str, Any]:
        status = super().status()
        status.update(
            destination=self.destination_text,
            counters={"packets_sent": self.packets_sent, "send_errors": self.errors},
        )
        return status

    async def run(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)
        sock.bind(("0.0.0.0", 0))
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Sender(self), sock=sock)
        self.set_state("up", f"sending to {self.destination_text}")
        errors_seen = 0
        try:
            while True:
                event = await self.queue.get()
                if "origin" in event or self.skip_line(str(event.get("line", ""))):
                    continue
                records = self.feed.records(event)
                # A send error arrives after the send: back up once a send went without one.
                if self.state == "down" and self.errors == errors_seen:
                    self.set_state("up", f"sending to {self.destination_text}")
                errors_seen = self.errors
                for record in records:
                    transport.sendto(
                        encode_packet(record, unit=self.config.unit, serial=self.serial), self.destination
                    )
                    self.packets_sent += 1
                if records:
                    self.delivered += 1
        finally:
            transport.close()
