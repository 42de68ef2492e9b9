"""The panel's API over real HTTP against a real daemon: caller cards, contacts, missed calls,
search, blocks, and the live ``cti-directory`` announcements (SSE and socket.io-client)."""

from __future__ import annotations

import csv
import io
import urllib.parse
from datetime import datetime, timedelta

import pytest

from cidbridge.store import CallLog
from tests.support.node import NodeClient
from tests.support.sse import SseReader

TOKEN = "directory-test-token"
NOW = datetime.now().astimezone().replace(microsecond=0)

# (call_id, hours ago, number, network name, outcome)
CALLS = [
    ("old-1", 24 * 20, "01011112222", "KIM MINJI", "answered"),
    ("desk-1", 50, "01011112222", "KIM MINJI", "missed"),
    ("desk-2", 30, "0212345678", None, "missed"),
    ("desk-3", 20, "01011112222", "KIM MINJI", "missed"),
    ("desk-4", 5, None, None, "missed"),
    ("desk-5", 3, "07099998888", "박서연", "unknown"),
    ("desk-6", 1, "01033334444", "<img src=x onerror=alert(1)>[/]\x1b[2J", "answered"),
]


@pytest.fixture
def daemon(tmp_path, start_daemon):
    with CallLog(tmp_path / "calls.sqlite", synchronous="OFF") as store:
        for call_id, hours, number, name, outcome in CALLS:
            when = NOW - timedelta(hours=hours)
            e164 = "+82" + number[1:] if number else None
            common = {
                "v": 1,
                "call_id": call_id,
                "line": "desk",
                "number": number,
                "name": name,
                "e164": e164,
            }
            common["number_absence"] = None if number else "private"
            store.append({**common, "type": "call", "time": when.isoformat(), "network_name": name})
            ended = (when + timedelta(seconds=40)).isoformat()
            store.append({**common, "type": "end", "time": ended, "outcome": outcome})
    return start_daemon(
        [],
        server={"token": TOKEN},
        panel={"open_url": "https://emr.local/patient?phone={e164}&who={name}"},
        calls={"ringless_timeout": 5},
    )


def api(daemon, method, path, body=None, **kwargs):
    return daemon.request(method, path, body, token=TOKEN, **kwargs)


def test_every_route_needs_the_token(daemon):
    wrong: list[int] = []
    for method, path in [
        ("GET", "/api/panel-config"),
        ("GET", "/api/callers/01011112222"),
        ("GET", "/api/contacts"),
        ("GET", "/api/contacts.csv"),
        ("PUT", "/api/contacts/01011112222"),
        ("DELETE", "/api/contacts/01011112222"),
        ("POST", "/api/contacts/import"),
        ("GET", "/api/missed"),
        ("POST", "/api/missed/returned"),
        ("GET", "/api/blocks"),
        ("POST", "/api/blocks"),
        ("DELETE", "/api/blocks/1"),
    ]:
        status, answer = daemon.request(method, path, {}, token="wrong")
        # 401; after 10 wrong tokens from one address, 429 whatever the token (README, Security).
        assert status in (401, 429), (method, path, answer)
        wrong.append(status)
        status, _ = daemon.request(method, path, {})
        assert status == 401, (method, path)
    assert wrong == [401] * 10 + [429] * (len(wrong) - 10)


def test_caller_card_has_the_history_a_receptionist_reads(daemon):
    status, card = api(daemon, "GET", "/api/callers/010-1111-2222?call_id=desk-3")
    assert status == 200, card
    assert (card["key"], card["display"], card["e164"]) == ("+821011112222", "010-1111-2222", "+821011112222")
    assert card["name"] == card["network_name"] == "KIM MINJI" and card["contact"] is None
    history = card["history"]
    assert history["total"] == 3 and history["last_7_days"] == 2
    assert history["this_week"] <= 2
    assert history["previous"]["call_id"] == "desk-1"  # desk-3 is the call being shown
    assert history["last_missed"]["call_id"] == "desk-3"
    assert history["unreturned_missed"] == 2
    assert [c["call_id"] for c in history["recent"]] == ["desk-3", "desk-1", "old-1"]
    # The link into the site's own system, every field escaped.
    assert card["open_url"] == "https://emr.local/patient?phone=%2B821011112222&who=KIM%20MINJI"
    assert card["blocked"] is None
    # Any spelling of the number gives the same card.
    plus = urllib.parse.quote("+82 10 1111 2222", safe="")
    assert api(daemon, "GET", f"/api/callers/{plus}")[1]["key"] == "+821011112222"


