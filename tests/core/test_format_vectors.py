# ruff: noqa: E501  (test vectors are quoted verbatim, one per line)
"""Every test vector of docs/formats.md, QUOTED and CONSTRUCTED, with its decode.

Each vector is decoded by its own format's decoder, in 7-byte reads, and again by
``auto``, which must find the format by itself and give the same frames.  The
published examples with wrong checksums must come out ``invalid``, never a call.
"""

from __future__ import annotations

import pytest

from cidbridge.core.formats import make_decoder
from cidbridge.core.formats.xdmf import binary_burst, hex_lines


def decode(fmt: str, data: bytes, chunk: int = 7) -> list[dict]:
    decoder = make_decoder(fmt)
    frames = []
    for i in range(0, len(data), chunk):
        frames += decoder.feed(data[i : i + chunk], 0.0)
    frames += decoder.flush(0.0)
    return [frame.to_json() for frame in frames]


def only(fmt: str, data: bytes) -> dict:
    """The single frame ``data`` decodes to, checked to be the same through ``auto``."""
    frames = decode(fmt, data)
    assert decode("auto", data) == frames
    assert len(frames) == 1, frames
    return frames[0]


def cid(frame: dict, number, name=None, when=(None, None, None, None), **absences) -> None:
    assert frame["kind"] == "cid", frame
    assert (frame["number"], frame["name"]) == (number, name)
    assert (frame["month"], frame["day"], frame["hour"], frame["minute"]) == when
    assert frame["number_absence"] == absences.get("number_absence")
    assert frame["name_absence"] == absences.get("name_absence")


H = bytes.fromhex

# -- 7.1 Bellcore SDMF / MDMF ----------------------------------------------------------

