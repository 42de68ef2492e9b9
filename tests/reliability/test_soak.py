"""Soak: 10,000 calls across 4 lines, 50 clients, USB unplug/replug, a client reconnecting in a loop.

Real processes: ``cidbridge serve`` reading four simulated modems on ptys, and 50
socket.io-client connections under Node.  The calls are streamed as fast as the
daemon takes them (the pty's flow control paces the writers), so the test also
measures the daemon's throughput and what limits it.

Checked: every call is in the log exactly once and ended exactly once; every client
received every event (by id, no gap, no repeat), the reconnecting one included; the
daemon's open file descriptors are flat and its memory growth is reported (and bounded).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import pytest

from cidbridge.sim.modem import SimulatedModem
from cidbridge.sim.pty import PtyDevice
from cidbridge.store import CallLog
from tests.reliability.support import (
    CallLogReader,
    ClientFleet,
    ProcessProbe,
    cid_block,
    healthz_line,
    wait_until,
)
from tests.support.daemon import DaemonProcess, write_config
from tests.support.node import node_or_skip

CALLS = int(os.environ.get("CIDBRIDGE_SOAK_CALLS", "10000"))
LINES = 4
CLIENTS = 50
#: Each line is unplugged and replugged after this many of its calls.
UNPLUG_EVERY = 600
#: Bound on RSS growth after the first 20 % of the calls: 1.5 MB measured, 4x that
#: allowed.  Undelivered replays kept by closed Engine.IO sockets grew it by 8-14 MB.
MAX_RSS_GROWTH_MB = 6


pytestmark = pytest.mark.slow


def number_for(line: int, call: int) -> str:
    return f"010{line}{call:07d}"


class Feeder(threading.Thread):
    """Streams one line's calls, unplugging and replugging the device every UNPLUG_EVERY calls."""

    def __init__(self, index: int, device: PtyDevice, calls: int, daemon: DaemonProcess, log: CallLogReader):
        super().__init__(name=f"feeder-{index}", daemon=True)
        self.index, self.device, self.calls, self.daemon, self.log = index, device, calls, daemon, log
        self.replugs = 0
        self.replug_s = 0.0  # time spent draining, unplugging and waiting for the line
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.device.write(b"\r\nRING\r\n", timeout=30)  # the line shows rings: calls end by ring gap
            for call in range(self.calls):
                if call and call % UNPLUG_EVERY == 0:
                    self.replug(number_for(self.index, call - 1))
                self.device.write(cid_block(number_for(self.index, call)), timeout=30)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def replug(self, last_number: str) -> None:
        started = time.monotonic()
        # Unplugging loses what the daemon has not read yet: wait until it has all of it.
        wait_until(
            lambda: self.log.scalar("SELECT 1 FROM calls WHERE number = ?", last_number),
            120,
            f"line{self.index}'s call {last_number} in the log before unplugging",
        )
        self.device.unplug()
        wait_until(lambda: healthz_line(self.daemon, f"line{self.index}") == "down", 30, "line down")
        self.device.plug()
        wait_until(lambda: healthz_line(self.daemon, f"line{self.index}") == "up", 60, "line back up")
        self.replugs += 1
        self.replug_s += time.monotonic() - started
        self.device.write(b"\r\nRING\r\n", timeout=30)


def fsync_cost_ms(folder: Path, events: int = 300) -> dict[str, float]:
    """Milliseconds per committed event in a call log on this disk, with and without fsync."""
    figures = {}
    for mode in ("FULL", "OFF"):
        log = CallLog(folder / f"fsync-{mode}.sqlite", synchronous=mode).open()
        try:
            started = time.perf_counter()
            for i in range(events):
                log.append(
                    {
                        "time": "2026-01-01T00:00:00+00:00",
                        "type": "ring",
                        "call_id": f"c{i}",
                        "line": "x",
                        "ring_count": 1,
                    }
                )
            figures[mode] = round((time.perf_counter() - started) * 1000 / events, 3)
        finally:
            log.close()
    return figures


