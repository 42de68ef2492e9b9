"""What the outputs cost the Socket.IO path: NCID, UDP, MQTT and a webhook on, off, and with a hung webhook.

    .venv/bin/python bench/outputs.py [--clients 100] [--rounds 5] [--trials 20] [--calls 30]

(``cd bench/fanout && npm ci`` first; ``mosquitto``, Debian's package, for the MQTT
part, which is left out with the reason printed when it is missing.)  Three
``cidbridge serve`` run at once, all pinned to CPU 0, each with ``--clients``
socket.io-client connections (the fan-out bench's ``loadgen.js``, one Node process
each, CPU 1) and a caller-ID box (``modem-text``) on its own pseudo-terminal:

* **off**: no output;
* **on**: ``[ncid]`` with a raw NCID client connected, ``[udp] send`` to a UDP socket
  of this script on 127.0.0.1, ``[mqtt]`` (Home Assistant discovery on) to a real
  mosquitto on a free loopback port, and a ``[[webhooks]]`` receiver process that
  answers 200 (``tests/outputs/webhook_receiver.py``);
* **hung**: the same, but the webhook's receiver accepts the TCP connection and
  never reads or answers.

Part 1, the Socket.IO last-client time: one posted call at a time (``loadgen.js``'s
trial: the POST, then every client having the call), to the three daemons in turn
and ``--gap`` seconds apart, the order rotated each round, so that the three share
the moments of a shared machine.  Each posted call is on a new line (``loadgen.js``
names the line after the number): MQTT publishes that line's Home Assistant
discovery with every call, more than a front desk's few lines ever cost.

Part 2, serial to client: calls written into each daemon's pty (RING, then the
caller-ID block), timed from the block's last byte to socket.io client 0 and to the
NCID client's ``CID:`` line (``bench/ncid.py``'s timing).

Peers (mosquitto, the receivers, this script's NCID and UDP readers) run on CPU 1.
A benchmark, not a test: it prints the machine, medians and ratios, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "fanout"))
sys.path.insert(0, str(ROOT))
import ncid  # noqa: E402  (NCID client, pty timing, /healthz)
import run as fanout  # noqa: E402  (the fan-out bench: daemon, load generator, trials)
from machine import machine  # noqa: E402

from tests.outputs.support import Mosquitto, Receiver  # noqa: E402

#: The configurations, in the order of the table; "off2" (``--control``) is a second "off",
#: whose ratio to "off" shows how far two identical daemons differ in the same run.
CONFIGS = ("off", "on", "hung", "off2")
#: The ratios printed: (numerator, denominator).
RATIOS = (("on", "off"), ("hung", "off"), ("hung", "on"), ("off2", "off"))
SECRET = "bench-webhook-secret-0123456789"
#: What the end of the run shows of each output's /healthz entry.
SHOWN = ("state", "reason", "delivered", "dropped", "queued", "clients")


def mosquitto_missing() -> str | None:
    """Why the MQTT part cannot run here, or None."""
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        return None
    return "mosquitto is not installed (apt-get install mosquitto)"


class UdpSink:
    """A UDP socket on 127.0.0.1 that counts the CallerID.com packets sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                self.sock.recv(2048)
            except OSError:
                return
            self.packets += 1


