"""A line through faults, in-process, on real pseudo-terminals: unplug, replug, silence, leaks."""

from __future__ import annotations

import asyncio
import time

from cidbridge.core.tracker import CallEvent
from cidbridge.lines import serial_line
from cidbridge.sim.modem import Caller, SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.lines.support import RecordingSink, RunningLine, line_config, open_fds

CALLER = Caller("01012345678", "KIM MINJI", month=3, day=21, hour=14, minute=5)


async def play_call(device: PtyDevice, model: SimulatedModem, rings: int = 2) -> None:
    await asyncio.to_thread(device.play, model.call_script(CALLER, rings=rings), 20.0)


def test_unplug_replug_goes_down_then_up_and_delivers_a_call(tmp_path):
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "usb-Conexant_USB_Modem-if00")

    async def scenario() -> float:
        async with RunningLine(line_config(device.path)) as (_, sink):
            await sink.wait_state("up")
            await asyncio.to_thread(device.unplug)
            down = await sink.wait_state("down")
            assert "went away" in (down.reason or "")
            model.cid_enabled = False  # a replugged modem starts with caller ID off
            mark = len(sink.items)
            plugged = time.monotonic()
            await asyncio.to_thread(device.plug)
            up = await sink.wait_state("up", after=mark)
            assert model.cid_enabled  # re-initialised after the reopen
            await play_call(device, model)
            call = await sink.wait_call("call", after=mark)
            assert call.number == "01012345678" and call.line == "desk"
            return up.at - plugged

    try:
        elapsed = asyncio.run(scenario())
    finally:
        device.close()
    assert elapsed < 2.0, f"device back → line up took {elapsed:.2f}s"


def test_fifty_replugs_leak_no_fds_or_tasks(tmp_path):
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")

    async def scenario() -> tuple[list[int], list[int], list[float]]:
        fds, tasks, times = [], [], []
        async with RunningLine(line_config(device.path)) as (line, sink):
            await sink.wait_state("up")
            for _ in range(50):
                await asyncio.to_thread(device.unplug)
                await sink.wait_state("down", after=len(sink.items))
                mark = len(sink.items)
                plugged = time.monotonic()
                await asyncio.to_thread(device.plug)
                up = await sink.wait_state("up", after=mark)
                times.append(up.at - plugged)
                fds.append(open_fds() - len(device.retired))
                tasks.append(len(asyncio.all_tasks()))
            assert line.sessions_up == 51
        return fds, tasks, times

    try:
        fds, tasks, times = asyncio.run(scenario())
    finally:
        device.close()
    # Steady state from the second cycle on (the first warms up executor threads).
    assert max(fds[1:]) == min(fds[1:]), fds
    assert max(tasks) == min(tasks), tasks
    assert max(times) < 2.0, times
    median, worst = sorted(times)[25] * 1000, max(times) * 1000
    print(f"replug → up over 50 cycles: median {median:.0f} ms, max {worst:.0f} ms")


def test_silent_modem_is_caught_by_keepalive_and_reinitialised(tmp_path):
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")

    async def scenario() -> None:
        config = line_config(device.path, keepalive=0.3, command_timeout=0.3)
        async with RunningLine(config) as (_, sink):
            await sink.wait_state("up")
            resets = model.commands.count("ATZ")
            model.personality = "silent"  # the modem "wanders off into the woods"
            down = await sink.wait_state("down", timeout=5)
            assert "stopped answering" in (down.reason or "")
            model.personality = "standard"  # power-cycled
            model.cid_enabled = False
            mark = len(sink.items)
            await sink.wait_state("up", after=mark, timeout=10)
            assert model.commands.count("ATZ") > resets and model.cid_enabled
            await play_call(device, model)
            await sink.wait_call("call", after=mark)

    try:
        asyncio.run(scenario())
    finally:
        device.close()


