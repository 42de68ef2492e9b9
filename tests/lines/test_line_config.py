"""The [[lines]] keys of the modem dialogue, keep-alive, channels and capture: parsed and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from cidbridge import config
from cidbridge.core.modem import DEFAULT_CALLER_ID, init_sequence
from cidbridge.lines.capture import with_capture


def parse_line(body: str) -> config.LineConfig:
    (line,) = config.parse(f'[[lines]]\nname = "desk"\nport = "/dev/ttyACM0"\n{body}\n').lines
    return line


def problem(text: str) -> str:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text)
    return str(caught.value)


def test_defaults_send_reset_then_the_caller_id_chain():
    line = parse_line("")
    assert init_sequence(
        line.init, country=line.country, caller_id=line.caller_id, extra=line.extra_init
    ) == (
        "ATZ",
        "ATE0V1",
        DEFAULT_CALLER_ID,
    )
    assert line.keepalive == 30.0 and line.capture is None and line.channels == {}


def test_country_by_name_or_code_and_extra_commands():
    line = parse_line('country = "uk"\nextra_init = ["ATS24=0"]\ncaller_id = "AT#CID=1"')
    assert line.country == "B4"
    assert init_sequence(
        line.init, country=line.country, caller_id=line.caller_id, extra=line.extra_init
    ) == (
        "ATZ",
        "ATE0V1",
        "AT+GCI=B4",
        "AT#CID=1",
        "ATS24=0",
    )


def test_bad_values_name_the_key():
    base = '[[lines]]\nname = "desk"\nport = "/dev/x"\n'
    assert "lines[0].country" in problem(base + 'country = "Korea"')
    assert "lines[0].keepalive" in problem(base + "keepalive = 0.01")
    assert "lines[0].capture_max_bytes" in problem(base + "capture_max_bytes = 10")
    assert "lines[0].extra_init" in problem(base + "extra_init = [1]")


def test_channel_names_cannot_take_another_lines_name():
    text = (
        '[[lines]]\nname = "front"\nport = "/dev/a"\n\n'
        '[[lines]]\nname = "box"\nport = "/dev/b"\ndevice = "box"\nchannels = { "1" = "front" }\n'
    )
    assert "already the name of another line" in problem(text)


def test_capture_paths_for_one_and_several_lines(tmp_path):
    line = parse_line(f'capture = "{tmp_path / "x.raw"}"')
    assert line.capture == tmp_path / "x.raw"
    assert with_capture(line, Path("/tmp/raw.bin"), several=False).capture == Path("/tmp/raw.bin")
    assert with_capture(line, Path("/tmp/raw.bin"), several=True).capture == Path("/tmp/raw.desk.bin")


def test_new_call_timings_reach_the_calls_in_progress():
    """A reload's [calls] ring_gap and ringless_timeout apply to every tracker of a line."""
    from cidbridge.lines.serial_line import Line

    line = Line(parse_line('device = "box"'), sink=None, ring_gap=8.0, ringless_timeout=45.0)  # type: ignore[arg-type]
    tracker = line._tracker(None)
    assert (tracker.ring_gap, tracker.ringless_timeout) == (8.0, 45.0)
    line.set_timing(5.0, 90.0)
    assert (tracker.ring_gap, tracker.ringless_timeout) == (5.0, 90.0)
    assert line._tracker("2").ringless_timeout == 90.0  # and to the ones that start later
