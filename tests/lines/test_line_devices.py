"""Every kind of device on a line: modem personalities, each box format, channels, capture."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from cidbridge.sim.boxes import BOX_FORMATS, Box
from cidbridge.sim.modem import Caller, SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.lines.support import RunningLine, line_config

CALLER = Caller("0212345678", "LEE", month=5, day=6, hour=7, minute=8)
#: The decoder that reads each simulated box (the hex-printing modem is an xdmf device).
DECODER = {"xdmf-hex": "xdmf"}


@pytest.mark.parametrize("personality", ["standard", "hash-cid", "forgetful"])
def test_each_modem_personality_gets_caller_id_after_every_reopen(tmp_path, personality):
    model = SimulatedModem(personality=personality)
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")

    async def scenario() -> None:
        async with RunningLine(line_config(device.path)) as (_, sink):
            for _ in range(2):  # first open, then after a replug
                mark = len(sink.items)
                await sink.wait_state("up", after=mark)
                assert model.cid_enabled
                await asyncio.to_thread(device.play, model.call_script(CALLER, rings=2), 20.0)
                call = await sink.wait_call("call", after=mark)
                assert (call.number, call.name) == ("0212345678", "LEE")
                await sink.wait_call("end", after=mark)
                await asyncio.to_thread(device.unplug)
                await sink.wait_state("down", after=mark)
                model.cid_enabled = False  # a real modem powers up with caller ID off
                await asyncio.to_thread(device.plug)

    try:
        asyncio.run(scenario())
    finally:
        device.close()
    enables = [c for c in model.commands if c in ("AT+VCID=1", "AT#CID=1")]
    expected = "AT#CID=1" if personality == "hash-cid" else "AT+VCID=1"
    assert enables.count(expected) >= 2  # sent again after the reopen
    if personality == "hash-cid":
        assert model.commands.count("AT+VCID=1") >= 2  # tried first, refused, then #CID


def test_ring_during_initialisation_is_not_lost(tmp_path):
    model = SimulatedModem()

    def rings_while_resetting(data: bytes) -> bytes:
        answer = model.receive(data)
        return b"\r\nRING\r\n" + answer if data.startswith(b"ATZ") else answer

    device = PtyDevice(rings_while_resetting, link=tmp_path / "ttyCID")

    async def scenario() -> None:
        async with RunningLine(line_config(device.path)) as (line, sink):
            ring = await sink.wait_call("ring")
            await sink.wait_state("up")
            assert ring.ring_count == 1 and line.state == "up"

    try:
        asyncio.run(scenario())
    finally:
        device.close()


@pytest.mark.parametrize("fmt", BOX_FORMATS)
def test_each_box_format_delivers_a_call(tmp_path, fmt):
    box = Box(fmt)
    device = PtyDevice(link=tmp_path / "ttyBOX")
    config = line_config(device.path, device="box", format=DECODER.get(fmt, fmt), name="box")

    async def scenario() -> None:
        async with RunningLine(config) as (_, sink):
            await sink.wait_state("up")
            await asyncio.to_thread(device.play, box.call_script(CALLER), 20.0)
            call = await sink.wait_call("call")
            assert call.number == "0212345678"
            assert device.received == b""  # a box is only listened to

    try:
        asyncio.run(scenario())
    finally:
        device.close()


def test_box_channels_map_to_line_names(tmp_path):
    device = PtyDevice(link=tmp_path / "ttyWC")
    config = line_config(
        device.path, device="box", format="callerid-com", name="wc", channels={"1": "front", "2": "back"}
    )

    async def scenario() -> None:
        async with RunningLine(config) as (_, sink):
            await sink.wait_state("up", "front")  # line events name every line the box serves
            await sink.wait_state("up", "back")
            await sink.wait_state("up", "wc")
            for channel, expected in ((2, "back"), (1, "front"), (3, "wc:03")):
                mark = len(sink.items)
                await asyncio.to_thread(
                    device.play, Box("callerid-com", line=channel).call_script(CALLER), 20.0
                )
                call = await sink.wait_call("call", after=mark)
                assert call.line == expected

    try:
        asyncio.run(scenario())
    finally:
        device.close()


def test_capture_replays_through_decode(tmp_path):
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")
    capture = tmp_path / "raw" / "desk.bin"
    script: list[tuple[float, bytes]] = []

    async def scenario() -> None:
        async with RunningLine(line_config(device.path, capture=capture)) as (_, sink):
            await sink.wait_state("up")
            script.extend(model.call_script(CALLER, rings=2))
            await asyncio.to_thread(device.play, script, 20.0)
            await sink.wait_call("end")

    try:
        asyncio.run(scenario())
    finally:
        device.close()
    captured = capture.read_bytes()
    assert b"".join(data for _, data in script) in captured  # exactly as read
    # What was read, not what was written: the modem's echo of ATZ (echo is on until
    # ATE0), but never AT+VCID=1, which was sent after echo went off.
    assert captured.startswith(b"ATZ\r") and b"AT+VCID=1" not in captured
    decoded = subprocess.run(
        [sys.executable, "-m", "cidbridge", "decode", "--format", "modem-text", str(capture)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    frames = [json.loads(line) for line in decoded.stdout.splitlines()]
    assert [f["number"] for f in frames if f["kind"] == "cid"] == ["0212345678"]