@contextmanager
def hung_receiver() -> Iterator[str]:
    """An HTTP address that accepts every connection and never reads or answers; yields its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        server.close()
        for conn in held:
            conn.close()


def outputs_config(name: str, udp_port: int, mqtt_port: int | None, webhook_url: str) -> list[str]:
    """The config lines that turn every output on, for configuration ``name``."""
    lines = [*ncid.NCID_CONFIG, "[udp]", "send = true", 'send_to = "127.0.0.1"', f"send_port = {udp_port}"]
    if mqtt_port is not None:
        # Own client id and topics: the two daemons share one broker.
        lines += ["[mqtt]", 'host = "127.0.0.1"', f"port = {mqtt_port}"]
        lines += [f'client_id = "bench-{name}"', f'topic_prefix = "bench-{name}"']
    lines += ["[[webhooks]]", f'name = "bench-{name}"', f'url = "{webhook_url}"', f'secret = "{SECRET}"']
    return lines


class Daemon:
    """One configuration: its daemon, its Socket.IO clients, its pty and NCID client."""

    def __init__(self, name: str, stack: ExitStack, workdir: Path, clients: int, extra: list[str]) -> None:
        self.name = name
        self.master, slave, tty_path = ncid.open_pty()
        stack.callback(os.close, self.master)
        stack.callback(os.close, slave)
        workdir.mkdir()
        server = fanout.cidbridge_server(workdir, line_port=tty_path, extra=extra)
        self.url, _ = stack.enter_context(server)
        self.gen = stack.enter_context(fanout.loadgen(self.url, clients))
        self.sio = ncid.Seen()
        self.ncid = ncid.Seen() if extra else None
        if self.ncid is not None:
            stack.callback(ncid.raw_client(ncid.ncid_port(self.url), self.ncid).close)

    def trial(self, number: int) -> float | None:
        """One posted call: ms from the POST to the last client having it (None: not all did)."""
        answer = fanout.command(self.gen, {"cmd": "trial", "k": 1, "base": number, "timeout_ms": 20_000})
        return answer["last_ms"]

    def paths(self) -> dict[str, ncid.Seen]:
        found = {f"{self.name}: socket.io client 0": self.sio}
        if self.ncid is not None:
            found[f"{self.name}: NCID raw CID: line"] = self.ncid
        return found


def fanout_part(daemons: list[Daemon], rounds: int, trials: int, gap: float) -> None:
    """Part 1: prints each round's medians and ratios, then over every trial."""
    names = [d.name for d in daemons]
    every: dict[str, list[float]] = {name: [] for name in names}
    failed = 0
    number = 2_000_000
    print(f"Socket.IO last-client time, ms (median of {trials} posted calls per configuration and round):")
    print(row("round", {}, names, header=True))
    for round_ in range(rounds):
        order = daemons[round_ % len(daemons) :] + daemons[: round_ % len(daemons)]
        this: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(trials):
            for daemon in order:
                number += 1
                started = time.monotonic()
                last = daemon.trial(number)
                if last is None:
                    failed += 1
                else:
                    this[daemon.name].append(last)
                time.sleep(max(0.0, gap - (time.monotonic() - started)))
        for name, values in this.items():
            every[name] += values
        print(row(str(round_ + 1), medians(this), names))
    print(row("all", medians(every), names))
    p90 = {name: fanout.percentile(values, 90) for name, values in every.items() if values}
    print(row("p90", p90, names) + f"   (calls not delivered to every client: {failed})")


def medians(values: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(v) for name, v in values.items() if v}


def row(label: str, figures: dict[str, float], names: list[str], *, header: bool = False) -> str:
    """One line of part 1's table: each configuration's figure, then the ratios between them."""
    ratios = [(a, b) for a, b in RATIOS if a in names and b in names]
    if header:
        heads = [f"{n:>9}" for n in names] + [f"{a + '/' + b:>10}" for a, b in ratios]
        return f"  {label:<6}" + "".join(heads)
    line = f"  {label:<6}" + "".join(f"{figures[n]:9.2f}" if n in figures else "        -" for n in names)
    for a, b in ratios:
        line += f"{figures[a] / figures[b]:10.3f}" if a in figures and b in figures else "         -"
    return line