def test_card_errors_are_answers_not_crashes(daemon):
    assert api(daemon, "GET", "/api/callers/not-a-number")[0] == 422
    assert api(daemon, "GET", "/api/callers/" + "1" * 60)[0] == 422
    assert api(daemon, "GET", "/api/callers/01011112222?call_id=" + "x" * 200)[0] == 400
    status, card = api(daemon, "GET", "/api/callers/01055556666")
    assert status == 200 and card["history"]["total"] == 0 and card["history"]["previous"] is None


def test_panel_config(daemon):
    status, config = api(daemon, "GET", "/api/panel-config")
    assert status == 200
    assert config == {
        "open_url": "https://emr.local/patient?phone={e164}&who={name}",
        "unknown_is_missed": False,
        "missed_days": 7,
        "region": "KR",
        "events": {"call": "cti-event", "directory": "cti-directory"},
    }


def test_editing_a_contact_is_saved_and_announced_to_every_panel(daemon):
    sse = SseReader(daemon.url.rstrip("/") + f"/api/stream?token={TOKEN}")
    socket = NodeClient(daemon.url, token=TOKEN, also=["cti-directory"])
    try:
        assert socket.wait_connected()["ev"] == "connect"
        hostile = "<script>alert(1)</script> [bold]Kim[/] \x1b]0;pwned\x07"
        status, saved = api(
            daemon, "PUT", "/api/contacts/010-1111-2222", {"name": hostile, "note": "VIP\nline 2"}
        )
        assert status == 200, saved
        contact = saved["contact"]
        assert (
            contact["name"] == "<script>alert(1)</script> [bold]Kim[/] ]0;pwned"
        )  # controls gone, text kept
        assert (contact["note"], contact["source"], contact["key"]) == (
            "VIP\nline 2",
            "panel",
            "+821011112222",
        )
        live = socket.wait_for(lambda m: m["ev"] == "other" and m["data"]["type"] == "contact")
        assert live["name"] == "cti-directory" and live["data"]["contact"] == contact
        _, streamed = wait_named(sse, "cti-directory", lambda m: m["type"] == "contact")
        assert streamed["contact"] == contact and streamed["v"] == 1
        # The card and the list show it; an empty name and note delete the contact.
        assert api(daemon, "GET", "/api/callers/01011112222")[1]["contact"]["note"] == "VIP\nline 2"
        assert api(daemon, "GET", "/api/contacts?q=kim")[1]["contacts"][0]["key"] == "+821011112222"
        status, gone = api(daemon, "PUT", "/api/contacts/01011112222", {"name": "", "note": None})
        assert status == 200 and gone["contact"] is None
        socket.wait_for(lambda m: m["ev"] == "other" and m["data"]["contact"] is None)
        assert api(daemon, "DELETE", "/api/contacts/01011112222")[0] == 404
    finally:
        socket.close()
        sse.close()


