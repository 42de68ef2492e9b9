"""modem-text decoder: the transcripts of docs/formats.md and the peers' failures."""

from __future__ import annotations

import pytest

from cidbridge.core.formats.modem_text import ModemTextDecoder, encode_block


def decode(data: bytes, chunk: int | None = None) -> list[dict]:
    decoder = ModemTextDecoder()
    frames = []
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        frames += decoder.feed(data[i : i + step], 0.0)
    frames += decoder.flush(0.0)
    return [f.to_json() for f in frames]


def cids(data: bytes) -> list[dict]:
    return [f for f in decode(data) if f["kind"] == "cid"]


T1 = b"RING\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 504551234\r\nNAME = A N OTHER\r\nRING\r\nRING\r\n"


def test_is101_example_t1():
    frames = decode(T1)
    assert [f["kind"] for f in frames] == ["ring", "cid", "ring", "ring"]
    cid = frames[1]
    assert (cid["month"], cid["day"], cid["hour"], cid["minute"]) == (3, 21, 14, 5)
    assert cid["number"] == "504551234" and cid["name"] == "A N OTHER"
    assert cid["format"] == "modem-text" and cid["number_absence"] is None


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 13])
def test_any_split_gives_the_same_frames(chunk):
    assert decode(T1, chunk) == decode(T1)


def test_uk_cid_before_ring_without_name_t7():
    frames = decode(b"DATE = 0124\r\nTIME = 1534\r\nNMBR = 0207####123\r\n\r\nRING\r\n\r\nRING\r\n")
    assert [f["kind"] for f in frames] == ["cid", "ring", "ring"]
    assert frames[0]["number"] == "0207####123" and frames[0]["name"] is None


def test_no_spaces_and_no_name_t9():
    (cid,) = cids(b"DATE=1203\r\nTIME=1452\r\nNMBR=07xxxxxxxx7\r\n")
    assert cid["number"] == "07xxxxxxxx7" and (cid["month"], cid["day"]) == (12, 3)


def test_ddn_nmbr_and_name_absent_t10():
    data = (
        b"\r\nRING\r\n\r\nDATE = 1124\r\nTIME = 1806\r\nNAME = O\r\n"
        b"DDN_NMBR= 9196278340\r\n\r\nRING\r\n\r\nRING\r\n"
    )
    (cid,) = cids(data)
    assert cid["number"] == "9196278340"
    assert cid["name"] is None and cid["name_absence"] == "unavailable"


def test_private_number_and_withheld_name_pass_through():
    (cid,) = cids(b"DATE = 0421\nTIME = 0934\nNMBR = P\nNAME = WITHHELD\nRING\n")
    assert cid["number"] is None and cid["number_absence"] == "private"
    assert cid["name"] == "WITHHELD"


def test_back_to_back_blocks_split_on_repeated_key_t11():
    data = (
        b"DATE = 0103\nTIME = 1254\nNAME = SARASOTA,FL\nDDN_NMBR = 9415557218\n"
        b"DATE =\nTIME=\nNAME = NO DATE\nNMBR = NO TIME\n"
        b"DATE = 0312\nTIME = 12541\nNMBR = 6305551500\nNAME = ELMHURST, IL\n"
    )
    got = cids(data)
    assert [c["number"] for c in got] == ["9415557218", "NO TIME", "6305551500"]
    assert got[1]["month"] is None and got[1]["hour"] is None
    assert got[2]["hour"] is None  # TIME = 12541 is malformed: null, never a guess


def test_names_with_equals_and_ring_are_names():
    (cid,) = cids(b"NMBR = 5551234\r\nNAME = FRED SEBRING\r\n\r\n")
    assert cid["name"] == "FRED SEBRING"
    (cid,) = cids(b"NMBR = 5551234\r\nNAME = A=B\r\n\r\n")
    assert cid["name"] == "A=B"
    (cid,) = cids(b"DATE = 0101\r\nTIME = 0101\r\nNAME = UPDATE INC\r\nNMBR = 1\r\n")
    assert cid["name"] == "UPDATE INC" and (cid["month"], cid["day"]) == (1, 1)


def test_non_utf8_bytes_do_not_stop_decoding():
    (cid,) = cids(b"\xff\xfeNMBR = 1234567\r\nNAME = CAF\xc9\r\n\r\n")
    assert cid["number"] == "1234567" and cid["name"] == "CAFÉ"


