"""sd_notify and the watchdog, against a real AF_UNIX datagram socket like systemd's."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidbridge.service import Notifier, describe, keep_alive, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    try:
        yield path, sock
    finally:
        sock.close()


def test_ready_status_and_watchdog_arrive_as_datagrams(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = Notifier(path)
    notifier.ready("1/1 lines up; 0 clients")
    assert sock.recv(4096).decode().split("\n") == ["READY=1", "STATUS=1/1 lines up; 0 clients"]
    notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.status("1/1 lines up; 0 clients")  # unchanged: not sent again
    notifier.status("0/1 lines up; 0 clients; a down: unplugged")
    assert sock.recv(4096) == b"STATUS=0/1 lines up; 0 clients; a down: unplugged"
    notifier.reloading()
    reloading = sock.recv(4096).decode().split("\n")
    assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
    notifier.stopping()
    assert sock.recv(4096).decode().startswith("STOPPING=1")
    notifier.close()


def test_abstract_namespace_address() -> None:
    name = f"cidbridge-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier("@" + name).send("READY=1")
        assert sock.recv(100) == b"READY=1"


def test_without_notify_socket_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    assert not Notifier.from_environment({}).enabled
    assert Notifier.from_environment({}).send("READY=1") is False
    # A socket that went away (systemd restarted) is not an error for the daemon.
    assert Notifier(str(tmp_path / "gone")).send("READY=1") is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None


def test_watchdog_pings_stop_while_the_event_loop_is_blocked(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """The pings come from the loop itself: a blocked loop sends none, so systemd restarts it."""
    path, sock = notify_socket
    sock.setblocking(False)

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(keep_alive(Notifier(path), 0.05, lambda: "ok"))
        await asyncio.sleep(0.3)
        before = _drain(sock)
        time.sleep(0.5)  # the loop hangs (a blocking call): no ping can be sent
        during = _drain(sock)
        task.cancel()
        return before, during

    before, during = asyncio.run(scenario())
    assert before >= 3
    assert during == 0


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            if sock.recv(4096) == b"WATCHDOG=1":
                count += 1
        except BlockingIOError:
            return count


def test_status_line_names_the_lines_that_are_down() -> None:
    lines = {
        "front": {"state": "up", "reason": None},
        "back": {"state": "down", "reason": "/dev/ttyACM1 does not exist"},
    }
    assert describe(lines, 1) == "1/2 lines up; 1 client; back down: /dev/ttyACM1 does not exist"
    assert describe({"front": {"state": "up"}}, 3) == "1/1 lines up; 3 clients"
