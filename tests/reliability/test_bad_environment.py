"""Bad config and environment: one clear error each, and a documented exit status.

What cannot be fixed by waiting stops the daemon with one line on stderr and the exit
status the README documents (2 config, 3 call log, 4 listening socket).  What can fix
itself (a USB device that is not plugged in yet, a port another program holds, a
permission udev has not applied yet) does not: the daemon serves the panel, reports
the line down with the reason once (not once per retry), and picks the line up when
the problem goes away.
"""

from __future__ import annotations

import fcntl
import grp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidbridge.sim.modem import SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.reliability.support import wait_until
from tests.support.daemon import DaemonProcess, write_config

NOBODY = 65534


def serve(config: Path, *prefix: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "cidbridge", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """Assert: exit ``status``, exactly one stderr line, an error naming ``words``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == status, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cidbridge: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def unprivileged() -> list[str]:
    """A command prefix that runs as an ordinary user (root bypasses file permissions).

    As root: setpriv to ``nobody``, keeping only CAP_DAC_READ_SEARCH so it can still
    reach this checkout's Python (which may live under /root); writing and opening
    devices get no such help.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux) to drop privileges")
    return [
        setpriv,
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        "--",
    ]


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder the daemon's unprivileged user can read (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="cidbridge-env-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- exit at once --------------------------------------------------------------------


def test_invalid_toml(tmp_path: Path, record) -> None:
    config = tmp_path / "broken.toml"
    config.write_text('[server]\nport = 8765\nhost = "127.0.0.1\n')
    line = one_error(serve(config), 2, f"{config}:3:", "invalid TOML")
    record(invalid_toml=line)


def test_a_misspelt_key(tmp_path: Path, record) -> None:
    config = tmp_path / "typo.toml"
    config.write_text('[[lines]]\nname = "desk"\nprot = "/dev/ttyACM0"\n')
    # Two problems, one line each: the misspelt key and the missing port it was meant to be.
    result = serve(config)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f'cidbridge: error: {config}:1: lines[0].port: is required (a string, e.g. port = "/dev/ttyACM0")',
        f"cidbridge: error: {config}:3: lines[0].prot: unknown key; did you mean 'port'?",
    ]
    record(misspelt_key=lines[1])


def test_missing_config_file(tmp_path: Path, record) -> None:
    line = one_error(serve(tmp_path / "nowhere.toml"), 2, "not found")
    record(missing_config=line)


def test_listening_port_busy(tmp_path: Path, record) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(
            tmp_path / "busy.toml", lines=[], db=tmp_path / "c.sqlite", server={"port": port}
        )
        line = one_error(serve(config), 4, f"port {port}", "already in use")
    record(port_busy=line)


def test_state_directory_not_writable(open_dir: Path, record) -> None:
    prefix = unprivileged()
    state = open_dir / "state"
    state.mkdir()
    state.chmod(0o555)  # not writable by anyone but root
    config = write_config(open_dir / "state.toml", lines=[], db=state / "calls.sqlite")
    config.chmod(0o644)
    line = one_error(serve(config, *prefix), 3, "calls.sqlite", "writable")
    record(state_not_writable=line)


def test_state_path_under_a_file(tmp_path: Path) -> None:
    """Root cannot be refused a write, but it cannot make a folder inside a file either."""
    (tmp_path / "afile").write_text("")
    config = write_config(tmp_path / "s.toml", lines=[], db=tmp_path / "afile" / "calls.sqlite")
    one_error(serve(config), 3, "calls.sqlite")


# -- serial ports: the daemon stays up and says why the line is down --------------------


def line_state(daemon: DaemonProcess) -> tuple[str, str]:
    _, health = daemon.get("/healthz")
    line = health["lines"]["desk"]
    return line["state"], line["reason"] or ""


def warnings_about(daemon: DaemonProcess, text: str) -> list[str]:
    return [line for line in daemon.stderr_lines if "line desk down" in line and text in line]


def test_missing_serial_port_waits_for_the_device(tmp_path: Path, record) -> None:
    link = tmp_path / "ttyCID"
    config = write_config(
        tmp_path / "m.toml", lines=[{"name": "desk", "port": str(link)}], db=tmp_path / "c.sqlite"
    )
    daemon = DaemonProcess(config)
    device = None
    try:
        daemon.wait_ready()
        state, reason = line_state(daemon)
        assert state == "down" and "does not exist" in reason and "cidbridge ports" in reason
        time.sleep(3)  # several retries: still one warning, not one per retry
        assert len(warnings_about(daemon, "does not exist")) == 1, daemon.stderr()
        device = PtyDevice(SimulatedModem().receive, link=link)  # plugged in now
        wait_until(lambda: line_state(daemon)[0] == "up", 40, "the line coming up once plugged in")
    finally:
        assert daemon.stop() == 0
        if device is not None:
            device.close()
    record(missing_serial_port=reason)


def test_serial_port_in_use(tmp_path: Path, record) -> None:
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp_path / "ttyCID")
    holder = os.open(device.tty_path, os.O_RDWR | os.O_NOCTTY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what another program's exclusive open does
    config = write_config(
        tmp_path / "u.toml", lines=[{"name": "desk", "port": device.path}], db=tmp_path / "c.sqlite"
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_ready()
        state, reason = line_state(daemon)
        assert state == "down" and "in use" in reason
        time.sleep(2)
        assert len(warnings_about(daemon, "in use")) == 1, daemon.stderr()
        os.close(holder)  # the other program lets go
        holder = -1
        wait_until(lambda: line_state(daemon)[0] == "up", 40, "the line coming up once the port is free")
    finally:
        if holder >= 0:
            os.close(holder)
        assert daemon.stop() == 0
        device.close()
    record(serial_port_in_use=reason)


def test_serial_port_permission_denied(open_dir: Path, record) -> None:
    prefix = unprivileged()
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=open_dir / "ttyCID")
    # Like a real serial device: rw for its owner and the dialout group, nothing for others.
    group = "dialout" if os.geteuid() == 0 and _has_group("dialout") else None
    if group is not None:
        os.chown(device.tty_path, -1, grp.getgrnam(group).gr_gid)
    os.chmod(device.tty_path, 0o660)
    state = open_dir / "state"
    state.mkdir()
    if os.geteuid() == 0:
        os.chown(state, NOBODY, NOBODY)
    port = free_port()
    config = write_config(
        open_dir / "p.toml",
        lines=[{"name": "desk", "port": device.path}],
        db=state / "calls.sqlite",
        server={"port": port},
    )
    config.chmod(0o644)
    if not prefix:
        pytest.skip("needs root to run the daemon as a user without access to the port")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "cidbridge", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    daemon = DaemonProcess.__new__(DaemonProcess)  # only for .get(): same URL handling
    daemon.url = f"http://127.0.0.1:{port}/"
    try:

        def down_reason() -> str | None:
            try:
                state_, reason_ = line_state(daemon)
            except OSError:
                return None
            return reason_ if state_ == "down" and reason_ else None

        reason = wait_until(down_reason, 30, "the line reported down")
        assert "permission denied" in reason, reason
        if group is not None:
            assert "dialout" in reason, reason  # the fix: add the user to the device's group
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
        device.close()
    assert proc.returncode == 0, stderr
    assert len([line for line in stderr.splitlines() if "line desk down" in line]) == 1, stderr
    record(serial_permission_denied=reason)