GOOD_XDMF = {
    "B1": ("04 12 30 39 33 30 31 32 32 34 36 30 39 35 35 35 31 32 31 32 51", "6095551212", None, (9, 30, 12, 24)),
    "B2c": ("04 09 30 39 33 30 31 32 32 34 50 0E", None, None, (9, 30, 12, 24)),
    "B3": ("04 09 30 39 33 30 31 32 32 34 4F 0F", None, None, (9, 30, 12, 24)),
    "B4c": (
        "80 20 01 08 30 33 32 34 30 39 30 32 07 08 4A 4F 48 4E 20 44 4F 45 02 0A 38 30 30 35 35 35 31 32 31 32 84",
        "8005551212",
        "JOHN DOE",
        (3, 24, 9, 2),
    ),
    "B5": ("041230353131313835323430373535353030303059", "4075550000", None, (5, 11, 18, 52)),
    "B6": (
        "802001083035313131383532020A3430373535353030303007084A4F484E20444F4584",
        "4075550000",
        "JOHN DOE",
        (5, 11, 18, 52),
    ),
    "B7": ("80 16 01 08 30 33 31 37 31 36 35 36 02 0A 32 31 35 36 34 33 30 31 34 34 BA", "2156430144", None, (3, 17, 16, 56)),
    "B9": ("04 12 31 30 30 31 31 37 35 30 36 30 39 35 35 35 31 32 31 32 57", "6095551212", None, (10, 1, 17, 50)),
    "C1": ("802401083038303731383337070F4B4C415641204D4152592020202020030735363333393733B5", "5633973", "KLAVA MARY", (8, 7, 18, 37)),
    "C2": ("802401083038303731393036070F4B4C415641204D4152592020202020030735363333393733B8", "5633973", "KLAVA MARY", (8, 7, 19, 6)),
    "C3": ("802401083038303831323435070F4B4C415641204D4152592020202020030735363333393733BB", "5633973", "KLAVA MARY", (8, 8, 12, 45)),
    "C4": ("802401083038303831343232070F4B4C415641204D4152592020202020030735363333393733BE", "5633973", "KLAVA MARY", (8, 8, 14, 22)),
    "C5": ("802401083038313131333234070F4272697420436F6C756D626961202003073936313932373907", "9619279", "Brit Columbia", (8, 11, 13, 24)),
    "C6": ("802401083038313131383134070F4D4F454E204252414E444F4E2020200307363132303533397E", "6120539", "MOEN BRANDON", (8, 11, 18, 14)),
    "C7": ("802401083038313131393130070F53544146464F524420424C41494E4503073536313037303215", "5610702", "STAFFORD BLAINE", (8, 11, 19, 10)),
    "C8": ("802401083038313131393330070F53544146464F524420424C41494E4503073536313037303213", "5610702", "STAFFORD BLAINE", (8, 11, 19, 30)),
    "C9": ("802401083038313131393432070F4D4F454E204252414E444F4E2020200307363132303533397C", "6120539", "MOEN BRANDON", (8, 11, 19, 42)),
    "C10": ("802401083038313131393435070F535455444E45592053202020202020030739363438333930C0", "9648390", "STUDNEY S", (8, 11, 19, 45)),
    "C11": ("802401083038313131393436070F53544557415254204C204D20202020030735363336393330A2", "5636930", "STEWART L M", (8, 11, 19, 46)),
    "A1": (
        "80 20 01 08 30 33 32 31 31 34 30 35 02 0A 35 35 35 31 32 33 34 35 36 37 07 08 4A 4F 48 4E 20 44 4F 45 7A",
        "5551234567",
        "JOHN DOE",
        (3, 21, 14, 5),
    ),
    "E1": (
        "80 1A 11 01 01 01 08 30 35 31 31 31 38 35 32 02 0B 30 31 30 31 32 33 34 35 36 37 38 71",
        "01012345678",
        None,
        (5, 11, 18, 52),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(GOOD_XDMF))
def test_good_fsk_messages_decode_every_way_they_arrive(name):
    hexed, number, caller, when = GOOD_XDMF[name]
    message = H(hexed)
    frame = only("xdmf", message)  # the bare message, as `decode --hex` gives it
    assert frame["format"] == "xdmf"
    assert (frame["number"], frame["name"]) == (number, caller)
    assert (frame["month"], frame["day"], frame["hour"], frame["minute"]) == when
    # From an FSK module: noise, seizure, one random byte, the message, noise.
    burst = binary_burst(message, seizure=28, random_byte=b"\x9c", noise=b"\x00\xf3q") + b"\x17\x88"
    assert only("xdmf", burst) == frame
    # From a modem in hex mode: upper or lower case, whole or wrapped.
    for lines in (hex_lines(message), hex_lines(message, lower=True), hex_lines(message, wrap=30)):
        assert only("xdmf", lines) == frame
        ringing = b"RING\r\n\r\n" + lines + b"\r\nRING\r\n"
        assert decode("modem-text", ringing)[1] == frame
        assert decode("auto", ringing) == decode("modem-text", ringing)


def test_sdmf_absences_b2c_b3():
    assert only("xdmf", H(GOOD_XDMF["B2c"][0]))["number_absence"] == "private"
    assert only("xdmf", H(GOOD_XDMF["B3"][0]))["number_absence"] == "unavailable"


@pytest.mark.parametrize(
    ("name", "hexed", "reasons"),
    [
        ("B2", "04 09 30 39 33 30 31 32 32 34 50 12", {"checksum"}),
        (
            "B4",
            "80 20 01 08 30 33 32 34 30 39 30 32 07 08 4A 4F 48 4E 20 44 4F 45 02 0A 38 30 30 35 35 35 31 32 31 32 7D",
            {"checksum"},
        ),
        ("B8", "04 12 30 33 31 37 31 36 35 36 32 31 35 36 34 33 30 31 34 34 BA", {"checksum"}),
        (
            "B10",
            "801E01083130313532303338020A37303835353530303031070C552E532E524F424F5449435322",
            {"checksum"},
        ),
        ("B11", "0412303332323234303539313435353132333435", {"length"}),
    ],
)
def test_published_bad_examples_are_invalid_never_calls(name, hexed, reasons):
    frames = decode("xdmf", H(hexed))
    assert frames and all(f["kind"] == "invalid" for f in frames), frames
    assert frames[0]["reason"] in reasons
    assert frames[0]["raw"].startswith(hexed.replace(" ", "").lower()[:20])
    assert decode("auto", H(hexed)) == frames


def test_usr_manual_t3_wrapped_hex_with_a_wrong_length_is_invalid():
    data = b"RING\r\n801E01083130313532303338020A37303835353530303031070C552E532E\r\n524F424F5449435322\r\nRING\r\n"
    frames = decode("modem-text", data)
    assert [f["kind"] for f in frames] == ["ring", "invalid", "ring"]
    assert frames[1]["format"] == "xdmf" and frames[1]["reason"] == "length"


def test_c12_both_private_and_c13_long_distance_ddn():
    cid(only("xdmf", H("80100108303831313031303808015004015026")), None, None, (8, 11, 1, 8),
        number_absence="private", name_absence="private")  # fmt: skip
    frame = only("xdmf", H("80230108303831323137313507074B4C415641204A030B313738303533383430383306014C34"))
    cid(frame, "17805384083", "KLAVA J", (8, 12, 17, 15))
    assert frame["qualifier"] == "L"


@pytest.mark.parametrize(
    ("hexed", "active", "count"),
    [
        ("06 03 42 42 42 31", True, None),  # M1
        ("06 03 6F 6F 6F AA", False, None),  # M2
        ("82 03 0B 01 FF 70", True, None),  # M3
        ("82 03 0B 01 00 6F", False, None),  # M4, E4
        ("82 06 0B 01 FF 13 01 05 54", True, 5),  # E3
    ],
)
def test_message_waiting(hexed, active, count):
    frame = only("xdmf", H(hexed))
    assert frame == {"kind": "mwi", "format": "xdmf", "active": active, "count": count, "line": None}


def test_asterisk_style_absences_a2_a3_and_etsi_withheld_e2():
    cid(only("xdmf", H("80 10 01 08 30 33 32 31 31 34 30 35 04 01 4F 08 01 4F 2B")), None, None, (3, 21, 14, 5),
        number_absence="unavailable", name_absence="unavailable")  # fmt: skip
    cid(only("xdmf", H("80 10 01 08 31 32 32 34 31 35 33 30 04 01 50 08 01 50 27")), None, None, (12, 24, 15, 30),
        number_absence="private", name_absence="private")  # fmt: skip
    frame = only("xdmf", H("80 10 11 01 01 01 08 30 35 31 31 31 38 35 32 04 01 50 68"))
    cid(frame, None, None, (5, 11, 18, 52), number_absence="private")
    assert frame["call_type"] == 1
    assert only("xdmf", H(GOOD_XDMF["E1"][0]))["call_type"] == 1


# -- 7.2 MESG fragments, 7.5 modem transcripts -------------------------------------------


def test_mesg_fragments_e5_e6_e7_and_askey_mwi():
    frames = decode("modem-text", b"MESG = 110101\r\nDATE = 0511\r\nTIME = 1852\r\nNMBR = 4075550000\r\n\r\n")
    assert frames[0]["call_type"] == 1 and frames[0]["mesg"] == ["110101"]
    frames = decode("modem-text", b"NMBR = 4075550000\r\nMESG = 06014C\r\nRING\r\n")
    assert frames[0]["qualifier"] == "L"
    frames = decode("modem-text", b"RING\r\nMESG = 030735353531323132\r\nRING\r\n")
    cid(frames[1], "5551212")  # Bell Canada's number in parameter 3
    frames = decode("modem-text", b"MESG = 060342424231\r\n\r\nRING\r\n")
    assert frames[0] == {"kind": "mwi", "format": "modem-text", "active": True, "count": None, "line": None}


TRANSCRIPTS = {
    "T1": (
        b"RING\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 504551234\r\nNAME = A N OTHER\r\nRING\r\nRING\r\n",
        ["ring", ("504551234", "A N OTHER", (3, 21, 14, 5)), "ring", "ring"],
    ),
    "T2": (
        b"RING\r\nDATE = 1015\r\nTIME = 2038\r\nNMBR = 8475550001\r\nNAME = U.S.ROBOTICS\r\nRING\r\n",
        ["ring", ("8475550001", "U.S.ROBOTICS", (10, 15, 20, 38)), "ring"],
    ),
    "T4": (
        b"RING\r\nDATE = 0504\r\nTIME = 2149\r\nNMBR = 4075551212\r\nNAME = Chmielewski Joh\r\nRING\r\n",
        ["ring", ("4075551212", "Chmielewski Joh", (5, 4, 21, 49)), "ring"],
    ),
    "T5": (
        b"RING\r\nMESG = 110101\r\nDATE = 0511\r\nTIME = 1852\r\nNAME = JOHN DOE\r\nNMBR = 4075550000\r\nRING\r\n",
        ["ring", ("4075550000", "JOHN DOE", (5, 11, 18, 52)), "ring"],
    ),
    "T6": (  # Bell Canada, MESG last: a block is a frame once complete, so the MESG is not in it
        b"RING\r\nDATE = 0511\r\nTIME = 1852\r\nNAME = JOHN DOE\r\nNMBR = 4075550000\r\nMESG = 06014C\r\nRING\r\n",
        ["ring", ("4075550000", "JOHN DOE", (5, 11, 18, 52)), "ring"],
    ),
    "T7": (
        b"DATE = 0124\r\nTIME = 1534\r\nNMBR = 0207####123\r\n\r\nRING\r\n\r\nRING\r\n",
        [("0207####123", None, (1, 24, 15, 34)), "ring", "ring"],
    ),
    "T8": (
        b"AT+VCID?\r\n0\r\nOK\r\nRING\r\nATZ\r\nOK\r\nAT+VCID=1\r\nOK\r\nRING\r\n"
        b"DATE = 1015\r\nTIME = 1310\r\nNMBR = 04xxxxxxx7\r\nRING\r\n",
        ["ring", "ring", ("04xxxxxxx7", None, (10, 15, 13, 10)), "ring"],
    ),
    "T9": (b"DATE=1203\r\nTIME=1452\r\nNMBR=07xxxxxxxx7\r\n", [("07xxxxxxxx7", None, (12, 3, 14, 52))]),
    "T10": (
        b"\r\nRING\r\n\r\nDATE = 1124\r\nTIME = 1806\r\nNAME = O\r\nDDN_NMBR= 9196278340\r\n\r\nRING\r\n\r\nRING\r\n",
        ["ring", ("9196278340", None, (11, 24, 18, 6)), "ring", "ring"],
    ),
    "T11": (
        b"MESG = 110101\nDATE = 0421\nTIME = 0934\nNMBR = P\nNAME = WITHHELD\nRING\nRING\n"
        b"DATE = 0103\nTIME = 1254\nNAME = SARASOTA,FL\nDDN_NMBR = 9415557218\n"
        b"DATE =\nTIME=\nNAME = NO DATE\nNMBR = NO TIME\n"
        b"DATE = 0107\nTIME = 1518\nNAME = PrivDirOff\nNMBR = 0000000000\n"
        b"DATE = 0312\nTIME = 12541\nNMBR = 6305551500\nNAME = ELMHURST, IL\n"
        b"DATE = 0926\nTIME = 1933\nNMBR = Restricted\nNAME = Unavailable\n"
        b"DATE = 0103\nTIME = 1334\nNAME = Tucson,AZ\nDDN = 9415557218\n"
        b"CID RING\nDATE TIME=01/06 14:15\nNMBR=DATE and TIME COMBINED\n",
        [
            (None, "WITHHELD", (4, 21, 9, 34)),
            "ring",
            "ring",
            ("9415557218", "SARASOTA,FL", (1, 3, 12, 54)),
            ("NO TIME", "NO DATE", (None, None, None, None)),
            ("0000000000", "PrivDirOff", (1, 7, 15, 18)),
            ("6305551500", "ELMHURST, IL", (3, 12, None, None)),
            ("Restricted", "Unavailable", (9, 26, 19, 33)),
            ("9415557218", "Tucson,AZ", (1, 3, 13, 34)),
            "ring",
            ("DATE and TIME COMBINED", None, (1, 6, 14, 15)),
        ],
    ),
    "T12": (
        b"CID RING\r\n\r\nCALLING MSG\r\n\r\nDATE TIME=11/24 22:10\r\n\r\nNBR=0632727751\r\n\r\nEND MSG\r\n",
        ["ring", ("0632727751", None, (11, 24, 22, 10))],
    ),
    "T13": (b"RING B\r\nRING 2\r\nDRON=5\r\nDROF=11\r\nDRON=5\r\nDROF=34\r\n", ["ring", "ring"]),
    "T14": (
        b"RING;08912345;08765\r\nCALLER NUMBER: 08912345\r\n\r\n",
        ["ring", ("08912345", None, (None,) * 4)],
    ),
}


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_modem_transcripts(name):
    data, expected = TRANSCRIPTS[name]
    frames = decode("modem-text", data)
    assert decode("auto", data) == frames
    assert decode("modem-text", data, chunk=1) == frames
    got = [
        f["kind"]
        if f["kind"] != "cid"
        else (f["number"], f["name"], (f["month"], f["day"], f["hour"], f["minute"]))
        for f in frames
    ]
    assert got == expected  # fmt: skip
    assert all(f["format"] == "modem-text" for f in frames)


def test_t11_private_number_and_t13_ring_tags():
    frames = decode("modem-text", TRANSCRIPTS["T11"][0])
    assert frames[0]["number_absence"] == "private"
    frames = decode("modem-text", TRANSCRIPTS["T13"][0])
    assert [f["tag"] for f in frames] == ["B", "2"]


# -- 7.3 DTMF, 7.4 J-CLIP ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number", "absence"),
    [
        (b"A12345678B10D87654321C", "12345678", None),  # D1
        (b"A12345678#", "12345678", None),  # D2
        (b"D1#", None, "private"),  # D3
        (b"D2#", None, "unavailable"),  # D4
        (b"D3#", None, "unavailable"),  # D4
        (b"D12345678#", "12345678", None),  # D5
        (b"D12345678C", "12345678", None),  # D5
        (b"12345678#", "12345678", None),  # D6
        (b"B00C", None, "unavailable"),  # D7
        (b"B10C", None, "private"),  # D7
    ],
)
def test_dtmf_variants(text, number, absence):
    frame = only("dtmf", text + b"\r\n")
    cid(frame, number, number_absence=absence)
    if text.startswith(b"A12345678B10"):
        assert frame["redirecting_number"] == "87654321" and frame["info"] == "10"


