"""``cidbridge phonebook`` and ``cidbridge block`` as a user runs them (the real command)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

from cidbridge.phonebook import read_vcard
from cidbridge.store import CallLog

VCARD = (
    # vCard 2.1 as Android phones export Korean names: quoted-printable with soft line breaks.
    b"BEGIN:VCARD\r\nVERSION:2.1\r\n"
    b"N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=EA=B9=80;=EB=AF=BC=EC=A7=80;;;\r\n"
    b"FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=EA=B9=80=EB=AF=BC=\r\n=EC=A7=80\r\n"
    b"TEL;CELL;PREF:010-1234-5678\r\nTEL;HOME:02-123-4567\r\n"
    b"NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:VIP=0D=0A=EB=A9=94=EB=AA=A8\r\nEND:VCARD\r\n"
    # 3.0 with a folded note and escapes.
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Hanbit Clinic\\, Seoul\r\nTEL;TYPE=WORK,VOICE:+82 2 555 0000\r\n"
    b"NOTE:long note that is\r\n  folded here\r\nEND:VCARD\r\n"
    # 4.0 with a tel: URI, and N only (Korean order).
    b"BEGIN:VCARD\r\nVERSION:4.0\r\nN:\xeb\xb0\x95;\xec\x84\x9c\xec\x97\xb0;;;\r\n"
    b"TEL;VALUE=uri;TYPE=cell:tel:+82-10-7777-8888;ext=1\r\nEND:VCARD\r\n"
    # Broken and incomplete cards are skipped, not fatal.
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No Number\r\nEND:VCARD\r\n"
    b"BEGIN:VCARD\r\n\x00\x01garbage without colon\r\nEND:VCARD\r\n"
)


def cidbridge(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "cidbridge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "TERM": "xterm"},
    )


def test_vcard_21_30_40_are_read():
    result = read_vcard(VCARD)
    got = [(e.number, e.name, e.note) for e in result.entries]
    assert got == [
        ("010-1234-5678", "김민지", "VIP\n메모"),
        ("02-123-4567", "김민지", "VIP\n메모"),
        ("+82 2 555 0000", "Hanbit Clinic, Seoul", "long note that is folded here"),
        ("+82-10-7777-8888", "박서연", None),
    ]
    assert len(result.skipped) == 2


def test_import_list_export_and_edit_from_the_command_line(tmp_path):
    db = str(tmp_path / "calls.sqlite")
    (tmp_path / "phone.vcf").write_bytes(VCARD)
    done = cidbridge("phonebook", "import", str(tmp_path / "phone.vcf"), "--db", db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("4 added, 0 updated, 0 unchanged, 2 skipped")
    csv = '번호,이름,메모\n010-1234-5678,김민지,단골\n031-999-0000,"[bold]Evil[/] \x1b[31mRED",\n'.encode(
        "cp949"
    )
    (tmp_path / "excel.csv").write_bytes(csv)
    done = cidbridge("phonebook", "import", str(tmp_path / "excel.csv"), "--db", db)
    assert done.returncode == 0 and done.stdout.startswith("1 added, 1 updated"), done.stdout + done.stderr

    listed = cidbridge("phonebook", "list", "--db", db)
    assert listed.returncode == 0, listed.stderr
    assert "[bold]Evil[/] [31mRED" in listed.stdout  # markup shown as text, the escape gone
    assert "\x1b" not in listed.stdout and "010-1234-5678" in listed.stdout and "단골" in listed.stdout
    rows = json.loads(cidbridge("phonebook", "list", "--db", db, "--json", "--search", "민지").stdout)
    assert {r["number"] for r in rows} == {"010-1234-5678", "02-123-4567"}

    exported = cidbridge("phonebook", "export", "--db", db)
    assert exported.stdout.startswith("\ufeffnumber,name,note")
    assert "010-7777-8888" not in exported.stdout and "+82-10-7777-8888,박서연," in exported.stdout

    assert cidbridge("phonebook", "set", "0311112222", "--name", "Park", "--db", db).returncode == 0
    assert cidbridge("phonebook", "set", "0311112222", "--note", "VIP", "--db", db).returncode == 0
    rows = json.loads(cidbridge("phonebook", "list", "--db", db, "--json", "--search", "Park").stdout)
    assert [(r["name"], r["note"], r["source"]) for r in rows] == [("Park", "VIP", "cli")]
    assert cidbridge("phonebook", "remove", "031-111-2222", "--db", db).returncode == 0
    gone = cidbridge("phonebook", "remove", "031-111-2222", "--db", db)
    assert gone.returncode == 2 and "no contact" in gone.stderr


def test_command_line_errors_are_one_line(tmp_path):
    db = str(tmp_path / "calls.sqlite")
    missing = cidbridge("phonebook", "list", "--db", db)
    assert missing.returncode == 3 and missing.stderr.startswith("cidbridge: error: there is no call log")
    unreadable = cidbridge("phonebook", "import", str(tmp_path / "absent.csv"), "--db", db)
    assert unreadable.returncode == 2 and "cannot read" in unreadable.stderr
    bad = cidbridge("block", "add", "--prefix", "abc", "--db", db)
    assert bad.returncode == 2 and "a prefix is 1-15 digits" in bad.stderr
    both = cidbridge("block", "add", "0101", "--prefix", "070", "--db", db)
    assert both.returncode == 2 and "exactly one" in both.stderr
    for result in (missing, unreadable, bad, both):
        assert "Traceback" not in result.stderr


def test_block_add_list_remove(tmp_path):
    db = str(tmp_path / "calls.sqlite")
    assert cidbridge("block", "add", "010-9999-8888", "--note", "[red]spam[/]", "--db", db).returncode == 0
    assert "already blocked" in cidbridge("block", "add", "+82 10 9999 8888", "--db", db).stdout
    assert cidbridge("block", "add", "--prefix", "070", "--db", db).returncode == 0
    assert cidbridge("block", "add", "--withheld", "private", "--db", db).returncode == 0
    listed = cidbridge("block", "list", "--db", db)
    assert "number 010-9999-8888" in listed.stdout and "[red]spam[/]" in listed.stdout
    assert "numbers starting 070" in listed.stdout and "withheld numbers (private)" in listed.stdout
    rules = json.loads(cidbridge("block", "list", "--json", "--db", db).stdout)
    assert [(r["kind"], r["value"]) for r in rules] == [
        ("number", "+821099998888"),
        ("prefix", "070"),
        ("withheld", "private"),
    ]
    assert cidbridge("block", "remove", "01099998888", "--db", db).returncode == 0
    assert cidbridge("block", "remove", str(rules[1]["id"]), "--db", db).returncode == 0
    assert cidbridge("block", "remove", "--withheld", "private", "--db", db).returncode == 0
    assert cidbridge("block", "remove", "--withheld", "private", "--db", db).returncode == 2
    assert json.loads(cidbridge("block", "list", "--json", "--db", db).stdout) == []


def test_calls_table_says_ended_for_modem_calls_and_survives_hostile_names(tmp_path):
    now = datetime.now().astimezone()
    with CallLog(tmp_path / "calls.sqlite") as store:
        for n, (name, outcome) in enumerate(
            [("[/]", "unknown"), ("\x1b[2J\x1b]0;x\x07[bold]", "missed"), ("SPAM", "blocked")]
        ):
            when = (now - timedelta(minutes=10 - n)).isoformat()
            common = {"v": 1, "call_id": f"c{n}", "line": "desk", "number": f"0101234567{n}", "name": name}
            store.append({**common, "type": "call", "time": when})
            store.append({**common, "type": "end", "time": when, "outcome": outcome})
    table = cidbridge("calls", "--db", str(tmp_path / "calls.sqlite"))
    assert table.returncode == 0, table.stderr
    assert "ended" in table.stdout and "unknown" not in table.stdout and "blocked" in table.stdout
    assert "[/]" in table.stdout and "[bold]" in table.stdout and "\x1b" not in table.stdout
    found = cidbridge("calls", "--db", str(tmp_path / "calls.sqlite"), "--name", "spam", "--json")
    assert [c["call_id"] for c in json.loads(found.stdout)] == ["c2"]
