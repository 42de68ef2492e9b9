"""An idle daemon sleeps: no busy polling, no 0.1 s ticks (it runs on a PC for months).

Counted: context switches of the daemon's main thread (the event loop's), from
/proc/<pid>/task/<pid>/status, over a quiet window; every wake-up of the loop is at
least one.  The bounds leave room for a busy machine; what they catch is a timer
ticking (a tick every 0.1 s is 50 in a window, per timer).
"""

from __future__ import annotations

import time
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path

from cidbridge.sim.modem import SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.support.daemon import DaemonProcess, write_config

#: Wake-ups of the event loop's thread allowed in the quiet window.  uvicorn's own main
#: loop alone would make 50 (a tick every 0.1 s); a line's keep-alive AT comes after
#: 30 s of silence and Engine.IO's sweep every 20 s, outside the window.
MAX_WAKEUPS = 20
WINDOW_S = 5.0
#: With two lines down: each retries with a backoff (0.5 s doubling), at most once in a
#: window that starts 4 s after they went down (retries ~3.5 and ~7.5 s after), about 5
#: wake-ups a retry.  A down line that polled its device path 10 times a second would
#: make 100 in the window.
MAX_WAKEUPS_DOWN = 25
SETTLE_DOWN_S = 4.0


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of the process's main thread."""
    total = 0
    for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            total += int(line.split()[1])
    return total


def test_idle_daemon_with_four_lines_does_not_wake_up(tmp_path: Path) -> None:
    devices = [PtyDevice(SimulatedModem().receive, link=tmp_path / f"tty{i}") for i in range(4)]
    config = write_config(
        tmp_path / "idle.toml",
        lines=[{"name": f"line{i}", "port": d.path} for i, d in enumerate(devices)],
        db=tmp_path / "calls.sqlite",
        log={"level": "warning"},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_ready()
        time.sleep(2)  # let start-up settle
        before = context_switches(daemon.proc.pid)
        time.sleep(WINDOW_S)
        wakeups = context_switches(daemon.proc.pid) - before
        print(f"event-loop thread wake-ups in {WINDOW_S:g} s idle with 4 lines: {wakeups}")
        assert wakeups < MAX_WAKEUPS

        # The Date header, no longer refreshed by a tick, is still the time of the response.
        with urllib.request.urlopen(daemon.url + "healthz", timeout=5) as response:
            date = parsedate_to_datetime(response.headers["Date"]).timestamp()
        assert abs(date - time.time()) < 2

        # Two devices unplugged: their lines wait for the paths to come back (inotify),
        # waking for their backoff retries only.
        for device in devices[:2]:
            device.unplug()
        time.sleep(SETTLE_DOWN_S)
        before = context_switches(daemon.proc.pid)
        time.sleep(WINDOW_S)
        wakeups = context_switches(daemon.proc.pid) - before
        print(f"event-loop thread wake-ups in {WINDOW_S:g} s with 2 lines down, 2 up: {wakeups}")
        assert daemon.get("/healthz")[1]["lines"]["line0"]["state"] == "down"
        assert wakeups < MAX_WAKEUPS_DOWN
    finally:
        assert daemon.stop() == 0
        for device in devices:
            device.close()