def test_jclip_vectors_and_a_corrupted_crc():
    j1 = H(
        "90 81 87 90 82 C0 1E 82 88 B1 B2 33 B4 35 36 B7 B8 21 03 B2 B1 35 09 88 B8 B7 36 35 B4 33 B2 B1"
        " 22 03 B2 B1 35 90 03 30 48"
    )
    frame = only("jclip", j1)
    cid(frame, "12345678")
    assert frame["called_number"] == "87654321"
    cid(
        only("jclip", H("90 81 87 90 82 C0 0C 82 0A 30 33 B1 B2 33 B4 35 36 B7 B8 90 03 FB 52")), "0312345678"
    )
    cid(only("jclip", H("90 81 87 90 82 C0 03 84 81 50 90 03 1E EE")), None, number_absence="private")
    bad = only("jclip", j1[:-1] + b"\x49")
    assert (bad["kind"], bad["reason"]) == ("invalid", "crc")


# -- 7.6 caller-ID boxes ------------------------------------------------------------------


def test_whozz_calling_records_w1_to_w7():
    w1 = only("callerid-com", b"01 I S 0276 G B3 09/26 11:28 AM 800-240-4637 CallerID.com\r\n")
    cid(w1, "800-240-4637", "CallerID.com", (9, 26, 11, 28))
    assert (w1["line"], w1["direction"], w1["event"], w1["duration_s"], w1["ring_type"], w1["rings"]) == (
        "01",
        "in",
        "start",
        276,
        "B",
        3,
    )
    w2 = only("callerid-com", b"01 I S 0276 G B3 09/26 11:28 AM 800-555-1212 AT&T INFORMATIO\r\n")
    assert w2["name"] == "AT&T INFORMATIO"
    w3 = only("callerid-com", b"$01     09/26     02:30 PM     8002404637     I     CallerID.com\r\n")
    cid(w3, "8002404637", "CallerID.com", (9, 26, 14, 30))
    w4 = only("callerid-com", b"02 I S 0000 G A0 09/26 01:28 AM 770-263-7111\r\n")
    cid(w4, "770-263-7111", None, (9, 26, 1, 28))
    assert w4["line"] == "02"
    w5 = decode(
        "callerid-com",
        b"01 R 11/07 07:43:52\r\n01 F 11/07 17:45:04\r\n02 N 11/07 10:46:23\r\n01 H 11/07 22:11:08\r\n",
    )
    assert [(f["kind"], f["line"], f.get("state")) for f in w5] == [
        ("ring", "01", None),
        ("hook", "01", "off"),
        ("hook", "02", "on"),
    ]
    w6 = only("callerid-com", b"0248 02 09/26 13:28 I E 0276 G A3 800-555-1212 AT&T INFORMATIO\r\n")
    cid(w6, "800-555-1212", "AT&T INFORMATIO", (9, 26, 13, 28))
    assert (w6["line"], w6["event"]) == ("02", "end")
    w7 = b"^^<U>\x00\x01\x02\x04\x05\x06<S>\x07\x08\x09\x0b\x0c\x0e$01 I E 0000 G A2 12/17 04:54 PM 770-263-7111 CALLERID.COM   \r\n"
    cid(only("callerid-com", w7), "770-263-7111", "CALLERID.COM", (12, 17, 16, 54))


