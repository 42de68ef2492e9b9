"""Numbers for people (KR, US, GB) and the phonebook whose names win over the network's."""

from __future__ import annotations

import asyncio
import os

import pytest

from cidbridge import numbers
from cidbridge.core.tracker import CallEvent
from cidbridge.hub import Hub
from cidbridge.phonebook import Phonebook
from cidbridge.store import CallLog


@pytest.mark.parametrize(
    ("number", "region", "display", "e164"),
    [
        # Korea: mobiles, Seoul (7 and 8 digits), other areas, VoIP, business numbers.
        ("01012345678", "KR", "010-1234-5678", "+821012345678"),
        ("021234567", "KR", "02-123-4567", "+8221234567"),
        ("0212345678", "KR", "02-1234-5678", "+82212345678"),
        ("0421234567", "KR", "042-123-4567", "+82421234567"),
        ("07012345678", "KR", "070-1234-5678", "+827012345678"),
        ("15881234", "KR", "1588-1234", "+8215881234"),
        ("010-1234-5678", "KR", "010-1234-5678", "+821012345678"),
        # United States: with and without the trunk 1, as modems deliver them.
        ("2125551234", "US", "(212) 555-1234", "+12125551234"),
        ("12125551234", "US", "(212) 555-1234", "+12125551234"),
        # United Kingdom: London, a mobile in the drama range libphonenumber cannot place.
        ("02079460123", "GB", "020 7946 0123", "+442079460123"),
        ("07700900123", "GB", "07700 900123", "+447700900123"),
        # A foreign caller is shown the international way.
        ("+14155550100", "KR", "+1 415-555-0100", "+14155550100"),
        ("+821012345678", "GB", "+82 10-1234-5678", "+821012345678"),
    ],
)
def test_display_and_e164(number, region, display, e164):
    assert numbers.display(number, region) == display
    assert numbers.e164(number, region) == e164


@pytest.mark.parametrize("number", ["0207####123", "Restricted", "12", "", None, "++1234567"])
def test_what_is_not_a_number_is_shown_as_delivered(number):
    assert numbers.display(number, "GB") == number
    assert numbers.e164(number, "GB") is None


def test_match_key_makes_every_spelling_of_one_number_equal():
    spellings = ["010-1234-5678", "01012345678", "+82 10-1234-5678", "+821012345678", "(010) 1234 5678"]
    assert {numbers.match_key(n, "KR") for n in spellings} == {"+821012345678"}
    assert numbers.match_key("(212) 555-1234", "US") == numbers.match_key("12125551234", "US")


# -- the phonebook ----------------------------------------------------------------------


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    # Make every rewrite visible even within one mtime tick.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_phonebook_matches_by_normalised_number(tmp_path):
    book = tmp_path / "book.csv"
    write(book, "number,name,note\n010-1234-5678,김민지,VIP\n02 123 4567,Front office,\n")
    phonebook = Phonebook(book, "KR")
    contact = phonebook.lookup("01012345678")
    assert contact is not None and contact.name == "김민지" and contact.note == "VIP"
    office = phonebook.lookup("021234567")
    assert office is not None and office.name == "Front office" and office.note is None
    assert phonebook.lookup("01099999999") is None
    assert phonebook.lookup(None) is None


def test_phonebook_for_us_and_gb_numbers(tmp_path):
    us = tmp_path / "us.csv"
    write(us, "(212) 555-1234,Joe's Pizza\n")
    assert Phonebook(us, "US").lookup("12125551234").name == "Joe's Pizza"
    gb = tmp_path / "gb.csv"
    write(gb, "+44 20 7946 0123,Surgery\n")
    assert Phonebook(gb, "GB").lookup("02079460123").name == "Surgery"


def test_phonebook_is_re_read_when_the_file_changes(tmp_path):
    book = tmp_path / "book.csv"
    write(book, "01012345678,Old name\n")
    phonebook = Phonebook(book, "KR")
    assert phonebook.lookup("01012345678").name == "Old name"
    write(book, "01012345678,New name\n01055556666,Added\n")
    assert phonebook.lookup("01012345678").name == "New name"
    assert phonebook.lookup("01055556666").name == "Added"
    book.unlink()
    assert phonebook.lookup("01012345678") is None  # gone: no stale names


def test_phonebook_reads_excel_files_and_skips_bad_rows(tmp_path, caplog):
    utf8_bom = tmp_path / "bom.csv"
    write(utf8_bom, "\ufeff번호,이름,메모\n010-1234-5678,김민지,단골\n")
    assert Phonebook(utf8_bom, "KR").lookup("01012345678").name == "김민지"
    cp949 = tmp_path / "cp949.csv"
    write(cp949, "번호,이름\n010-1234-5678,박서연\nnot a number,Nobody\n01011112222,\n", encoding="cp949")
    phonebook = Phonebook(cp949, "KR")
    assert phonebook.lookup("01012345678").name == "박서연"
    assert len(phonebook) == 1
    assert "row 3 skipped" in caplog.text and "row 4 skipped" in caplog.text


def test_missing_phonebook_means_no_names_not_an_error(tmp_path):
    assert Phonebook(tmp_path / "absent.csv", "KR").lookup("01012345678") is None


# -- the hub applies it --------------------------------------------------------------------


def test_hub_gives_the_phonebook_name_and_keeps_the_network_name(tmp_path):
    book = tmp_path / "book.csv"
    write(book, "01012345678,Kim Minji,VIP\n")

    async def run():
        with CallLog(tmp_path / "calls.sqlite") as store:
            hub = Hub(store, region="KR")
            hub.use_phonebook(book, "KR")
            known = await hub.publish(CallEvent("call", "desk-1", "desk", number="01012345678", name="KIM M"))
            stranger = await hub.publish(CallEvent("call", "desk-2", "desk", number="0212345678", name="LEE"))
            return known, stranger, store.calls()

    known, stranger, rows = asyncio.run(run())
    assert (known["name"], known["network_name"], known["note"]) == ("Kim Minji", "KIM M", "VIP")
    assert known["display"] == "010-1234-5678" and known["e164"] == "+821012345678"
    assert (stranger["name"], stranger["network_name"], stranger["note"]) == ("LEE", "LEE", None)
    by_id = {row["call_id"]: row for row in rows}
    assert by_id["desk-1"]["name"] == "Kim Minji" and by_id["desk-1"]["network_name"] == "KIM M"
    assert by_id["desk-1"]["note"] == "VIP"
