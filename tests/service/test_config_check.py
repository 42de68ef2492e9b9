"""``cidbridge config check`` lists every problem; ``cidbridge config init`` writes a valid file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from cidbridge import config
from cidbridge.cli import config_cmd
from cidbridge.cli.main import app

BAD = """\
[server]
hots = "0.0.0.0"
port = 99999

[calls]
ring_gap = "long"

[[lines]]
name = "front"
prot = "/dev/ttyACM0"
baudrate = true

[[lines]]
name = "front"
port = "/dev/ttyACM1"
device = "modme"

[logg]
level = "debug"
"""


def test_check_collects_every_problem_in_file_order() -> None:
    cfg, problems = config.check(BAD, file="bad.toml")
    assert cfg is None
    assert [str(p) for p in problems] == [
        "bad.toml:2: server.hots: unknown key; did you mean 'host'?",
        "bad.toml:3: server.port: must be 0-65535 (0 = any free port), not 99999",
        'bad.toml:6: calls.ring_gap: must be an integer or a number, not "long"',
        'bad.toml:8: lines[0].port: is required (a string, e.g. port = "/dev/ttyACM0")',
        "bad.toml:10: lines[0].prot: unknown key; did you mean 'port'?",
        "bad.toml:11: lines[0].baudrate: must be an integer, not true",
        "bad.toml:14: lines[1].name: 'front' is used by two lines; names must differ",
        'bad.toml:16: lines[1].device: must be "modem" or "box", not \'modme\'',
        "bad.toml:18: logg: unknown section; did you mean 'log'?",
    ]


def test_parse_raises_the_first_problem_with_all_of_them_attached() -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(BAD, file="bad.toml")
    assert caught.value.key == "server.hots"
    assert len(caught.value.problems) == 9


def test_invalid_toml_is_one_problem_with_its_line() -> None:
    _, problems = config.check('[server]\nport = 80\nhost = "x\n', file="f.toml")
    assert len(problems) == 1
    assert problems[0].line == 3 and problems[0].key == "syntax"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cidbridge", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_check_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    result = _run("config", "check", str(bad))
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0] == f"{bad}:2: server.hots: unknown key; did you mean 'host'?"
    assert len(lines) == 10 and lines[-1].endswith("9 problems; cidbridge will not start with it")
    assert "Traceback" not in result.stderr


def test_cli_check_accepts_the_example() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    result = _run("config", "check", str(example))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"{example}: OK; listens on 127.0.0.1:8765")


def test_cli_check_missing_file(tmp_path: Path) -> None:
    result = _run("config", "check", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"cidbridge: error: {tmp_path / 'nope.toml'}: file: not found; create it from config.example.toml"
    )


def _fake_ports(monkeypatch: pytest.MonkeyPatch, ports: list[SimpleNamespace]) -> None:
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: ports)


def _port(
    device: str, vid: int | None = None, pid: int | None = None, description: str = "n/a"
) -> SimpleNamespace:
    return SimpleNamespace(
        device=device, vid=vid, pid=pid, description=description, manufacturer=None, product=None
    )


def test_init_offers_the_usb_ports_and_writes_a_valid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_ports(
        monkeypatch,
        [
            _port("/dev/ttyS0"),
            _port("/dev/ttyACM0", 0x0572, 0x1329, "USB Modem"),
            _port("/dev/ttyUSB0", 0x1A86, 0x7523, "USB Serial"),
        ],
    )
    out = tmp_path / "cidbridge.toml"
    result = CliRunner().invoke(app, ["config", "init", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "1) /dev/ttyACM0  USB Modem [0572:1329]" in result.output
    assert "/dev/ttyS0  built-in serial port" in result.output
    written = config.load(out)
    assert [(line.name, line.port, line.device) for line in written.lines] == [
        ("line-1", "/dev/ttyACM0", "modem"),
        ("line-2", "/dev/ttyUSB0", "box"),
    ]
    # The rest of the example's documentation comes along.
    assert "# Days of calls to keep." in out.read_text()


def test_init_with_no_ports_keeps_the_example_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_ports(monkeypatch, [])
    out = tmp_path / "c.toml"
    result = CliRunner().invoke(app, ["config", "init", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "No serial ports found" in result.output
    assert "No USB serial device was found" in out.read_text()
    assert config.load(out).lines[0].port == "/dev/ttyACM0"


def test_init_refuses_to_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_ports(monkeypatch, [])
    out = tmp_path / "c.toml"
    out.write_text("mine")
    result = CliRunner().invoke(app, ["config", "init", "-o", str(out), "--port", "/dev/ttyACM3"])
    assert result.exit_code == 2
    assert out.read_text() == "mine"
    result = CliRunner().invoke(app, ["config", "init", "-o", str(out), "--port", "/dev/ttyACM3", "--force"])
    assert result.exit_code == 0
    assert config.load(out).lines[0].port == "/dev/ttyACM3"


def test_example_text_is_found() -> None:
    assert "[[lines]]" in config_cmd.example_text()


def test_ringless_timeout_is_read_and_checked() -> None:
    assert config.parse("[calls]\nringless_timeout = 90\n").calls.ringless_timeout == 90.0
    assert config.parse("").calls.ringless_timeout == 45.0
    _, problems = config.check("[calls]\nringless_timeout = 1\n", file="f.toml")
    assert [str(p) for p in problems] == ["f.toml:2: calls.ringless_timeout: must be 5-600 seconds, not 1.0"]