def test_whozz_calling_bad_checksum_flag_is_invalid_and_outbound_is_not_a_call():
    bad = only("callerid-com", b"01 I S 0276 B B3 09/26 11:28 AM 800-240-4637 CallerID.com\r\n")
    assert (bad["kind"], bad["reason"]) == ("invalid", "checksum")
    assert decode("callerid-com", b"01 O S 0000 G A0 09/26 11:28 AM 800-240-4637\r\n") == []


def test_netcallerid_n1_n2_n3():
    cid(
        only("netcallerid", b"###DATE08082225...NMBR14075551212...NAMEJOHN+++\r"),
        "14075551212",
        "JOHN",
        (8, 8, 22, 25),
    )
    cid(only("netcallerid", b"###DATE03301423...NMBR...NAME-UNKNOWN CALLER-+++\r"), None, None, (3, 30, 14, 23),
        number_absence="unavailable", name_absence="unavailable")  # fmt: skip
    n3 = only("netcallerid", b"###DATE...NMBR...NAME   -MSG OFF-+++\r")
    assert (n3["kind"], n3["active"]) == ("mwi", False)


def test_tci_records():
    t1 = only("tci", b"01      9/03      2:25 PM       806-672-1767           WIRELESS CALLER\r\n")
    cid(t1, "806-672-1767", "WIRELESS CALLER", (9, 3, 14, 25))
    assert t1["line"] == "01"
    t2 = only("tci", b"01      9/03     12:36 PM            PRIVATE                          \r\n")
    cid(t2, None, None, (9, 3, 12, 36), number_absence="private")
    t3 = only("tci", b"02      9/05     12:11 AM        OUT-OF-AREA                          \r\n")
    cid(t3, None, None, (9, 5, 0, 11), number_absence="unavailable")


