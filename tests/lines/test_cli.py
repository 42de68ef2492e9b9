"""``cidbridge ports``, ``probe`` and ``monitor`` as a user runs them, against simulated devices."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from cidbridge.lines.discovery import known_device_hint
from cidbridge.sim.boxes import Box
from cidbridge.sim.modem import Caller, SimulatedModem
from cidbridge.sim.pty import PtyDevice

CALLER = Caller("0212345678", "LEE")
PORT_STATUS = 5


def cidbridge(
    *args: str, prefix: tuple[str, ...] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "cidbridge", *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},  # wide enough that rich does not fold paths
    )  # fmt: skip


def test_ports_lists_a_by_id_link_with_its_device(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    with PtyDevice(link=by_id / "usb-Conexant_USB_Modem_24680246-if00") as device:
        result = cidbridge("ports", "--json", "--by-id-dir", str(by_id))
        assert result.returncode == 0, result.stderr
        ports = json.loads(result.stdout)
        mine = [p for p in ports if p["device"] == device.tty_path]
        assert len(mine) == 1
        assert mine[0]["stable_path"] == str(by_id / "usb-Conexant_USB_Modem_24680246-if00")
        table = cidbridge("ports", "--by-id-dir", str(by_id))
        assert table.returncode == 0 and "usb-Conexant_USB_Modem" in table.stdout
        assert "Traceback" not in table.stderr


def test_known_caller_id_devices_get_a_hint():
    assert "Conexant" in (known_device_hint(0x0572, 0x1340) or "")
    assert "Korean" in (known_device_hint(0x10C4, 0xEA60) or "")
    assert "USRobotics" in (known_device_hint(0x0BAF, 0x0303) or "")
    assert known_device_hint(0x1234, 0x5678) is None and known_device_hint(None, None) is None


@pytest.mark.parametrize(
    ("personality", "command"),
    [("standard", "AT+VCID=1"), ("hash-cid", "AT#CID=1"), ("forgetful", "AT+VCID=1")],
)
def test_probe_finds_the_caller_id_command_and_prints_the_block(personality, command):
    with PtyDevice(SimulatedModem(personality=personality).receive) as device:
        result = cidbridge("probe", device.path, "--json", "--timeout", "0.5")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["device"] == "modem" and report["working_caller_id"] == command
    # Checked only where AT+VCID=1 is the command (the Conexant habit); None otherwise.
    expected = {"standard": False, "forgetful": True, "hash-cid": None}[personality]
    assert report["forgets_after_reset"] is expected
    assert {r["command"]: r["lines"] for r in report["identity"]}["ATI3"] == ["CX93001-EIS_V0.2002-V92"]
    assert report["country"] == "B5"
    block = report["lines_block"]
    assert block.startswith("[[lines]]") and 'device = "modem"' in block
    assert (f'caller_id = "{command}"' in block) is (command != "AT+VCID=1")


def test_probe_recognises_a_box_and_its_format():
    with PtyDevice() as device:
        threading.Timer(1.5, device.play, [Box("callerid-com").call_script(CALLER)]).start()
        result = cidbridge("probe", device.path, "--baudrate", "9600", "--timeout", "0.3", "--listen", "20")
    assert result.returncode == 0, result.stderr
    assert "Nothing answered AT" in result.stdout
    assert 'device = "box"' in result.stdout and 'format = "callerid-com"' in result.stdout
    assert "baudrate = 9600" in result.stdout


def test_probe_of_a_silent_device_says_so():
    with PtyDevice(SimulatedModem(personality="silent").receive) as device:
        result = cidbridge("probe", device.path, "--timeout", "0.2", "--listen", "0.5")
    assert result.returncode == 0
    assert "Nothing was heard" in result.stdout and "baud rate" in result.stdout


def test_probe_errors_are_one_sentence_with_the_fix(tmp_path):
    missing = cidbridge("probe", str(tmp_path / "ttyACM7"))
    assert missing.returncode == PORT_STATUS
    assert missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_permission_denied_names_the_group(tmp_path):
    with PtyDevice() as device:
        os.chmod(device.tty_path, 0)
        prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:  # root reads anything: drop every capability for the child
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv (util-linux) to drop privileges")
            prefix = (setpriv, "--bounding-set=-all", "--inh-caps=-all")
        result = cidbridge("probe", device.tty_path, prefix=prefix)
    assert result.returncode == PORT_STATUS, result.stderr
    assert "permission denied" in result.stderr and "usermod -aG" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_names_its_holder(tmp_path):
    with PtyDevice() as device:
        holder = subprocess.Popen(
            [sys.executable, "-c", "import fcntl,os,sys,time;fd=os.open(sys.argv[1],os.O_RDWR|os.O_NOCTTY);"
             "fcntl.flock(fd,fcntl.LOCK_EX);print('held',flush=True);time.sleep(60)", device.path],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            result = cidbridge("probe", device.path)
        finally:
            holder.kill()
            holder.wait()
    assert result.returncode == PORT_STATUS
    assert f"(pid {holder.pid})" in result.stderr and "in use" in result.stderr


def test_monitor_shows_bytes_and_frames_live_and_captures(tmp_path):
    model = SimulatedModem()
    capture = tmp_path / "monitor.bin"
    with PtyDevice(model.receive) as device:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cidbridge", "monitor", device.path, "--init", "--capture", str(capture)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        out = LineReader(proc)
        try:
            out.wait_for("listening on")
            assert model.cid_enabled  # --init ran the modem initialisation
            device.play(model.call_script(CALLER, rings=2), speed=10)
            frame = out.wait_for('"kind": "cid"')
            assert json.loads(frame.split("frame", 1)[1])["number"] == "0212345678"
            assert any("RING" in line and "52 49 4e 47" in line for line in out.lines)  # hex and text
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "bytes" in err and "frames" in err
    decoded = cidbridge("decode", "--format", "modem-text", str(capture))
    assert '"number": "0212345678"' in decoded.stdout


def test_monitor_of_a_missing_port_fails_cleanly(tmp_path):
    result = cidbridge("monitor", str(tmp_path / "nothing"))
    assert result.returncode == PORT_STATUS and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


class LineReader:
    """Collects a process's stdout lines in a thread, so waiting never blocks on a pipe."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._new = queue.Queue[str]()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(
            target=lambda: [self._new.put(line.rstrip("\n")) for line in stream], daemon=True
        ).start()

    def wait_for(self, needle: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if needle in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not printed; got {self.lines}")
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._new.get(timeout=min(left, 0.2)))