def serial_part(daemons: list[Daemon], calls: int) -> None:
    """Part 2: pty byte -> socket.io client 0 and -> the NCID client's line, for each daemon."""
    for daemon in daemons:
        ncid.socketio_watcher(daemon.gen, daemon.sio)
    latencies: dict[str, list[float]] = {name: [] for d in daemons for name in d.paths()}
    for i in range(calls):
        for daemon in daemons:
            for name, ms in ncid.time_call(daemon.master, f"0108{i:07d}", daemon.paths()).items():
                latencies[name].append(ms)
        time.sleep(ncid.RING_GAP + 0.5)  # every call ended before the next
    print("\nlast byte into the pty -> the client has the call (ms):")
    ncid.report(latencies, width=34)
    sio = {d.name: statistics.median(latencies[f"{d.name}: socket.io client 0"]) for d in daemons}
    print(
        "  socket.io client 0, p50 ratios: "
        + ", ".join(f"{a}/{b} {sio[a] / sio[b]:.3f}" for a, b in RATIOS if a in sio and b in sio)
    )
    for daemon in daemons:
        if daemon.ncid is not None:
            nc = statistics.median(latencies[f"{daemon.name}: NCID raw CID: line"])
            print(f"  {daemon.name}: NCID / socket.io client 0, p50: {nc / sio[daemon.name]:.2f}")


def report_outputs(daemons: list[Daemon], udp: UdpSink, receiver: Receiver) -> None:
    """What each output did (from /healthz), so the figures are known to include the work."""
    print("\noutputs after the run (/healthz):")
    for daemon in daemons:
        outputs: dict[str, Any] = ncid.health(daemon.url).get("outputs", {})
        for key, state in outputs.items():
            shown = {k: state[k] for k in SHOWN if k in state}
            print(f"  {daemon.name:<5} {key:<18} {shown}")
    print(f"  UDP packets received by this script: {udp.packets}; requests the 200 receiver got: ", end="")
    print(len(receiver.received()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="socket.io-client connections per daemon")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20, help="posted calls per configuration and round")
    parser.add_argument("--gap", type=float, default=0.6, help="seconds from one trial to the next")
    parser.add_argument("--calls", type=int, default=30, help="pty calls per configuration (part 2)")
    parser.add_argument("--control", action="store_true", help='a fourth daemon, "off" again: the noise')
    args = parser.parse_args()
    if not (HERE / "fanout" / "node_modules" / "socket.io-client").is_dir():
        sys.exit("bench/outputs: run `npm ci` in bench/fanout first")
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # this script and the peers it starts: CPU 1
    print(f"machine: {machine(node=True)}")
    missing = mosquitto_missing()
    print(f"MQTT: {'left out: ' + missing if missing else 'on, against mosquitto on 127.0.0.1'}")
    print(f"{args.clients} socket.io clients per daemon; daemons on CPU 0, clients and peers on CPU 1\n")
    with tempfile.TemporaryDirectory(prefix="cidbridge-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        udp = UdpSink()
        stack.callback(udp.sock.close)
        mqtt_port = None
        if missing is None:
            (work / "mosquitto").mkdir()
            broker = Mosquitto(work / "mosquitto", persistence=False)
            broker.start()
            stack.callback(broker.stop)
            mqtt_port = broker.port
        (work / "receiver").mkdir()
        receiver = Receiver(work / "receiver")
        receiver.start()
        stack.callback(receiver.stop)
        hung_url = stack.enter_context(hung_receiver())
        extras = {
            "off": [],
            "on": outputs_config("on", udp.port, mqtt_port, receiver.url),
            "hung": outputs_config("hung", udp.port, mqtt_port, hung_url),
        }
        names = [*CONFIGS[:3], *(["off2"] if args.control else [])]
        daemons = [Daemon(name, stack, work / name, args.clients, extras.get(name, [])) for name in names]
        time.sleep(1.0)  # every client connected and past its start-up
        fanout_part(daemons, args.rounds, args.trials, args.gap)
        serial_part(daemons, args.calls)
        report_outputs(daemons, udp, receiver)
    print(f"\nmachine after: {machine(node=True)}")


if __name__ == "__main__":
    main()