def test_keepalive_is_quiet_during_a_call(tmp_path):
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")
    ring = model.ring()

    class EndMarker(RecordingSink):
        """Notes how much the line had written when the call ended (the keep-alive resumes then)."""

        written_at_end = -1

        async def publish(self, event: CallEvent) -> None:
            if event.type == "end":
                self.written_at_end = len(device.received)
            await super().publish(event)

    marker = EndMarker()

    async def scenario() -> None:
        config = line_config(device.path, keepalive=0.2, command_timeout=0.3)
        async with RunningLine(config, ring_gap=1.0, sink=marker) as (_, sink):
            await sink.wait_state("up")
            await device_wait(device, b"AT\r")  # the keep-alive runs while idle
            await asyncio.to_thread(device.write, ring)
            await sink.wait_call("ring")
            # A keep-alive written just before the RING arrived may still be in flight.
            await asyncio.sleep(0.1)
            start = len(device.received)
            # Rings 0.5 s apart (more than the keep-alive interval), then ringing stops.
            for _ in range(2):
                await asyncio.sleep(0.5)
                await asyncio.to_thread(device.write, ring)
            await sink.wait_call("end", timeout=5)
            during = bytes(device.received[start : marker.written_at_end])
            assert b"AT\r" not in during, during
            await device_wait(device, b"AT\r", start=len(device.received))  # and resumes after

    try:
        asyncio.run(scenario())
    finally:
        device.close()


async def device_wait(device: PtyDevice, needle: bytes, *, start: int = 0, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in device.received[start:]:
        assert time.monotonic() < deadline, f"{needle!r} never written"
        await asyncio.sleep(0.01)


def test_two_lines_one_failing_the_other_unaffected(tmp_path):
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "good")
    gone = tmp_path / "not-plugged-in"

    async def scenario() -> None:
        good = RunningLine(line_config(device.path, name="good"))
        bad = RunningLine(line_config(str(gone), name="bad"))
        async with good as (_, good_sink), bad as (bad_line, bad_sink):
            down = await bad_sink.wait_state("down")
            assert "does not exist" in (down.reason or "") and "cidbridge ports" in (down.reason or "")
            await good_sink.wait_state("up")
            await play_call(device, model)
            call = await good_sink.wait_call("call")
            assert call.line == "good"
            assert bad_line.state == "down" and bad_sink.calls() == []

    try:
        asyncio.run(scenario())
    finally:
        device.close()


def test_replug_does_not_wait_for_a_grown_backoff(tmp_path, monkeypatch):
    """After a long outage the backoff is long; a device coming back is still picked up at once."""
    monkeypatch.setattr(serial_line, "BACKOFF_FIRST", 30.0)  # as if down for minutes
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")

    async def scenario() -> float:
        async with RunningLine(line_config(device.path)) as (_, sink):
            await sink.wait_state("up")
            await asyncio.to_thread(device.unplug)
            await sink.wait_state("down")
            mark = len(sink.items)
            plugged = time.monotonic()
            await asyncio.to_thread(device.plug)
            return (await sink.wait_state("up", after=mark, timeout=5)).at - plugged

    try:
        assert asyncio.run(scenario()) < 1.0
    finally:
        device.close()


def test_an_unexpected_error_restarts_the_session_instead_of_killing_the_line(tmp_path):
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")

    class FailsOnce(RecordingSink):
        failed = False

        async def publish(self, event: CallEvent) -> None:
            if not self.failed:
                self.failed = True
                raise RuntimeError("the call log is full")
            await super().publish(event)

    async def scenario() -> None:
        async with RunningLine(line_config(device.path), sink=FailsOnce()) as (line, sink):
            await sink.wait_state("up")
            await asyncio.to_thread(device.write, model.ring())
            down = await sink.wait_state("down")
            assert "RuntimeError: the call log is full" in (down.reason or "")
            mark = len(sink.items)
            await sink.wait_state("up", after=mark)
            await play_call(device, model)
            await sink.wait_call("call", after=mark)
            assert line.sessions_up == 2

    try:
        asyncio.run(scenario())
    finally:
        device.close()
