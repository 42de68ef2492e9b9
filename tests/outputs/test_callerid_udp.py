"""CallerID.com UDP out and back in, between two real daemons, through a test socket on 127.0.0.1.

Daemon A reads a call from a pty modem and sends it as a Whozz Calling unit would; the
test receives every packet (checking its size and the field layout POS software
parses), then forwards it unchanged to daemon B's UDP input, which must take it as a
call like any other.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Any

from cidbridge.sim.modem import Caller
from tests.support.daemon import DaemonProcess, write_config

FIELD_REGEX = re.compile(
    rb".*(\d\d) ([IO]) ([ESB]) (\d{4}) ([GB]) (.\d) (\d\d\/\d\d) (\d\d:\d\d [AP]M) (.{8,15})(.*)"
)
DETAIL_REGEX = re.compile(rb".*(\d\d) ([NFR]) {13}(\d\d\/\d\d) (\d\d:\d\d:\d\d)")


def receiver() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(15)
    return sock, sock.getsockname()[1]


def wait_for(daemon: DaemonProcess, check: Any, what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; {daemon.stderr()}")


def test_a_modem_call_goes_out_as_unit_packets_and_comes_back_in_as_a_call(
    modem, start_daemon, tmp_path
) -> None:
    model, device = modem
    out, out_port = receiver()
    echo, echo_port = receiver()  # where B's own UDP output sends (it must send nothing here)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b: DaemonProcess | None = None
    try:
        a = start_daemon(
            [{"name": "front-desk", "port": device.path, "device": "modem"}],
            calls={"ring_gap": 1.0},
            udp={
                "send": True,
                "send_to": "127.0.0.1",
                "send_port": out_port,
                "unit": 9,
                "serial": "0a0b0c0d0e0f",
                "line_numbers": {"front-desk": 3},
            },
        )
        # B has its own call log (start_daemon's daemons share one).
        b = DaemonProcess(
            write_config(
                tmp_path / "b.toml",
                lines=[],
                db=tmp_path / "b.sqlite",
                calls={"ring_gap": 1.0},
                udp={
                    "listen": True,
                    "listen_host": "127.0.0.1",
                    "listen_port": 0,
                    "channels": {"9:03": "from-a"},
                    "send": True,
                    "send_to": "127.0.0.1",
                    "send_port": echo_port,
                },
            )
        )
        b.wait_ready()
        _, health = b.get("/healthz")
        assert health["lines"]["udp"]["state"] == "up"
        b_port = int(health["lines"]["udp"]["port"].rsplit(":", 1)[1])

        device.play(model.call_script(Caller("01012345678", "KIM MINJI"), rings=2), speed=10)
        received: list[bytes] = []
        while not received or received[-1][26:27] != b"E":
            packet, _ = out.recvfrom(512)
            received.append(packet)
            sender.sendto(packet, ("127.0.0.1", b_port))

        # What a unit sends: 52-byte detail and 83-byte call records, unit 9, our serial.
        assert [len(p) for p in received] == [52, 83, 52, 83]  # R, S, R, E
        for packet in received:
            assert packet[:5] == b"^^<U>" and packet[5:11] == (9).to_bytes(6, "big")
            assert packet[11:20] == b"<S>" + bytes.fromhex("0a0b0c0d0e0f") and packet[20:21] == b"$"
        start = FIELD_REGEX.match(received[1][21:])
        assert start is not None
        assert start.groups()[:3] == (b"03", b"I", b"S")
        assert start.group(9).strip() == b"01012345678" and start.group(10).strip() == b"KIM MINJI"
        ring = DETAIL_REGEX.match(received[0][21:])
        assert ring is not None and ring.group(1) == b"03" and ring.group(2) == b"R"

        # B took them in as a call on line "from-a", like one from a serial box.
        def b_events() -> list[dict[str, Any]]:
            _, body = b.get("/api/events?after=0")
            return [e for e in body if e["type"] != "line"]

        def b_done() -> bool:
            packets = b.get("/healthz")[1]["lines"]["udp"]["packets"]
            # The simulator rings 0.1 s apart: two rings in one second are identical packets,
            # which a receiver (B, like the vendor's own software) drops as a repeat.
            return packets["accepted"] + packets["duplicate"] == 4

        wait_for(b, b_done, "B to take in the 4 packets")
        events = wait_for(
            b, lambda: (ev := b_events()) and any(e["type"] == "end" for e in ev) and ev, "B's end"
        )
        call = next(e for e in events if e["type"] == "call")
        assert (call["line"], call["number"], call["name"]) == ("from-a", "01012345678", "KIM MINJI")
        assert {e["call_id"] for e in events} == {call["call_id"]}  # one call, repeats and E included
        # The E record says 0 s off hook: on B the call was not answered.
        final = wait_for(b, lambda: (ev := b_events()) and ev[-1]["outcome"] == "missed" and ev[-1], "E")
        assert final["ring_count"] == 2  # the E record's ring count

        # B does not send the units' calls out again (they are on the LAN already).
        def b_output_idle() -> dict[str, Any] | None:
            status = b.get("/healthz")[1]["outputs"]["callerid-udp"]
            return status if status["queued"] == 0 else None

        status = wait_for(b, b_output_idle, "B's UDP output to go through its queue")
        assert status["counters"]["packets_sent"] == 0
        a_status = a.get("/healthz")[1]["outputs"]["callerid-udp"]
        assert a_status["state"] == "up" and a_status["counters"]["packets_sent"] == 4
    finally:
        if b is not None:
            b.stop()
        for sock in (out, echo, sender):
            sock.close()
