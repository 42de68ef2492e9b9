"""Numbers for people (KR, US, GB) and the phonebook whose names win over the network's.

The phonebook is in the call log database; the ``[calls] phonebook`` file is merged into it.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from cidbridge import numbers
from cidbridge.core.tracker import CallEvent
from cidbridge.hub import Hub
from cidbridge.phonebook import read_csv
from cidbridge.store import CallLog
from cidbridge.store.directory import Directory
from tests.calls.helpers import wait_until


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


@pytest.fixture
def directory(tmp_path):
    with CallLog(tmp_path / "calls.sqlite", synchronous="OFF") as store:
        yield Directory(store, "KR")


def merge(directory, path):
    return directory.sync_file(path, path.read_bytes())


def test_phonebook_matches_by_normalised_number(tmp_path, directory):
    book = tmp_path / "book.csv"
    write(book, "number,name,note\n010-1234-5678,김민지,VIP\n02 123 4567,Front office,\n")
    merge(directory, book)
    contact = directory.lookup("01012345678")
    assert contact is not None and contact.name == "김민지" and contact.note == "VIP"
    office = directory.lookup("+82 2-123-4567")
    assert office is not None and office.name == "Front office" and office.note is None
    assert directory.lookup("01099999999") is None
    assert directory.lookup(None) is None


def test_phonebook_for_us_and_gb_numbers(tmp_path):
    for region, row, caller, name in (
        ("US", "(212) 555-1234,Joe's Pizza\n", "12125551234", "Joe's Pizza"),
        ("GB", "+44 20 7946 0123,Surgery\n", "02079460123", "Surgery"),
    ):
        book = tmp_path / f"{region}.csv"
        write(book, row)
        with CallLog(tmp_path / f"{region}.sqlite") as store:
            directory = Directory(store, region)
            merge(directory, book)
            assert directory.lookup(caller).name == name


def test_file_changes_are_merged_and_edits_on_the_panel_survive_them(tmp_path, directory):
    book = tmp_path / "book.csv"
    write(book, "01012345678,Old name\n01022223333,Kept\n01044445555,Dropped later\n")
    assert merge(directory, book).added == 3
    # Someone renames a contact on the panel; the file does not mention that change.
    directory.set_contact("010-2222-3333", "Edited on the panel", "note", source="panel")
    write(book, "01012345678,New name\n01022223333,Kept\n01055556666,Added\n")
    result = merge(directory, book)
    assert (result.added, result.updated, result.removed, result.unchanged) == (1, 1, 1, 1)
    assert directory.lookup("01012345678").name == "New name"  # changed in the file: the file wins
    assert directory.lookup("01022223333").name == "Edited on the panel"  # unchanged row: the edit stays
    assert directory.lookup("01055556666").name == "Added"
    assert directory.lookup("01044445555") is None  # removed from the file, never edited
    # The same file again (a restart) changes nothing.
    assert merge(directory, book) is None
    # A row changed in the file after the panel edit wins: the latest change wins.
    write(book, "01012345678,New name\n01022223333,Renamed in the file\n01055556666,Added\n")
    merge(directory, book)
    assert directory.lookup("01022223333").name == "Renamed in the file"


def test_a_contact_edited_on_the_panel_is_not_removed_with_its_row(tmp_path, directory):
    book = tmp_path / "book.csv"
    write(book, "01012345678,Kim\n")
    merge(directory, book)
    directory.set_contact("01012345678", "Kim", "allergic to penicillin", source="panel")
    write(book, "number,name\n")
    assert merge(directory, book).removed == 0
    assert directory.lookup("01012345678").note == "allergic to penicillin"


def test_csv_reads_excel_files_and_skips_bad_rows():
    bom = read_csv("\ufeff번호,이름,메모\n010-1234-5678,김민지,단골\n".encode())
    assert [(e.number, e.name, e.note) for e in bom.entries] == [("010-1234-5678", "김민지", "단골")]
    cp949 = read_csv("번호,이름\n010-1234-5678,박서연\nnot a number,Nobody\n01011112222,\n".encode("cp949"))
    assert [e.name for e in cp949.entries] == ["박서연"]
    assert cp949.skipped == ["row 3: needs a number and a name", "row 4: needs a number and a name"]


def test_hostile_text_is_cleaned_before_it_is_stored(directory):
    contact = directory.set_contact(
        "01012345678", "<b>Kim</b>\x1b[31m[/]\u202e\r\nX", "line 1\r\nline 2\x07", source="panel"
    )
    # Markup and HTML are kept as text (shown escaped); control characters never are.
    assert contact.name == "<b>Kim</b>[31m[/] X"
    assert contact.note == "line 1\nline 2"


def test_missing_phonebook_file_means_no_names_not_an_error(tmp_path):
    async def run():
        with CallLog(tmp_path / "calls.sqlite") as store:
            hub = Hub(store, region="KR")
            hub.use_phonebook(tmp_path / "absent.csv", "KR")
            event = await hub.publish(CallEvent("call", "d-1", "desk", number="01012345678", name="KIM"))
            return event["name"]

    assert asyncio.run(run()) == "KIM"


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
            # A note without a name keeps the network's name and adds the note.
            hub.directory.set_contact("0212345678", None, "call back after 3pm", source="panel")
            noted = await hub.publish(CallEvent("update", "desk-2", "desk", number="0212345678", name="LEE"))
            return known, stranger, noted, store.calls()

    known, stranger, noted, rows = asyncio.run(run())
    assert (known["name"], known["network_name"], known["note"]) == ("Kim Minji", "KIM M", "VIP")
    assert known["display"] == "010-1234-5678" and known["e164"] == "+821012345678"
    assert (stranger["name"], stranger["network_name"], stranger["note"]) == ("LEE", "LEE", None)
    assert (noted["name"], noted["note"]) == ("LEE", "call back after 3pm")
    by_id = {row["call_id"]: row for row in rows}
    assert by_id["desk-1"]["name"] == "Kim Minji" and by_id["desk-1"]["network_name"] == "KIM M"
    assert by_id["desk-1"]["note"] == "VIP"
    assert by_id["desk-1"]["caller_key"] == "+821012345678"


def test_the_phonebook_key_keeps_working_with_a_running_daemon(tmp_path, start_daemon):
    """An existing user's [calls] phonebook file: names on calls, merged when it changes."""
    token = "book-token-0123456789"
    book = tmp_path / "book.csv"
    write(book, "number,name,note\n010-1234-5678,From The File,file note\n")
    daemon = start_daemon([], server={"token": token}, calls={"phonebook": str(book)})

    def call(number, line):
        status, answer = daemon.request(
            "POST", "/api/cti/incoming-call", {"number": number, "line": line, "name": "NET"}, token=token
        )
        assert status == 200, answer
        status, events = daemon.request(
            "GET", f"/api/events?after={answer['events'][0]['id'] - 1}", token=token
        )
        return events[0]

    first = call("01012345678", "pbx-1")
    assert (first["name"], first["note"], first["network_name"]) == ("From The File", "file note", "NET")
    # A note edited on the panel; then the file gains a row (its first row unchanged).
    status, _ = daemon.request(
        "PUT", "/api/contacts/01012345678", {"name": "From The File", "note": "panel note"}, token=token
    )
    assert status == 200
    write(book, "number,name,note\n010-1234-5678,From The File,file note\n010-9999-0000,Added Row,\n")
    card = wait_until(
        lambda: daemon.request("GET", "/api/callers/01099990000", token=token)[1]["contact"],
        what="the file's new row merged",
    )
    assert card["name"] == "Added Row" and card["source"] == "file"
    assert call("01012345678", "pbx-2")["note"] == "panel note"  # the unchanged row left the edit alone