def test_at_echoes_and_result_codes_are_ignored_t8():
    data = (
        b"AT+VCID?\r\n0\r\nOK\r\nRING\r\nATZ\r\nOK\r\nAT+VCID=1\r\nOK\r\n"
        b"RING\r\nDATE = 1015\r\nTIME = 1310\r\nNMBR = 04xxxxxxx7\r\nRING\r\n"
    )
    assert [f["kind"] for f in decode(data)] == ["ring", "ring", "cid", "ring"]


def test_distinctive_ring_tags():
    frames = decode(b"RING A\r\nRING 2\r\nCID RING\r\nRINGING\r\n")
    assert [(f["kind"], f["tag"]) for f in frames] == [("ring", "A"), ("ring", "2"), ("ring", None)]


def test_silence_emits_a_pending_block():
    decoder = ModemTextDecoder(silence=1.0)
    assert decoder.feed(b"NMBR = 123\r\n", 10.0) == []
    assert decoder.deadline == 11.0
    assert decoder.timeout(10.5) == []
    (frame,) = decoder.timeout(11.0)
    assert frame.number == "123"
    assert decoder.deadline is None


def test_date_and_time_alone_are_not_a_call():
    assert cids(b"DATE = 0101\r\nTIME = 1200\r\nRING\r\n") == []


def test_endless_garbage_is_bounded():
    decoder = ModemTextDecoder()
    for _ in range(2000):
        decoder.feed(b"x" * 1000, 0.0)
    assert len(decoder._lines.pending) <= 512
    assert decoder.stats.overflows >= 1


def test_encode_block_round_trips():
    block = encode_block("01012345678", "KIM", month=2, day=3, hour=4, minute=5)
    (cid,) = cids(block)
    assert (cid["number"], cid["name"], cid["month"], cid["day"], cid["hour"], cid["minute"]) == (
        "01012345678",
        "KIM",
        2,
        3,
        4,
        5,
    )


def test_dle_shielded_ring_and_handset_codes():
    frames = decode(b"\x10R\x10XNAME = JUMP\r\nNMBR = 123\r\n\r\n\x10H\r\n\x10h\r\n")
    assert [(f["kind"], f.get("state")) for f in frames] == [
        ("ring", None),
        ("cid", None),
        ("hook", "off"),
        ("hook", "on"),
    ]
    assert frames[1]["name"] == "JUMP"


def test_a_modem_switched_to_hex_output_mid_stream_gives_xdmf_frames():
    data = (
        T1 + b"ATZ\r\nOK\r\nAT+VCID=2\r\nOK\r\nRING\r\n"
        b"802001083035313131383532020a3430373535353030303007084a4f484e20444f4584\r\nRING\r\n"
    )
    frames = decode(data)
    assert [(f["kind"], f["format"]) for f in frames][-3:] == [
        ("ring", "modem-text"),
        ("cid", "xdmf"),
        ("ring", "modem-text"),
    ]
    assert frames[-2]["number"] == "4075550000" and frames[-2]["name"] == "JOHN DOE"


def test_blank_line_emits_a_block_once_it_has_a_number_not_before():
    frames = decode(b"DATE = 0101\r\n\r\nTIME = 1200\r\nNMBR = 55\r\n\r\nNAME = LATE\r\nRING\r\n")
    assert [(f["kind"], f.get("number"), f.get("name")) for f in frames] == [
        ("cid", "55", None),
        ("cid", None, "LATE"),
        ("ring", None, None),
    ]
    assert (frames[0]["month"], frames[0]["hour"]) == (1, 12)


@pytest.mark.parametrize(
    "block",
    [
        b"DATE = 0321\r\nTIME = 1405\r\nNMBR =  P \r\nNAME = \t O\r\n",
        b"DATE = 1399\r\nTIME = 2460\r\nDDN = 123\r\nNAME = X=Y\r\n",
        b"DATE=0101\rTIME=0000\rNBR=\rNAME=\r",
        b"DATE = 0321\r\nTIME = 1405\r\nNMBR = 1\r\nNAME = " + b"N" * 200 + b"\r\n",
    ],
)
def test_the_fast_block_path_and_the_line_path_agree(block):
    # Whole, the block is matched at once; one byte at a time, it goes line by line.
    data = b"RING\r\n" + block + block + b"RING\r\n"
    assert decode(data) == decode(data, chunk=1)


def test_endless_mesg_lines_are_capped():
    decoder = ModemTextDecoder()
    for _ in range(1000):
        decoder.feed(b"MESG = 110101\r\n", 0.0)
    assert len(decoder._block["mesg"]) <= 8 and decoder.stats.overflows > 900
