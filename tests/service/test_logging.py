"""Logs journald can file by level, and caller numbers and names only at debug level."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cidbridge.cli.serve import setup_logging, stream_is_journal
from cidbridge.sim.modem import Caller
from tests.support.daemon import DaemonProcess, write_config

#: Callers whose number and name must not reach an info-level log.
CALLERS = [
    Caller("01098765432", "PARK SEOYEON"),
    Caller("0317654321", None),
    Caller("07012341234", "CHOI WOOJIN"),
]


def _secrets() -> list[str]:
    out = []
    for caller in CALLERS:
        out.append(caller.number or "")
        out.append(caller.number[-8:] if caller.number else "")  # a reformatted number still leaks
        if caller.name:
            out.append(caller.name)
    return [s for s in out if s]


def _run_calls(modem, tmp_path: Path, level: str) -> str:
    model, device = modem
    config = write_config(
        tmp_path / f"{level}.toml",
        lines=[{"name": "desk", "port": device.path}],
        db=tmp_path / f"{level}.sqlite",
        calls={"ring_gap": 1.0},
        log={"level": level},
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_ready()
        for caller in CALLERS:
            device.play(model.call_script(caller, rings=1), speed=20)
        # All three calls are logged once they ended (ring gap 1 s).
        ended, events = 0, []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and ended < len(CALLERS):
            time.sleep(0.2)
            _, events = daemon.get("/api/events?after=0")
            ended = sum(1 for e in events if e["type"] == "end")
        assert ended >= len(CALLERS), events
    finally:
        assert daemon.stop() == 0
    return "\n".join(daemon.stderr_lines)


def test_no_caller_numbers_or_names_at_info_level(modem, tmp_path: Path) -> None:
    log = _run_calls(modem, tmp_path, "info")
    assert "line desk up" in log  # the log is there, and read
    leaked = [secret for secret in _secrets() if secret in log]
    assert not leaked, f"caller data in an info-level log: {leaked}\n{log}"


def test_debug_level_may_show_them(modem, tmp_path: Path) -> None:
    """The control for the test above: the same run at debug level does show the numbers."""
    log = _run_calls(modem, tmp_path, "debug")
    assert CALLERS[0].number in log


def test_plain_lines_without_colour_when_not_a_terminal(tmp_path: Path) -> None:
    code = (
        "import logging; from cidbridge.cli.serve import setup_logging; setup_logging('info');"
        "logging.getLogger('cidbridge.test').warning('hello')"
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    line = result.stderr.strip()
    assert line.endswith(" WARNING cidbridge.test: hello"), line
    assert "\033[" not in line


def test_journald_gets_priority_prefixes(tmp_path: Path) -> None:
    """With stderr connected to journald ($JOURNAL_STREAM matches it), lines carry <N>."""
    out = tmp_path / "stderr"
    code = (
        "import logging, os, sys; from cidbridge.cli.serve import setup_logging;"
        "st = os.fstat(2); os.environ['JOURNAL_STREAM'] = f'{st.st_dev}:{st.st_ino}';"
        "setup_logging('debug'); log = logging.getLogger('cidbridge.test');"
        "log.debug('d'); log.info('i'); log.warning('w'); log.error('e')"
    )
    with out.open("w") as stderr:
        subprocess.run([sys.executable, "-c", code], stderr=stderr, text=True, timeout=30, check=True)
    assert out.read_text().splitlines() == [
        "<7>cidbridge.test: d",
        "<6>cidbridge.test: i",
        "<4>cidbridge.test: w",
        "<3>cidbridge.test: e",
    ]


def test_journal_stream_of_another_file_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    with (tmp_path / "f").open("w") as stream:
        assert not stream_is_journal(stream)
    setup_logging("info")
    assert logging.getLogger().level == logging.INFO
