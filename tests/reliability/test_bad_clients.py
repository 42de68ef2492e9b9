"""Bad clients: one that stops reading, oversized and malformed packets, 1,000 connect cycles.

Five well-behaved socket.io-client panels listen while calls stream in; next to them,
hand-made clients (:class:`RawSocketIO`) misbehave.

Checked: the client that stops reading is cut off, once, while the good clients keep
receiving; the good clients receive every event, in order, on their first connection,
through all of it (their latency is reported per phase, not asserted); an oversized message
gets its sender cut off; malformed packets neither crash the daemon, nor disturb the
others, nor put a traceback in its log; after 1,000 connect/disconnect cycles and the
bad clients gone, the daemon's file descriptors are back where they were and its
memory growth is bounded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from cidbridge.sim.modem import SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.reliability.support import (
    CallLogReader,
    ClientFleet,
    ProcessProbe,
    RawSocketIO,
    cid_block,
    wait_until,
)
from tests.support.daemon import DaemonProcess, write_config
from tests.support.node import node_or_skip

GOOD_CLIENTS = 5
CYCLES = 1000
MAX_RSS_GROWTH_MB = 64
#: Seconds for Engine.IO to forget closed sessions (its sweep takes ping_timeout, 20 s).
SWEEP_WAIT = 25
#: Growth allowed from the first round of cycles to the second: 4 kB a connection.
MAX_CYCLE_ROUND_GROWTH_MB = 4
#: What the daemon logs when it cuts off a client that does not read (server/fanout.py).
SLOW_DROP = "is not reading its events; disconnecting it"

pytestmark = pytest.mark.slow

MALFORMED: list[tuple[bytes | str, int]] = [
    ("4zzz", 1),  # a Socket.IO packet type that does not exist
    ('42["unterminated', 1),  # broken JSON
    ("42" + "[" * 5000, 1),  # deep nesting
    ("40/nowhere,", 1),  # a namespace that does not exist
    ("9", 1),  # an Engine.IO packet type that does not exist
    ("", 1),  # empty
    (b"\xff\xfe\x00garbage", 2),  # binary junk
    ('451-["cti-event",{"_placeholder":true,"num":0}]', 1),  # a binary event with no attachment
    ("2probe", 1),  # a ping meant for the upgrade handshake, out of place
]


class Calls(threading.Thread):
    """Calls on one line at ``rate`` per second until stopped (``burst()`` for a rush)."""

    def __init__(self, device: PtyDevice) -> None:
        super().__init__(name="calls", daemon=True)
        self.device = device
        self.sent = 0
        self.rate = 20.0
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def call(self) -> None:
        self.device.write(cid_block(f"01055{self.sent:06d}"), timeout=30)
        self.sent += 1

    def run(self) -> None:
        try:
            self.device.write(b"\r\nRING\r\n")
            while not self.stopping.wait(1 / self.rate):
                self.call()
        except BaseException as exc:
            self.error = exc


def test_bad_clients_do_not_hurt_good_ones(tmp_path: Path, record) -> None:
    node_or_skip()
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")
    db = tmp_path / "calls.sqlite"
    config = write_config(
        tmp_path / "bad-clients.toml",
        lines=[{"name": "desk", "port": device.path, "format": "modem-text"}],
        db=db,
        # The connect rate limit is raised so that all 1,000 cycles really connect.
        server={"connect_burst": 2 * CYCLES, "connect_rate": 1000.0},
        calls={"ring_gap": 1.0, "replay_calls": 0},
        log={"level": "warning"},
    )
    daemon = DaemonProcess(config)
    fleet = None
    calls = Calls(device)
    raw: list[RawSocketIO] = []
    figures: dict[str, object] = {}
    try:
        daemon.wait_ready()
        probe = ProcessProbe(daemon.proc.pid)
        log = CallLogReader(db)
        fleet = ClientFleet(daemon.url, GOOD_CLIENTS, last_id=0)
        fleet.wait_connected()
        calls.start()

        def phase(name: str, seconds: float) -> None:
            fleet.reset_latencies()
            time.sleep(seconds)
            measured(name)

        def measured(name: str) -> None:
            report = fleet.report()
            figures[f"good_latency_ms_{name}_p50"] = max(c["latency_ms"]["p50"] or 0 for c in report)
            figures[f"good_latency_ms_{name}_p99"] = max(c["latency_ms"]["p99"] or 0 for c in report)
            figures[f"rss_mb_phase_{name}"] = round(probe.rss_mb(), 1)

        phase("quiet", 3)
        fds_before, rss_before = probe.fds(), probe.rss_mb()

        # 1. A client that stops reading, during a rush of calls: the daemon cuts it off
        # once 1 MiB waits for it (after the kernel's socket buffers fill, so this takes a
        # while), and the good clients keep receiving meanwhile.
        stuck = RawSocketIO(daemon.url, receive_buffer=4096)
        stuck.connect()
        raw.append(stuck)
        received_before = [c["received"] for c in fleet.report()]
        committed_before = log.max_id()
        stuck_since = time.monotonic()
        calls.rate = 200.0
        fleet.reset_latencies()
        wait_until(
            lambda: any(SLOW_DROP in line for line in daemon.stderr_lines), 180, "the stuck client cut off"
        )
        committed = log.max_id() - committed_before
        received = [c["received"] - before for c, before in zip(fleet.report(), received_before, strict=True)]
        figures["not_reading_client_cut_off_after_s"] = round(time.monotonic() - stuck_since, 1)
        measured("with_a_client_not_reading")
        calls.rate = 20.0
        # Not held up by it: each good client had most of what was committed meanwhile
        # (a margin for events in flight; a client held up would have next to none).
        assert committed > 200, committed
        assert min(received) > committed // 2, (received, committed)
        # Only the stuck client is cut off.  (The daemon may log its drop more than once:
        # events that arrive before the disconnect completes find it still over the limit.)
        dropped_clients = {
            line.split(" client ", 1)[1].split()[0] for line in daemon.stderr_lines if SLOW_DROP in line
        }
        assert len(dropped_clients) == 1, dropped_clients

        # 2. Oversized messages: the sender is cut off.
        for size in (100_000, 2_000_000):
            big = RawSocketIO(daemon.url)
            big.connect()
            big.send('42["cti-event","' + "A" * size + '"]')
            assert big.closed_by_server(10), f"a {size}-byte message did not get its sender cut off"
            big.close()

        # 3. Malformed packets, each on its own connection and all on one.
        together = RawSocketIO(daemon.url)
        together.connect()
        raw.append(together)
        for payload, opcode in MALFORMED:
            alone = RawSocketIO(daemon.url)
            alone.connect()
            alone.send(payload, opcode)
            alone.close()
            if not together.closed_by_server(0.01):
                together.send(payload, opcode)
        phase("with_malformed_packets", 2)
        assert daemon.proc.poll() is None

        # 4. Connect/disconnect cycles, in two rounds of 1,000.  Engine.IO forgets a
        # closed session only when its service task sweeps (every ping_timeout, 20 s), so
        # memory is compared after each round's sweep: a leak grows round over round.
        rss_rounds = []
        for _ in range(2):
            started, refused = time.monotonic(), 0
            for _ in range(CYCLES):
                cycle = RawSocketIO(daemon.url)
                try:
                    cycle.connect()
                except ConnectionRefusedError:
                    refused += 1
                cycle.close()
            figures["connect_cycles_per_s"] = round(CYCLES / (time.monotonic() - started))
            assert refused == 0
            time.sleep(SWEEP_WAIT)
            rss_rounds.append(round(probe.rss_mb(), 1))
        figures["rss_mb_after_each_1000_cycles"] = rss_rounds
        assert rss_rounds[1] - rss_rounds[0] < MAX_CYCLE_ROUND_GROWTH_MB, rss_rounds

        phase("after", 2)
        calls.stopping.set()
        calls.join(30)
        assert calls.error is None, repr(calls.error)
        assert stuck.closed_by_server(10), "the stuck client's connection is still open"
        for client in raw:
            client.close()
        time.sleep(1.5)  # the last call ends; the server notices the closed sockets
        last_id = log.max_id()
        first_id = log.scalar("SELECT min(id) FROM events")
        report = fleet.wait_all_received(last_id, timeout=60)
        for client in report:
            assert client["duplicates"] == 0, client
            assert client["runs"] == [[first_id, last_id]], client
            assert client["connects"] == 1, client
        fds_after = wait_until(
            lambda: probe.fds() <= fds_before + 1 and probe.fds(), 30, "descriptors back to the baseline"
        )
        rss_after = probe.rss_mb()
        _, health = daemon.get("/healthz")
        assert health["clients"] == GOOD_CLIENTS
        assert rss_after - rss_before < MAX_RSS_GROWTH_MB
        # Misbehaving clients are the clients' problem: no traceback in the daemon's log.
        tracebacks = [i for i, line in enumerate(daemon.stderr_lines) if "Traceback" in line]
        assert not tracebacks, "\n".join(daemon.stderr_lines[tracebacks[0] - 1 : tracebacks[0] + 30])
    finally:
        calls.stopping.set()
        for client in raw:
            client.close()
        if fleet is not None:
            fleet.close()
        status = daemon.stop()
        device.close()
    assert status == 0
    record(
        **figures,
        calls=calls.sent,
        events=last_id - first_id + 1,
        fds_before=fds_before,
        fds_after=fds_after,
        rss_mb_before=round(rss_before, 1),
        rss_mb_after=round(rss_after, 1),
    )
