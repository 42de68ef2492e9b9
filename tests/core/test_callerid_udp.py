"""CallerID.com Ethernet Link packets: layout, framing, repeats, events → records (no sockets)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cidbridge.core import callerid_udp as udp
from cidbridge.core.formats.callerid_com import CallerIdComDecoder
from cidbridge.core.frames import CidFrame, HookFrame, RingFrame

#: The field regex POS software in the field parses call records with (from CallerID.com's
#: own sample application), applied from offset 21 of the packet.
FIELD_REGEX = re.compile(
    r".*(\d\d) ([IO]) ([ESB]) (\d{4}) ([GB]) (.\d) (\d\d\/\d\d) (\d\d:\d\d [AP]M) (.{8,15})(.*)"
)
DETAIL_REGEX = re.compile(r".*(\d\d) ([NFR]) {13}(\d\d\/\d\d) (\d\d:\d\d:\d\d)")
SERIAL = bytes.fromhex("0a1b2c3d4e5f")
WHEN = datetime(2026, 9, 26, 11, 28, 41)


def decode(record: bytes) -> list[Any]:
    return CallerIdComDecoder().feed(record + b"\r\n", 0.0)


def test_a_call_record_is_the_units_fixed_columns() -> None:
    record = udp.call_record(
        line=1,
        event="S",
        when=WHEN,
        number="800-240-4637",
        name="CallerID.com",
        duration=276,
        rings=3,
        ring_type="B",
    )
    assert record == b"01 I S 0276 G B3 09/26 11:28 AM 800-240-4637   CallerID.com   "
    packet = udp.encode_packet(record, unit=1, serial=SERIAL)
    assert len(packet) == 83
    assert packet[:21] == b"^^<U>\x00\x00\x00\x00\x00\x01<S>" + SERIAL + b"$"
    groups = FIELD_REGEX.match(packet[21:].decode("latin-1"))
    assert groups is not None
    assert groups.groups() == (
        "01",
        "I",
        "S",
        "0276",
        "G",
        "B3",
        "09/26",
        "11:28 AM",
        "800-240-4637   ",
        "CallerID.com   ",
    )


@pytest.mark.parametrize(
    ("hour", "shown"), [(0, "12:05 AM"), (12, "12:05 PM"), (13, "01:05 PM"), (23, "11:05 PM")]
)
def test_twelve_hour_clock(hour: int, shown: str) -> None:
    record = udp.call_record(line=2, event="E", when=WHEN.replace(hour=hour, minute=5), number="1", name="")
    assert record[23:31].decode() == shown
    assert len(record) == udp.CALL_RECORD_LEN


def test_a_detail_record_is_52_bytes_on_the_wire() -> None:
    record = udp.detail_record(line=3, code="F", when=WHEN)
    assert record == b"03 F             09/26 11:28:41"
    packet = udp.encode_packet(record, unit=7, serial=SERIAL)
    assert len(packet) == 52
    match = DETAIL_REGEX.match(packet[21:].decode())
    assert match is not None and match.groups() == ("03", "F", "09/26", "11:28:41")


def test_long_names_are_cut_on_a_character_and_the_packet_keeps_its_size() -> None:
    record = udp.call_record(line=1, event="S", when=WHEN, number="01012345678", name="김민지 한국어 이름")
    assert len(record) == udp.CALL_RECORD_LEN
    (frame,) = decode(record)
    assert frame.name == "김민지 한"  # 15 bytes hold 5 Hangul syllables (3 bytes each) minus one
    control = udp.call_record(line=1, event="S", when=WHEN, number="1", name="A\r\nB\x1bC")
    assert b"\r" not in control and b"\n" not in control and b"\x1b" not in control


def test_numbers_fit_the_number_column() -> None:
    assert udp.record_number("010 1234 5678", None) == "01012345678"
    assert udp.record_number("+82-2-123-4567", None) == "+82-2-123-4567"  # 14: kept as it is
    assert udp.record_number("+82 10-1234-5678", None) == "821012345678"  # 15: digits only
    assert udp.record_number("+82-10-1234-5678-999", None) == "21012345678999"
    assert udp.record_number(None, "private") == "Private"
    assert udp.record_number(None, "unavailable") == "Out-of-Area"
    assert udp.record_number(None, None) == ""


def test_parse_packet_with_and_without_the_dollar() -> None:
    record = b"01 R             09/26 11:28:41"
    with_dollar = udp.encode_packet(record, unit=258, serial=SERIAL)
    without = with_dollar[:20] + record + b"\r\n\x00"
    for data in (with_dollar, without):
        packet = udp.parse_packet(data)
        assert packet == udp.Packet(258, "0a1b2c3d4e5f", record)
        assert not packet.is_call_record


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"^^<U>123456<X>123456$01 R",
        b"^^<U>123456<S>123456$",
        b"^^<U>123456<S>123456  \r\n",
        b"^^<U>123456<S>123456$" + b"x" * 600,
    ],
)
def test_what_is_not_a_packet_is_refused(data: bytes) -> None:
    with pytest.raises(udp.PacketError):
        udp.parse_packet(data)


def test_repeats_are_dropped_within_the_units_windows() -> None:
    dedup = udp.Deduper()
    detail = udp.encode_packet(udp.detail_record(line=1, code="R", when=WHEN), unit=1, serial=SERIAL)
    call = udp.encode_packet(
        udp.call_record(line=1, event="S", when=WHEN, number="1", name=""), unit=1, serial=SERIAL
    )
    seen = [
        dedup.is_repeat(detail, udp.parse_packet(detail), 10.0),
        dedup.is_repeat(detail, udp.parse_packet(detail), 10.4),  # a repeat
        dedup.is_repeat(detail, udp.parse_packet(detail), 10.6),  # past 0.5 s: new
        dedup.is_repeat(call, udp.parse_packet(call), 10.6),
        dedup.is_repeat(call, udp.parse_packet(call), 11.6),  # within 1.1 s: a repeat
        dedup.is_repeat(call, udp.parse_packet(call), 11.8),  # past 1.1 s of the first: new
    ]
    assert seen == [False, True, False, False, True, False]


def test_the_deduper_remembers_a_bounded_number_of_packets() -> None:
    dedup = udp.Deduper()
    for i in range(5000):
        record = udp.call_record(line=1, event="S", when=WHEN, number=str(i), name="")
        data = udp.encode_packet(record, unit=1, serial=SERIAL)
        assert not dedup.is_repeat(data, udp.parse_packet(data), 0.0)
    assert len(dedup._seen) <= dedup.limit


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    base = {"type": kind, "call_id": "c1", "line": "desk", "time": "2026-09-26T11:28:41+09:00"}
    return {**base, **fields}


def test_a_call_becomes_the_units_record_sequence() -> None:
    feed = udp.RecordFeed(lambda line: 4)
    out = []
    for e in (
        ev("ring", ring_count=1),
        ev("call", ring_count=1, number="01012345678", name="KIM MINJI"),
        ev("ring", ring_count=2),
        ev("update", ring_count=2, number="01012345678", name="KIM MINJI", outcome="answered"),
        ev("update", ring_count=2, number="01012345678", name="KIM MINJI", outcome="answered"),
        ev("end", ring_count=2, number="01012345678", name="KIM MINJI", outcome="answered", duration_s=75.4),
    ):
        out += feed.records(e)
    kinds = [r[3:6].decode().strip() for r in out]
    assert kinds == ["R", "I S", "R", "F", "N", "I E"]
    assert out[-1].startswith(b"04 I E 0075 G A2 09/26 11:28 AM 01012345678    KIM MINJI")


def test_unanswered_and_ring_only_calls() -> None:
    feed = udp.RecordFeed(lambda line: 1)
    missed = [ev("call", number_absence="private"), ev("end", number_absence="private", outcome="missed")]
    records = [r for e in missed for r in feed.records(e)]
    assert [r[5:6] for r in records] == [b"S", b"E"]
    assert b" 0000 " in records[1] and b"Private" in records[1]
    ring_only = [ev("ring", call_id="r", ring_count=1), ev("end", call_id="r", outcome="unknown")]
    assert [r[3:4] for e in ring_only for r in feed.records(e)] == [b"R"]
    assert feed.records({"type": "line", "line": "desk", "state": "down"}) == []


def test_our_records_decode_back_to_the_call() -> None:
    """What the daemon's own UDP input makes of the output: the same caller, line and times."""
    feed = udp.RecordFeed(lambda line: 12)
    events = [
        ev("ring", ring_count=1),
        ev("call", ring_count=1, number="0212345678", name="HANBIT CLINIC"),
        ev("update", outcome="answered", number="0212345678"),
        ev("end", ring_count=1, number="0212345678", outcome="answered", duration_s=30),
    ]
    frames = [f for e in events for r in feed.records(e) for f in decode(r)]
    assert [type(f) for f in frames] == [RingFrame, CidFrame, HookFrame, HookFrame, CidFrame]
    start, end = frames[1], frames[4]
    assert (start.number, start.name, start.line, start.hour, start.minute) == (
        "0212345678",
        "HANBIT CLINIC",
        "12",
        11,
        28,
    )
    assert dict(end.extra)["event"] == "end" and dict(end.extra)["duration_s"] == 30


@given(
    number=st.one_of(st.none(), st.text(max_size=30)),
    name=st.one_of(st.none(), st.text(max_size=40)),
    line=st.integers(0, 200),
    hour=st.integers(0, 23),
)
def test_any_caller_gives_a_fixed_size_record_that_decodes(
    number: str | None, name: str | None, line: int, hour: int
) -> None:
    column = udp.record_number(number, None)
    record = udp.call_record(line=line, event="S", when=WHEN.replace(hour=hour), number=column, name=name)
    assert len(record) == udp.CALL_RECORD_LEN
    assert FIELD_REGEX.match(record.decode("utf-8")) is not None
    frames = decode(record)
    assert len(frames) == 1 and isinstance(frames[0], CidFrame)
    if column.strip() and column.upper() not in ("PRIVATE", "OUT-OF-AREA", "P", "O"):
        assert frames[0].number == column.strip()
