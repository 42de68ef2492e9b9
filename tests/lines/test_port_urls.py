"""Any pyserial URL: socket:// (a box behind ser2net), loop://, rfc2217://; and why a port fails."""

from __future__ import annotations

import asyncio
import fcntl
import os

from cidbridge.lines.capture import RawCapture
from cidbridge.lines.diagnose import describe_open_error
from cidbridge.lines.port import close_port, open_port
from cidbridge.sim.boxes import Box
from cidbridge.sim.modem import Caller, SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.lines.netdevices import Rfc2217Server, TcpBox
from tests.lines.support import RunningLine, line_config

CALLER = Caller("01099998888", "PARK")


def test_box_behind_ser2net_comes_back_after_the_network_drops():
    box = TcpBox()
    frame = b"".join(data for _, data in Box("kr-adapter").call_script(CALLER))
    config = line_config(box.url, device="box", format="kr-adapter", name="net")

    async def scenario() -> None:
        async with RunningLine(config) as (_, sink):
            await sink.wait_state("up")
            await asyncio.to_thread(box.wait_connections, 1)
            box.send(frame)
            assert (await sink.wait_call("call")).number == "01099998888"
            box.drop()
            down = await sink.wait_state("down")
            assert "connection" in (down.reason or "") and box.url in (down.reason or "")
            mark = len(sink.items)
            await sink.wait_state("up", after=mark)  # reconnects on its own
            await asyncio.to_thread(box.wait_connections, 2)
            box.send(b"".join(data for _, data in Box("kr-adapter", line=2).call_script(CALLER)))
            assert (await sink.wait_call("call", after=mark)).line == "net:2"

    try:
        asyncio.run(scenario())
    finally:
        box.close()


def test_nothing_listening_is_one_sentence():
    box = TcpBox()
    url = box.url
    box.close()

    async def scenario() -> str | None:
        async with RunningLine(line_config(url, device="box")) as (_, sink):
            return (await sink.wait_state("down")).reason

    reason = asyncio.run(scenario())
    assert reason is not None and "nothing is listening" in reason and url in reason


def test_loop_url_echoes_what_is_written():
    async def scenario() -> bytes:
        reader, writer = await open_port("loop://", 9600)
        writer.write(b"RING\r\n")
        data = await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        await writer.wait_closed()
        return data

    assert asyncio.run(scenario()) == b"RING\r\n"


def test_modem_behind_rfc2217_initialises_and_delivers_a_call():
    model = SimulatedModem()
    device = PtyDevice(model.receive)
    server = Rfc2217Server(device.path)

    async def scenario() -> None:
        async with RunningLine(line_config(server.url, command_timeout=2.0)) as (_, sink):
            await sink.wait_state("up", timeout=15)
            assert model.cid_enabled
            await asyncio.to_thread(device.play, model.call_script(CALLER, rings=2), 20.0)
            assert (await sink.wait_call("call")).name == "PARK"

    try:
        asyncio.run(scenario())
    finally:
        server.close()
        device.close()


def test_busy_port_names_the_process_holding_it(tmp_path):
    device = PtyDevice(link=tmp_path / "ttyBUSY")
    holder = os.open(device.path, os.O_RDWR | os.O_NOCTTY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what another cidbridge or minicom does
    os.set_inheritable(holder, True)
    child = os.fork()
    if child == 0:  # the holder, a process of its own (its name is what the message shows)
        os.execvp("sleep", ["sleep", "30"])
    os.close(holder)
    try:

        async def scenario() -> str | None:
            async with RunningLine(line_config(device.path)) as (_, sink):
                return (await sink.wait_state("down")).reason

        reason = asyncio.run(scenario())
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
        device.close()
    assert reason is not None and f"sleep (pid {child})" in reason and "in use" in reason


def test_open_errors_say_what_to_do(tmp_path):
    missing = str(tmp_path / "ttyACM9")
    assert "cidbridge ports" in describe_open_error(
        missing, FileNotFoundError(2, "No such file or directory")
    )
    denied = describe_open_error(missing, PermissionError(13, "Permission denied"))
    assert "dialout" in denied and "usermod" in denied


def test_capture_rotates_by_size(tmp_path):
    path = tmp_path / "cap.bin"
    capture = RawCapture(path, max_bytes=10)
    for chunk in (b"0123456", b"789", b"abcdefgh", b"ij", b"klmnopqrst", b"uv"):
        capture.write(chunk)
    capture.close()
    kept = [path.with_name(f"cap.bin.{n}") for n in (3, 2, 1)] + [path]
    assert b"".join(p.read_bytes() for p in kept if p.exists()) == b"0123456789abcdefghijklmnopqrstuv"
    assert all(p.stat().st_size <= 10 for p in kept if p.exists())
    assert not path.with_name("cap.bin.4").exists()


def test_a_closed_session_releases_the_port_even_with_output_that_cannot_drain():
    """A device that stops reading (a hung modem, flow control off) leaves bytes unsent;
    closing the session must still release the port and its lock, or the next session
    finds the port "in use" by this very daemon until the bytes go (they never may)."""
    master, slave = os.openpty()  # nobody ever reads the master: nothing drains
    path = os.ttyname(slave)

    async def scenario() -> None:
        _, writer = await open_port(path, 115200)
        writer.write(b"AT\r" * 300_000)  # far beyond what the pty holds
        await close_port(writer, timeout=0.5)
        _, again = await open_port(path, 115200)  # would raise: could not exclusively lock
        await close_port(again, timeout=0.5)

    try:
        asyncio.run(scenario())
    finally:
        os.close(master)
        os.close(slave)


def test_a_lock_this_process_holds_is_named_as_its_own():
    master, slave = os.openpty()
    path = os.ttyname(slave)
    held = os.open(path, os.O_RDWR | os.O_NOCTTY)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        reason = describe_open_error(path, OSError(11, "Resource temporarily unavailable"))
    finally:
        for fd in (held, master, slave):
            os.close(fd)
    assert "this cidbridge" in reason and "in use by python" not in reason