def test_korean_adapter_frames_k1_to_k6():
    spaces = b" " * 17
    cid(
        only("kr-adapter", H("02 31 49 30 31 30 31 32 33 34 35 36 37 38 20 20 20 20 20 20 20 03")),
        "01012345678",
    )
    for mask, absence in ((b"P", "private"), (b"C", "payphone"), (b"O", "unavailable")):
        frame = only("kr-adapter", b"\x021I" + mask + spaces + b"\x03")
        cid(frame, None, number_absence=absence)
        assert frame["line"] == "1"
    hooks = decode("kr-adapter", b"\x021S" + b" " * 18 + b"\x03" + b"\x021E" + b" " * 18 + b"\x03")
    assert [(f["kind"], f["state"], f["line"]) for f in hooks] == [("hook", "off", "1"), ("hook", "on", "1")]
    k6 = only("kr-adapter", H("02 32 49 30 32 31 32 33 34 35 36 37 38 20 20 20 20 20 20 20 20 03"))
    cid(k6, "0212345678")
    assert k6["line"] == "2"
    # The older 21-character body, and a frame whose body length is wrong.
    cid(only("kr-adapter", b"\x021I01099998888" + b" " * 8 + b"\x03"), "01099998888")
    (short,) = decode("kr-adapter", b"\x021I010\x03")
    assert (short["kind"], short["reason"]) == ("invalid", "length")


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        # A TCI name starting with "I" or "O" must not pass for a limited Whozz Calling record.
        (b"01     10/01     12:00 AM                  0           IA             \r\n", "tci"),
        (b"01     10/01     12:00 AM                  0           I B            \r\n", "tci"),
        (b"01      9/03      2:25 PM       806-672-1767           WIRELESS CALLER\r\n", "tci"),
        (b"$01 09/26 02:30 PM 8002404637 I CallerID.com\r\n", "callerid-com"),
        # The manual's "five spaces between fields" puts "/" and "M" in TCI's columns too.
        (b"01     09/26     02:30 PM     8002404637     I     CallerID.com\r\n", "callerid-com"),
    ],
)
def test_auto_tells_tci_from_a_limited_whozz_calling_record(record, fmt):
    assert [frame["format"] for frame in decode("auto", record)] == [fmt]
