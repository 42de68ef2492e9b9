"""Whozz Calling Ethernet units in: real UDP packets on loopback → the source → call events."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from cidbridge.config import UdpConfig
from cidbridge.core.callerid_udp import call_record, detail_record, encode_packet
from cidbridge.lines.udp_source import UdpSource, owns_line
from tests.lines.support import RecordingSink

SERIAL = bytes.fromhex("001122334455")
WHEN = datetime(2026, 11, 26, 9, 30, 15)


def packets(unit: int, line: int, number: str, name: str, *, answered: bool) -> list[bytes]:
    """What a unit sends for one call, in its order: R, S, (F, N,) E."""
    records = [
        detail_record(line=line, code="R", when=WHEN),
        call_record(line=line, event="S", when=WHEN, number=number, name=name, rings=1),
    ]
    if answered:
        records += [
            detail_record(line=line, code="F", when=WHEN),
            detail_record(line=line, code="N", when=WHEN),
        ]
    records.append(
        call_record(
            line=line, event="E", when=WHEN, number=number, name=name, rings=1, duration=42 * answered
        )
    )
    return [encode_packet(r, unit=unit, serial=SERIAL) for r in records]


class Rig:
    def __init__(self, source: UdpSource, sink: RecordingSink) -> None:
        self.source, self.sink = source, sink
        self.sockets: dict[str, socket.socket] = {}

    @property
    def port(self) -> int:
        assert self.source.bound is not None
        return self.source.bound[1]

    def send(self, data: bytes, source: str = "127.0.0.1") -> None:
        sock = self.sockets.get(source)
        if sock is None:
            sock = self.sockets[source] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((source, 0))
        sock.sendto(data, ("127.0.0.1", self.port))

    async def until(self, check: Callable[[], bool], what: str) -> None:
        for _ in range(1000):
            if check():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; packets {self.source.packets}")


@contextlib.asynccontextmanager
async def rig(**options: Any) -> AsyncIterator[Rig]:
    config = replace(UdpConfig(listen=True, listen_host="127.0.0.1", listen_port=0), **options)
    sink = RecordingSink()
    source = UdpSource(config, sink, ring_gap=1.0, ringless_timeout=5.0)
    task = asyncio.create_task(source.run())
    r = Rig(source, sink)
    try:
        await r.until(lambda: source.state == "up", "the source to listen")
        yield r
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        for sock in r.sockets.values():
            sock.close()


def run(scenario: Callable[[Rig], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        async with rig(**options) as r:
            await scenario(r)

    asyncio.run(main())


def test_a_units_call_is_a_call_and_its_repeats_are_dropped() -> None:
    async def scenario(r: Rig) -> None:
        for packet in packets(1, 2, "01012345678", "KIM MINJI", answered=True):
            for _ in range(3):  # units repeat each packet
                r.send(packet)
        await r.until(lambda: r.sink.calls("end"), "the end of the call")
        kinds = [e.type for e in r.sink.calls()]
        assert kinds == ["ring", "call", "update", "end"]
        call = r.sink.calls("call")[0]
        assert (call.line, call.number, call.name) == ("1:02", "01012345678", "KIM MINJI")
        assert re.fullmatch(r"1:02-[0-9a-f]{8,}-1", call.call_id)  # unique across restarts
        end = r.sink.calls("end")[0]
        assert (end.outcome, end.ring_count) == ("answered", 1)
        assert r.source.packets["accepted"] == 5 and r.source.packets["duplicate"] == 10
        status = r.source.status()
        assert status["state"] == "up" and status["units"]["1"]["serial"] == SERIAL.hex()
        assert r.sink.states("udp") == ["up"]

    run(scenario)


def test_unit_lines_are_named_by_the_channel_map() -> None:
    async def scenario(r: Rig) -> None:
        for packet in packets(3, 1, "0212345678", "HANBIT", answered=False):
            r.send(packet)
        for packet in packets(3, 4, "0311112222", "OTHER", answered=False):
            r.send(packet)
        await r.until(lambda: len(r.sink.calls("end")) == 2, "two calls")
        assert {(e.line, e.number, e.outcome) for e in r.sink.calls("end")} == {
            ("front", "0212345678", "missed"),
            ("3:04", "0311112222", "missed"),
        }

    run(scenario, channels={"3:1": "front"})


def test_packets_from_elsewhere_garbage_and_our_own_are_not_calls() -> None:
    async def scenario(r: Rig) -> None:
        good = packets(5, 1, "0101", "A", answered=False)
        r.send(good[1], source="127.0.0.2")  # not in allowed_sources
        r.send(b"^^<U>garbage")
        r.send(b"\x00" * 2000)
        r.send(encode_packet(good[1][:0] + b"01 I S", unit=7, serial=bytes.fromhex("434944425247")))
        own = packets(7, 1, "0999", "OURS", answered=False)  # our own output's unit and serial
        for packet in own:
            r.send(packet.replace(SERIAL, bytes.fromhex("434944425247")))
        r.send(good[1], source="127.0.0.3")
        await r.until(lambda: r.sink.calls("call"), "the allowed call")
        assert [e.number for e in r.sink.calls("call")] == ["0101"]
        counts = r.source.packets
        assert (counts["refused"], counts["malformed"], counts["own"]) == (1, 2, len(own) + 1)

    run(scenario, allowed_sources=("127.0.0.1", "127.0.0.3/32"), send=True, unit=7, serial="434944425247")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("192.168.1.90", True),
        ("10.1.2.3", True),
        ("172.16.0.9", True),
        ("169.254.10.1", True),
        ("127.0.0.1", True),
        ("::ffff:192.168.1.90", True),
        ("8.8.8.8", False),
        ("203.0.113.5", True),  # TEST-NET-3 is a documentation range Python counts as private
        ("1.1.1.1", False),
    ],
)
def test_without_an_allow_list_only_private_networks_are_heard(address: str, allowed: bool) -> None:
    source = UdpSource(UdpConfig(listen=True), RecordingSink())
    assert source._address_allowed(address) is allowed


def test_a_port_in_use_is_a_down_source_that_comes_back() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # no SO_REUSEADDR: exclusive
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]

    async def main() -> None:
        sink = RecordingSink()
        source = UdpSource(UdpConfig(listen=True, listen_host="127.0.0.1", listen_port=port), sink)
        task = asyncio.create_task(source.run())
        try:
            await asyncio.wait_for(source.first_attempt_done.wait(), 5)
            assert source.state == "down"
            assert f"UDP 127.0.0.1:{port} is in use" in (source.reason or "")
            blocker.close()
            for _ in range(500):
                if source.state == "up":
                    break
                await asyncio.sleep(0.01)
            assert sink.states("udp") == ["down", "up"]
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    try:
        asyncio.run(main())
    finally:
        blocker.close()


def test_which_lines_the_udp_source_owns() -> None:
    config = UdpConfig(listen=True, channels={"1:01": "front"})
    assert owns_line(config, "front") and owns_line(config, "2:03")
    assert not owns_line(config, "front-desk") and not owns_line(config, "box:01")
    assert not owns_line(UdpConfig(listen=False), "2:03")