def wait_named(sse, name, predicate, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for kind, message in list(sse.messages):
            if kind == name and predicate(message):
                return kind, message
        time.sleep(0.02)
    raise TimeoutError(f"no {name} message; saw {sse.messages}")


def test_contact_edits_are_validated(daemon):
    path = "/api/contacts/01011112222"
    assert api(daemon, "PUT", path, {"name": "x" * 101})[0] == 422
    assert api(daemon, "PUT", path, {"name": 5})[0] == 422
    status, answer = api(daemon, "PUT", path, {"name": "Kim", "admin": True})
    assert status == 422 and "admin" in answer["problems"]
    assert api(daemon, "PUT", path, ["Kim"])[0] == 422
    assert api(daemon, "PUT", path, raw=b"{not json")[0] == 400
    assert api(daemon, "PUT", path, {"name": "Kim"}, content_type="text/plain")[0] == 415
    assert api(daemon, "PUT", path, raw=b'{"name": "' + b"x" * 20_000 + b'"}')[0] == 413
    assert api(daemon, "PUT", "/api/contacts/abc", {"name": "Kim"})[0] == 422


def test_contacts_import_and_export_over_http(daemon):
    body = "번호,이름,메모\n010-1234-5678,김민지,단골\n02-555-0000,=HYPERLINK(1),\nbad,row\n".encode("cp949")
    status, result = api(daemon, "POST", "/api/contacts/import", raw=body, content_type="text/csv")
    assert status == 200, result
    assert (result["added"], len(result["skipped"])) == (2, 1)
    vcard = (
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=EB=B0=95;=EC=84=9C=\r\n"
        b"=EC=97=B0;;;\r\nTEL;CELL:010-7777-8888\r\nEND:VCARD\r\n"
    )
    status, result = api(daemon, "POST", "/api/contacts/import", raw=vcard, content_type="text/vcard")
    assert status == 200 and result["added"] == 1, result
    assert api(daemon, "GET", "/api/callers/01077778888")[1]["contact"]["name"] == "박서연"
    assert api(daemon, "POST", "/api/contacts/import", raw=body, content_type="application/json")[0] == 415
    status, exported = api(daemon, "GET", "/api/contacts.csv")
    assert status == 200 and exported.startswith("\ufeffnumber,name,note".encode())
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    assert ["02-555-0000", "'=HYPERLINK(1)", ""] in rows  # a formula is defused
    assert ["010-1234-5678", "김민지", "단골"] in rows


def test_missed_calls_list_and_called_back_shared_across_panels(daemon):
    status, answer = api(daemon, "GET", "/api/missed")
    assert status == 200 and answer["unknown_is_missed"] is False
    entries = {e["call_id"]: e for e in answer["missed"]}
    # One entry per caller (the latest call), the withheld call on its own; the modem's
    # "unknown" call only when asked; answered calls never.
    assert list(entries) == ["desk-4", "desk-3", "desk-2"]
    assert entries["desk-3"]["count"] == 2 and entries["desk-4"]["number_absence"] == "private"
    with_unknown = api(daemon, "GET", "/api/missed?unknown=1")[1]["missed"]
    assert next(e["call_id"] for e in with_unknown) == "desk-5"
    sse = SseReader(daemon.url.rstrip("/") + f"/api/stream?token={TOKEN}")
    try:
        status, answer = api(daemon, "POST", "/api/missed/returned", {"call_id": "desk-3"})
        assert status == 200 and sorted(answer["returned"]) == ["desk-1", "desk-3"]
        _, message = wait_named(sse, "cti-directory", lambda m: m["type"] == "missed")
        assert message["how"] == "called_back" and sorted(message["returned"]) == ["desk-1", "desk-3"]
    finally:
        sse.close()
    assert [e["call_id"] for e in api(daemon, "GET", "/api/missed")[1]["missed"]] == ["desk-4", "desk-2"]
    assert api(daemon, "POST", "/api/missed/returned", {"call_id": "desk-3"})[1]["returned"] == []
    assert api(daemon, "POST", "/api/missed/returned", {"call_id": "nope"})[0] == 404
    assert api(daemon, "POST", "/api/missed/returned", {})[0] == 422
    assert api(daemon, "GET", "/api/missed?since=nonsense")[0] == 400


def test_a_later_answered_call_returns_the_missed_ones_by_itself(daemon):
    post = "/api/cti/incoming-call"
    base = {"number": "0212345678", "line": "pbx"}
    for event in ("ringing", "answered", "ended"):
        status, answer = api(daemon, "POST", post, {**base, "event": event})
        assert status == 200, answer
    missed = api(daemon, "GET", "/api/missed")[1]["missed"]
    assert "desk-2" not in [e["call_id"] for e in missed]
    status, page = api(daemon, "GET", "/api/calls?q=0212345678&limit=5")
    returned = {c["call_id"]: c for c in page["calls"]}["desk-2"]
    assert returned["returned_how"] == "answered" and returned["returned"]


def test_history_search_by_number_or_name_fragment_and_range(daemon):
    def ids(query):
        status, page = api(daemon, "GET", "/api/calls?" + query)
        assert status == 200, page
        return [c["call_id"] for c in page["calls"]]

    assert ids("q=1111") == ["desk-3", "desk-1", "old-1"]
    assert ids("q=010-1111") == ["desk-3", "desk-1", "old-1"]
    assert ids("q=minji") == ["desk-3", "desk-1", "old-1"]  # any case
    assert ids("q=" + urllib.parse.quote("서연")) == ["desk-5"]  # two Korean letters
    assert ids("name=KIM&since=3d") == ["desk-3", "desk-1"]
    assert ids("q=1111&since=60h&until=25h") == ["desk-1"]
    assert ids("q=%2B8210") == ["desk-6", "desk-3", "desk-1", "old-1"]
    assert ids("q=nobody") == [] and ids("q=99999999") == []
    # Paged with a cursor.
    _, page = api(daemon, "GET", "/api/calls?q=1111&limit=2")
    assert [c["call_id"] for c in page["calls"]] == ["desk-3", "desk-1"]
    assert ids(f"q=1111&limit=2&before={page['next_before']}") == ["old-1"]
    # A renamed contact is found by its new name too.
    api(daemon, "PUT", "/api/contacts/0212345678", {"name": "한빛의원"})
    assert ids("q=" + urllib.parse.quote("한빛")) == ["desk-2"]
    assert api(daemon, "GET", "/api/calls?q=" + "x" * 101)[0] == 400


def test_blocks_over_http(daemon):
    status, answer = api(
        daemon, "POST", "/api/blocks", {"kind": "number", "value": "010-3333-4444", "note": "spam"}
    )
    assert status == 201, answer
    rule = answer["block"]
    assert (rule["kind"], rule["value"], rule["display"], rule["note"]) == (
        "number",
        "+821033334444",
        "010-3333-4444",
        "spam",
    )
    # The same rule again is not a second one.
    again = api(daemon, "POST", "/api/blocks", {"value": "+82 10 3333 4444"})
    assert again[0] == 200 and again[1]["created"] is False and again[1]["block"]["id"] == rule["id"]
    assert api(daemon, "POST", "/api/blocks", {"kind": "prefix", "value": "070"})[0] == 201
    assert api(daemon, "POST", "/api/blocks", {"kind": "withheld", "value": "private"})[0] == 201
    for bad in (
        {"kind": "regex", "value": ".*"},
        {"kind": "prefix", "value": "07a"},
        {"kind": "withheld", "value": "everyone"},
        {"kind": "number", "value": "hello"},
        {"kind": "number"},
    ):
        status, answer = api(daemon, "POST", "/api/blocks", bad)
        assert status == 422 and answer["error"], bad
    assert [r["kind"] for r in api(daemon, "GET", "/api/blocks")[1]["blocks"]] == [
        "number",
        "prefix",
        "withheld",
    ]
    assert api(daemon, "GET", "/api/callers/01033334444")[1]["blocked"]["id"] == rule["id"]
    assert api(daemon, "GET", "/api/callers/07099998888")[1]["blocked"]["kind"] == "prefix"
    status, removed = api(daemon, "DELETE", f"/api/blocks/{rule['id']}")
    assert status == 200 and removed["block"]["id"] == rule["id"]
    assert api(daemon, "DELETE", f"/api/blocks/{rule['id']}")[0] == 404
    assert api(daemon, "DELETE", "/api/blocks/abc")[0] == 404
    assert api(daemon, "GET", "/api/callers/01033334444")[1]["blocked"] is None


def test_hostile_names_come_back_as_plain_json(daemon):
    status, page = api(daemon, "GET", "/api/calls?q=3333")
    assert status == 200
    assert (
        page["calls"][0]["name"] == "<img src=x onerror=alert(1)>[/]\x1b[2J"
    )  # data, for the panel to escape
    status, card = api(daemon, "GET", "/api/callers/01033334444")
    assert status == 200 and card["open_url"].endswith(
        "who=%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%5B%2F%5D%1B%5B2J"
    )
