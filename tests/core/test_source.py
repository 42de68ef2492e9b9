"""CallSource: one source's decoder and trackers, sans-I/O (bytes, frames and a clock in)."""

from __future__ import annotations

import pytest

from cidbridge.core.formats import make_decoder
from cidbridge.core.frames import CidFrame, HookFrame, RingFrame
from cidbridge.core.source import CallSource, TooManyLines, channel_name


def test_channel_names_follow_the_map_leading_zeros_or_not():
    names = {"1": "front", "1:02": "back"}
    assert channel_name("box", None, names) == "box"
    assert channel_name("box", "01", names) == "front"
    assert channel_name("box", "1:2", names) == "back"
    assert channel_name("box", "3", names) == "box:3"
    assert channel_name("", "1:03", names) == "1:03"


def test_bytes_in_events_out_and_the_deadline_ends_the_call():
    source = CallSource("desk", decoder=make_decoder("modem-text"), ring_gap=2.0)
    batch = source.feed(b"RING\r\n\r\nDATE = 1126\r\nTIME = 0930\r\nNMBR = 0212345678\r\n\r\n", 10.0)
    assert [f.kind for f in batch.frames] == ["ring", "cid"]
    assert [(e.type, e.line) for e in batch.events] == [("ring", "desk"), ("call", "desk")]
    assert source.active and source.deadline == 12.0
    assert source.tick(11.9).events == []
    ended = source.tick(12.0).events
    assert [(e.type, e.outcome) for e in ended] == [("end", "unknown")]
    assert not source.active and source.deadline is None


def test_frames_go_to_their_channels_tracker_and_timings_reach_calls_in_progress():
    source = CallSource("box", {"2": "back"}, ring_gap=8.0)
    source.receive(RingFrame("x"), 0.0)  # receive() takes the channel it is given, not the frame's
    source.receive(RingFrame("x", line="2"), 0.0, "2")
    assert set(source.trackers) == {"box", "back"}
    source.set_timing(3.0, 60.0)
    assert source.deadline == 3.0  # both calls ring: the new ring gap ends them
    assert {t.ring_gap for t in source.trackers.values()} == {3.0}
    assert source.tracker("9").ringless_timeout == 60.0  # a line made later gets them too


def test_a_bound_forgets_the_least_recently_used_idle_line_and_refuses_when_all_are_busy():
    source = CallSource(max_lines=2, idle_forget=100.0)
    for line in ("a", "b"):
        source.receive(CidFrame("api", number="0212345678"), 0.0, line)
        source.receive(HookFrame("api", "off"), 0.0, line)
        source.receive(HookFrame("api", "on"), 1.0, line)
    source.receive(HookFrame("api", "on"), 2.0, "a")  # "a" used last
    batch = source.receive(CidFrame("api", number="0299999999"), 3.0, "c")
    assert batch.forgotten == ["b"] and list(source.trackers) == ["a", "c"]
    source.receive(CidFrame("api", number="0299999999"), 3.0, "a")  # both ring now
    with pytest.raises(TooManyLines):
        source.receive(CidFrame("api", number="0211111111"), 3.0, "d")
    assert list(source.trackers) == ["c", "a"]


def test_an_idle_line_is_forgotten_at_its_deadline():
    source = CallSource(idle_forget=100.0)
    source.receive(HookFrame("api", "off"), 5.0, "pbx")
    assert source.deadline == 105.0
    assert source.tick(104.0).forgotten == []
    assert source.tick(105.0).forgotten == ["pbx"] and not source.trackers
