"""``cidbridge decode`` for every format (docs/formats.md): JSON lines, invalid frames exit 0."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cidbridge.cli.main import app
from cidbridge.core.formats import FORMATS

runner = CliRunner()


def decode(*args: str, stdin: bytes | None = None) -> tuple[int, list[dict]]:
    result = runner.invoke(app, ["decode", *args], input=stdin)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, lines


def test_help_lists_every_format():
    result = runner.invoke(app, ["decode", "--help"])
    assert result.exit_code == 0
    for name in FORMATS:
        assert name in result.stdout


@pytest.mark.parametrize("fmt", ["auto", "xdmf"])
def test_hex_vectors_good_and_bad(tmp_path, fmt):
    good = tmp_path / "b6.hex"
    good.write_text(
        "80 20 01 08 30 35 31 31 31 38 35 32 02 0A 34 30 37 35 35 35 30 30 30 30\n"
        "07 08 4A 4F 48 4E 20 44 4F 45 84\n"
    )
    status, frames = decode("--format", fmt, "--hex", str(good))
    assert status == 0
    assert [(f["kind"], f["format"], f["number"], f["name"], f["hour"]) for f in frames] == [
        ("cid", "xdmf", "4075550000", "JOHN DOE", 18)
    ]
    bad = tmp_path / "b2.hex"
    bad.write_text("04 09 30 39 33 30 31 32 32 34 50 12")
    status, frames = decode("--format", fmt, "--hex", str(bad))
    assert status == 0
    assert frames == [
        {"kind": "invalid", "format": "xdmf", "reason": "checksum", "raw": "040930393330313232345012"}
    ]


def test_stdin_capture_of_a_modem_with_every_key_of_the_contract():
    capture = b"RING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5045551234\r\n\r\nRING\r\n"
    status, frames = decode("-", stdin=capture)
    assert status == 0
    assert [f["kind"] for f in frames] == ["ring", "cid", "ring"]
    contract = "kind format number number_absence name name_absence month day hour minute line"
    assert set(frames[1]) >= set(contract.split())
    assert frames[0] == {"kind": "ring", "format": "modem-text", "line": None, "tag": None}


def test_cannot_run_exits_non_zero(tmp_path):
    assert decode("--format", "nonsense", "-", stdin=b"")[0] == 2
    assert decode(str(tmp_path / "missing.bin"))[0] == 2
    odd = tmp_path / "odd.hex"
    odd.write_text("0")
    assert decode("--hex", str(odd))[0] == 2
