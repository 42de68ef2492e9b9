"""Properties every decoder keeps, checked with hypothesis for every format.

* Any split of a stream into reads gives the same frames as feeding it whole.
* Encode → decode gives back the fields (number, name, date and time, absences).
* Arbitrary bytes never raise.
* Endless garbage costs bounded memory, and the decoder says when it cut.

Example counts are modest (the suite runs on a small shared machine); the scale run
of a million inputs per format is fuzz/fuzz_decoders.py.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cidbridge.core.formats import (
    FORMATS,
    callerid_com,
    dtmf,
    fsk,
    jclip,
    kr_adapter,
    make_decoder,
    netcallerid,
    tci,
    xdmf,
)
from cidbridge.core.formats.base import MAX_BUFFER, MAX_LINE
from cidbridge.core.formats.modem_text import encode_block
from cidbridge.sim.boxes import BOX_FORMATS, Box
from cidbridge.sim.modem import Caller

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECODERS = [f for f in FORMATS if f != "auto"]


def run(fmt: str, chunks: list[bytes]) -> list[dict]:
    decoder = make_decoder(fmt)
    frames = []
    for chunk in chunks:
        frames += decoder.feed(chunk, 0.0)
    frames += decoder.flush(0.0)
    return [f.to_json() for f in frames]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


digits = st.text("0123456789", min_size=1, max_size=15)
# Two letters at least: a one-letter O, P, A, C or S is an absence code, not a name.
names = (
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ abcxyz.,&'", min_size=2, max_size=15)
    .map(str.strip)
    .filter(lambda n: len(n) > 1)
)
stamps = st.tuples(st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59))
callers = st.builds(
    lambda number, name, stamp, absent: Caller(
        None if absent else number,
        None if absent else name,
        "private" if absent else None,
        "private" if absent else None,
        *stamp,
    ),
    digits,
    names,
    stamps,
    st.booleans(),
)


# -- any chunking == whole feed --------------------------------------------------------


@pytest.mark.parametrize("fmt", DECODERS)
@PROPERTY
@given(
    calls=st.lists(callers, min_size=1, max_size=4),
    garbage=st.lists(st.binary(max_size=12)),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
    seed=st.integers(0, 99),
)
def test_any_chunking_gives_the_frames_of_the_whole_feed(fmt, calls, garbage, cuts, seed):
    box = Box(fmt, answered=True, rng=random.Random(seed))
    parts = [b"".join(step for _, step in box.call_script(c)) for c in calls]
    data = b"".join(p + (garbage[i] if i < len(garbage) else b"") for i, p in enumerate(parts))
    whole = run(fmt, [data])
    assert run(fmt, split(data, cuts)) == whole
    assert run(fmt, [bytes((b,)) for b in data]) == whole


@pytest.mark.parametrize("fmt", BOX_FORMATS)
@PROPERTY
@given(
    calls=st.lists(callers, min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 10**6), max_size=10),
    seed=st.integers(0, 99),
)
def test_auto_finds_every_format_and_agrees_with_it(fmt, calls, cuts, seed):
    box = Box(fmt, rng=random.Random(seed))
    data = b"".join(step for c in calls for _, step in box.call_script(c))
    by_name = run("modem-text" if fmt == "xdmf-hex" else fmt, [data])
    assert run("auto", [data]) == by_name
    assert run("auto", split(data, cuts)) == by_name
    assert sum(f["kind"] == "cid" for f in by_name) == len(calls)


# -- encode → decode --------------------------------------------------------------------


def fields(frame: dict) -> tuple:
    return (frame["number"], frame["number_absence"], frame["name"], frame["name_absence"])


def when(frame: dict) -> tuple:
    return (frame["month"], frame["day"], frame["hour"], frame["minute"])


@PROPERTY
@given(
    number=digits,
    name=names,
    stamp=stamps,
    spaces=st.booleans(),
    eol=st.sampled_from([b"\r\n", b"\n", b"\r"]),
)
def test_modem_text_round_trip(number, name, stamp, spaces, eol):
    m, d, h, mi = stamp
    data = encode_block(number, name, month=m, day=d, hour=h, minute=mi, spaces=spaces, eol=eol)
    (frame,) = run("modem-text", [b"RING" + eol + data])[1:]
    assert fields(frame) == (number, None, name, None) and when(frame) == stamp


@PROPERTY
@given(
    number=digits,
    name=names,
    stamp=stamps,
    ddn=st.booleans(),
    wrap=st.sampled_from([0, *range(2, 40)]),
    lower=st.booleans(),
)
def test_xdmf_round_trip_binary_and_hex(number, name, stamp, ddn, wrap, lower):
    m, d, h, mi = stamp
    param = fsk.P_DDN if ddn else fsk.P_NUMBER
    message = fsk.encode_mdmf(number, name, month=m, day=d, hour=h, minute=mi, number_param=param)
    for data in (
        xdmf.binary_burst(message, random_byte=b"\x00"),
        xdmf.hex_lines(message, wrap=wrap * 2, lower=lower),
    ):
        (frame,) = run("xdmf", [data])
        assert fields(frame) == (number, None, name, None) and when(frame) == stamp
    (sdmf,) = run("xdmf", [fsk.encode_sdmf(number, month=m, day=d, hour=h, minute=mi)])
    assert fields(sdmf) == (number, None, None, None) and when(sdmf) == stamp


@PROPERTY
@given(number=digits, channel=st.sampled_from("123456789"), body=st.sampled_from([20, 21]))
def test_kr_adapter_round_trip(number, channel, body):
    (frame,) = run("kr-adapter", [kr_adapter.encode_frame(channel, "I", number, body=body)])
    assert fields(frame) == (number, None, None, None) and frame["line"] == channel


@PROPERTY
@given(number=digits, name=names, stamp=stamps, line=st.integers(1, 8), dollar=st.booleans())
def test_callerid_com_round_trip(number, name, stamp, line, dollar):
    m, d, h, mi = stamp
    record = callerid_com.encode_call_record(
        number, name, line=line, month=m, day=d, hour=h, minute=mi, dollar=dollar
    )
    (frame,) = run("callerid-com", [record])
    assert fields(frame) == (number, None, name, None) and when(frame) == stamp
    assert frame["line"] == f"{line:02d}"


@PROPERTY
@given(number=digits, name=names, stamp=stamps, line=st.integers(1, 99))
def test_tci_round_trip(number, name, stamp, line):
    m, d, h, mi = stamp
    (frame,) = run("tci", [tci.encode_record(number, name, line=line, month=m, day=d, hour=h, minute=mi)])
    assert fields(frame) == (number, None, name, None) and when(frame) == stamp


@PROPERTY
@given(number=digits, name=names, stamp=stamps)
def test_netcallerid_round_trip(number, name, stamp):
    m, d, h, mi = stamp
    (frame,) = run(
        "netcallerid", [netcallerid.encode_record(number, name, month=m, day=d, hour=h, minute=mi)]
    )
    assert fields(frame) == (number, None, name, None) and when(frame) == stamp


@PROPERTY
@given(number=digits, variant=st.integers(1, 4), absent=st.booleans())
def test_dtmf_round_trip(number, variant, absent):
    if absent and variant in (1, 2):
        (frame,) = run("dtmf", [dtmf.encode_message(None, absence="private", variant=variant)])
        assert fields(frame) == (None, "private", None, None)
        return
    (frame,) = run("dtmf", [dtmf.encode_message(number, variant=variant)])
    assert fields(frame) == (number, None, None, None)


@PROPERTY
@given(number=digits, dialled=st.none() | digits, parity=st.booleans())
def test_jclip_round_trip(number, dialled, parity):
    (frame,) = run("jclip", [jclip.encode_frame(number, dialled=dialled, parity=parity)])
    assert fields(frame) == (number, None, None, None)
    assert frame.get("called_number") == dialled


# -- arbitrary bytes, bounded memory ----------------------------------------------------

FORMAT_ALPHABETS = st.sampled_from(
    [
        b"RING\r\nDATE=0NMBR NAME MESG\x10RhH0123456789ABCDEFabcdef =",
        b"U\x04\x06\x80\x82\x01\x02\x07\x08\x0b\x13\xff0123456789\r\n",
        b"\x02\x031ISEKPOC0123 ",
        b"$01 IOSEBG09/26:AMPM RFNH-\r\n",
        b"###DATE...NMBRNAME+-\r0123",
        b"ABCD#*0123456789\r\n x",
        b"\x10\x90\x01\x81\x07\x87\x02\x82\x40\xc0\x03\x04\x09PO0123",
    ]
)


@pytest.mark.parametrize("fmt", FORMATS)
@PROPERTY
@given(
    data=st.binary(max_size=400), alphabet=FORMAT_ALPHABETS, picks=st.lists(st.integers(0, 255), max_size=300)
)
def test_arbitrary_bytes_never_raise(fmt, data, alphabet, picks):
    near_miss = bytes(alphabet[p % len(alphabet)] for p in picks)
    for stream in (data, near_miss, near_miss + data):
        decoder = make_decoder(fmt)
        frames = decoder.feed(stream[: len(stream) // 2], 1.0) + decoder.feed(stream[len(stream) // 2 :], 2.0)
        frames += decoder.timeout(10.0) + decoder.flush(10.0)
        for frame in frames:
            json.dumps(frame.to_json())


def held(decoder) -> int:
    """Bytes a decoder keeps between calls (auto: its own and its current decoder's)."""
    total = 0
    for value in vars(decoder).values():
        if isinstance(value, bytes | bytearray):
            total += len(value)
        elif isinstance(getattr(value, "pending", None), bytes):
            total += len(value.pending)
    current = getattr(decoder, "current", None)
    return total + (held(current) if current is not None else 0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "garbage", [b"x" * 997, bytes(range(256)) * 4, b"U" * 1000, b"\x02" + b"1" * 999, b"UUU" + b"\xff" * 997]
)
def test_endless_garbage_costs_bounded_memory(fmt, garbage):
    decoder = make_decoder(fmt)
    for _ in range(300):
        decoder.feed(garbage, 0.0)
        assert held(decoder) <= MAX_BUFFER + MAX_LINE
    decoder.flush(0.0)
    assert held(decoder) <= MAX_LINE


@pytest.mark.parametrize("fmt", ["modem-text", "callerid-com", "tci", "netcallerid", "auto"])
def test_an_endless_line_is_cut_and_counted(fmt):
    decoder = make_decoder(fmt)
    for _ in range(50):
        decoder.feed(b"y" * 1000, 0.0)
    assert decoder.stats.overflows >= 1
    assert decoder.stats.skipped > 40_000


def test_auto_follows_a_device_that_changes_format():
    modem = b"RING\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5045551234\r\n\r\nRING\r\n"
    box = callerid_com.encode_call_record("800-240-4637", "CallerID.com", month=9, day=26, hour=11, minute=28)
    frames = run("auto", [modem, box])
    assert [(f["kind"], f["format"]) for f in frames] == [
        ("ring", "modem-text"),
        ("cid", "modem-text"),
        ("ring", "modem-text"),
        ("cid", "callerid-com"),
    ]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_every_message_in_a_noisy_fsk_module_stream_is_found(seed):
    # HT9032D-style: random noise, 28 U's, one random byte, the message, more noise.
    rng = random.Random(seed)
    box = Box("xdmf", rng=rng)
    calls = [Caller(f"010{rng.randrange(10**8):08d}", "KIM MINJI") for _ in range(300)]
    data = b"".join(step for c in calls for _, step in box.call_script(c))
    frames = run("xdmf", split(data, [rng.randrange(len(data)) for _ in range(30)]))
    assert [f["number"] for f in frames if f["kind"] == "cid"] == [c.number for c in calls]


def test_fuzz_finding_tci_superscript_digit():
    # atheris found it: "¹" passes str.isdigit() but not int().
    assert run("tci", [b"01      3/0\xc2\xb9 4    0:06 AMII                          \r\n"]) == []
