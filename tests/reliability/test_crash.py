"""Crash: SIGKILL at random moments during a stream of calls, then restart.

The daemon is killed without warning (as the OOM killer or a power cut of the process
would) while calls stream in on two lines and five clients listen.  After each kill
it is restarted on the same call log and port, and the clients reconnect on their own,
passing the last id they saw.

Checked: every event that was committed before a kill (read from the log by a second
connection, so it was really committed) is still there after the restart, unchanged;
the log passes SQLite's integrity check and the daemon opens it without complaint;
every client ends with every event exactly once and in order (one run of ids, no gap,
no repeat), the ones it missed while the daemon was down included; a restarted daemon's
calls get new ids (an id reused across restarts would merge two calls in the log).

Note what SIGKILL does not test: a power cut.  The log's ``synchronous=FULL`` is what
covers that; the soak measures its cost.
"""

from __future__ import annotations

import random
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from cidbridge.sim.modem import SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.reliability.support import CallLogReader, ClientFleet, cid_block
from tests.support.daemon import DaemonProcess, write_config
from tests.support.node import node_or_skip

KILLS = 6
CLIENTS = 5

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stream(threading.Thread):
    """Calls on one line, one every few milliseconds, until stopped."""

    def __init__(self, index: int, device: PtyDevice) -> None:
        super().__init__(name=f"stream-{index}", daemon=True)
        self.index, self.device = index, device
        self.sent = 0
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.device.write(b"\r\nRING\r\n", timeout=60)
            while not self.stopping.is_set():
                # While the daemon is down the pty's buffer fills and this waits for it.
                self.device.write(cid_block(f"0109{self.index}{self.sent:06d}"), timeout=60)
                self.sent += 1
                time.sleep(0.005)
        except BaseException as exc:
            self.error = exc


def test_sigkill_loses_no_committed_call(tmp_path: Path, record) -> None:
    node_or_skip()
    rng = random.Random(7)
    db = tmp_path / "calls.sqlite"
    modems = [SimulatedModem() for _ in range(2)]
    devices = [PtyDevice(m.receive, link=tmp_path / f"ttyCID-{i}") for i, m in enumerate(modems)]
    port = free_port()
    config = write_config(
        tmp_path / "crash.toml",
        lines=[{"name": f"line{i}", "port": d.path, "format": "modem-text"} for i, d in enumerate(devices)],
        db=db,
        server={"port": port},
        calls={"ring_gap": 1.0, "replay_calls": 0},
        log={"level": "warning"},
    )
    log = CallLogReader(db)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    fleet = ClientFleet(daemon.url, CLIENTS, last_id=0)
    streams = [Stream(i, d) for i, d in enumerate(devices)]
    committed: dict[int, tuple[str, str | None]] = {}
    restarts: list[float] = []
    try:
        fleet.wait_connected()
        for stream in streams:
            stream.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 2.0))
            # What is committed now must survive the kill.
            committed.update({row[0]: row[1:] for row in log.query("SELECT id, type, call_id FROM events")})
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait(10)
            started = time.monotonic()
            daemon = DaemonProcess(config)
            daemon.wait_ready(30)
            restarts.append(time.monotonic() - started)
            assert not [line for line in daemon.stderr_lines if "ERROR" in line or "Traceback" in line]
        for stream in streams:
            stream.stopping.set()
            stream.join(60)
            assert stream.error is None, repr(stream.error)
        time.sleep(1.5)  # the last calls end (ring gap 1 s)
        last_id = log.max_id()
        report = fleet.wait_all_received(last_id, timeout=120)
    finally:
        fleet.close()
        for stream in streams:
            stream.stopping.set()
        status = daemon.stop()
        for device in devices:
            device.close()
    assert status == 0

    after = {row[0]: row[1:] for row in log.query("SELECT id, type, call_id FROM events")}
    lost = {i: v for i, v in committed.items() if after.get(i) != v}
    assert not lost, f"committed events lost or changed by a crash: {list(lost.items())[:5]}"
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    first_id = min(after)
    assert sorted(after) == list(range(first_id, last_id + 1)), "ids are not contiguous"
    for client in report:
        assert client["duplicates"] == 0, client
        assert client["runs"] == [[first_id, last_id]], client
    # A restarted daemon starts new calls, never continues (or overwrites) old ones.
    merged = log.query(
        "SELECT call_id, count(*) FROM events WHERE type = 'call' GROUP BY call_id HAVING count(*) > 1"
    )
    assert merged == [], f"calls from different runs share an id: {merged[:5]}"
    calls = log.scalar("SELECT count(*) FROM calls")
    assert calls == log.scalar("SELECT count(*) FROM events WHERE type = 'call'")
    unfinished = log.scalar("SELECT count(*) FROM calls WHERE ended IS NULL")
    record(
        kills=KILLS,
        calls_sent=sum(s.sent for s in streams),
        calls_logged=calls,
        events_committed_before_kills=len(committed),
        events_lost=len(lost),
        restart_to_ready_s_max=round(max(restarts), 2),
        restart_to_ready_s_median=round(sorted(restarts)[len(restarts) // 2], 2),
        calls_left_open_by_kills=unfinished,
        client_reconnects=sum(c["connects"] - 1 for c in report),
    )