def test_soak(tmp_path: Path, record) -> None:
    node_or_skip()
    db = tmp_path / "calls.sqlite"
    modems = [SimulatedModem() for _ in range(LINES)]
    devices = [PtyDevice(m.receive, link=tmp_path / f"ttyCID-{i}") for i, m in enumerate(modems)]
    config = write_config(
        tmp_path / "soak.toml",
        lines=[{"name": f"line{i}", "port": d.path, "format": "modem-text"} for i, d in enumerate(devices)],
        db=db,
        calls={"ring_gap": 1.0, "replay_calls": 0},
        log={"level": "warning"},
    )
    daemon = DaemonProcess(config)
    fleet = None
    try:
        daemon.wait_ready()
        probe = ProcessProbe(daemon.proc.pid)
        log = CallLogReader(db)
        fleet = ClientFleet(daemon.url, CLIENTS, reconnecting=1, cycle_ms=400, last_id=0)
        fleet.wait_connected()
        fds_before, rss_before = probe.fds(), probe.rss_mb()

        per_line = CALLS // LINES
        feeders = [Feeder(i, d, per_line, daemon, log) for i, d in enumerate(devices)]
        clients_probe = ProcessProbe(fleet.proc.pid)
        cpu_before, clients_cpu_before, started = probe.cpu_s(), clients_probe.cpu_s(), time.monotonic()
        for feeder in feeders:
            feeder.start()
        samples: list[tuple[int, float, int]] = []  # (calls logged, RSS MB, fds)
        while any(f.is_alive() for f in feeders):
            time.sleep(2)
            samples.append((log.scalar("SELECT count(*) FROM calls"), probe.rss_mb(), probe.fds()))
            assert time.monotonic() - started < 600, "the soak stream took over 10 minutes"
        for feeder in feeders:
            assert feeder.error is None, f"{feeder.name}: {feeder.error!r}"
        total = per_line * LINES
        wait_until(
            lambda: log.scalar("SELECT count(*) FROM calls WHERE ended IS NOT NULL") >= total,
            120,
            f"all {total} calls logged and ended",
        )
        elapsed = time.monotonic() - started
        cpu = probe.cpu_s() - cpu_before
        clients_cpu = clients_probe.cpu_s() - clients_cpu_before
        last_id = log.max_id()
        first_id = log.scalar("SELECT min(id) FROM events")
        report = fleet.wait_all_received(last_id, timeout=180)
        time.sleep(1)  # let the reconnecting client settle before counting fds
        fds_after, rss_after = probe.fds(), probe.rss_mb()

        # Every call exactly once, ended exactly once.
        sent = {number_for(i, k) for i in range(LINES) for k in range(per_line)}
        calls = log.query("SELECT number, count(*) FROM calls GROUP BY number")
        assert {n for n, _ in calls} == sent
        assert [n for n, c in calls if c != 1] == []
        per_call = log.query(
            "SELECT call_id, sum(type = 'call'), sum(type = 'end') FROM events "
            "WHERE type IN ('call', 'end') GROUP BY call_id"
        )
        assert len(per_call) == total
        assert [row for row in per_call if row[1:] != (1, 1)] == []
        # Every client got every event once, in order: one run from the first id to the last.
        for client in report:
            assert client["duplicates"] == 0, client
            assert client["runs"] == [[first_id, last_id]], client
        reconnecting = report[0]
        assert reconnecting["reconnecting"] and reconnecting["connects"] > 2
        # Flat: no descriptor kept per call, replug or reconnect; memory growth bounded.
        assert fds_after <= fds_before + 2, (fds_before, fds_after)
        warm = [rss for logged, rss, _ in samples if logged >= total * 0.2] or [rss_before]
        growth = rss_after - warm[0]
        assert growth < MAX_RSS_GROWTH_MB, samples

        steady = [c for c in report if not c["reconnecting"]]
        latencies = [c["latency_ms"]["p50"] for c in steady if c["latency_ms"]["p50"] is not None]
        streaming_s = elapsed - statistics.mean(f.replug_s for f in feeders)
        record(
            calls=total,
            events=last_id - first_id + 1,
            lines=LINES,
            clients=CLIENTS,
            replugs=sum(f.replugs for f in feeders),
            reconnects=reconnecting["connects"] - 1,
            seconds=round(elapsed, 1),
            calls_per_s=round(total / elapsed),
            events_per_s=round((last_id - first_id + 1) / elapsed),
            replug_wait_s_per_line=round(statistics.mean(f.replug_s for f in feeders), 1),
            calls_per_s_between_replugs=round(total / streaming_s),
            daemon_cpu_s=round(cpu, 1),
            daemon_cpu_share_of_a_core=f"{cpu / elapsed:.0%}",
            clients_cpu_s=round(clients_cpu, 1),
            client_latency_p50_ms=statistics.median(latencies),
            client_latency_p99_ms_worst=max(c["latency_ms"]["p99"] or 0 for c in steady),
            reconnecting_client_latency_p99_ms=reconnecting["latency_ms"]["p99"],
            rss_mb_start=round(rss_before, 1),
            rss_mb_after_20pct=round(warm[0], 1),
            rss_mb_end=round(rss_after, 1),
            rss_growth_mb=round(growth, 1),
            fds_start=fds_before,
            fds_end=fds_after,
            sqlite_ms_per_event=fsync_cost_ms(tmp_path),
        )
    finally:
        if fleet is not None:
            fleet.close()
        daemon.stop()
        for device in devices:
            device.close()
