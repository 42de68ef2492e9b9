"""The NCID protocol core: server lines from events, call log, client lines (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from cidbridge.core import ncid

TIME = "2026-11-26T09:30:05.123+09:00"


def event(kind: str, **fields: Any) -> dict[str, Any]:
    base = {"type": kind, "call_id": "c1", "line": "front-desk", "time": TIME, "ring_count": 1}
    return {**base, **fields}


def fields_of(line: str) -> tuple[str, dict[str, str]]:
    """A server line as NCID clients read it: the label, then *LABEL*value* pairs."""
    label, rest = line.split(": ", 1)
    parts = rest.split("*")
    assert parts[0] == "" and parts[-1] == "", line
    pairs = parts[1:-1]
    assert len(pairs) % 2 == 0, line
    return label, dict(zip(pairs[::2], pairs[1::2], strict=True))


def test_a_call_is_one_cid_line_in_the_reference_layout() -> None:
    line = ncid.NcidFeed().lines(event("call", number="01012345678", name="KIM MINJI"))
    assert line == [
        "CID: *DATE*11262026*TIME*0930*LINE*front-desk*NMBR*01012345678*MESG*NONE*NAME*KIM MINJI*"
    ]


def test_numbers_lose_their_separators() -> None:
    (line,) = ncid.NcidFeed().lines(event("call", number="010-1234 5678", name="X"))
    assert fields_of(line)[1]["NMBR"] == "01012345678"


@pytest.mark.parametrize(
    ("fields", "nmbr", "name"),
    [
        ({"number_absence": "private"}, "PRIVATE", "PRIVATE"),
        ({"number_absence": "unavailable", "name_absence": "unavailable"}, "OUT-OF-AREA", "OUT-OF-AREA"),
        ({"number_absence": "private", "name": "WITHHELD"}, "PRIVATE", "WITHHELD"),
        ({"number": "0212345678"}, "0212345678", "NO NAME"),
        ({"name": "ONLY A NAME"}, "NO-NUMBER", "ONLY A NAME"),
        ({"number": "   ", "name": "  "}, "NO-NUMBER", "NO NAME"),
        ({"number_absence": "payphone"}, "PAYPHONE", "PAYPHONE"),
    ],
)
def test_absences_are_named_never_empty(fields: dict[str, Any], nmbr: str, name: str) -> None:
    (line,) = ncid.NcidFeed().lines(event("call", **fields))
    _, values = fields_of(line)
    assert (values["NMBR"], values["NAME"]) == (nmbr, name)
    assert all(values.values())


@pytest.mark.parametrize(
    "hostile",
    [
        "EVIL*NMBR*0000*NAME*FAKE",
        "A\r\nCID: *DATE*01012026*TIME*0000*NMBR*666*NAME*INJECTED*",
        "\x1b[2J\x1b[31mRED",
        "bidi \u202etxt\u202c and\u2028line\u2029sep\x85nel",
        "*" * 500,
        "\x00\x07\x08\t\x0b\x0c",
    ],
)
def test_hostile_names_stay_inside_their_field(hostile: str) -> None:
    feed = ncid.NcidFeed()
    lines = feed.lines(event("call", number="123*456\r\n", name=hostile, line="desk*\n1"))
    assert len(lines) == 1
    line = lines[0]
    assert not any(ch in line for ch in "\r\n\x1b\x00\u202e\u2028\u2029\x85")
    label, values = fields_of(line)
    assert label == "CID"
    assert list(values) == ["DATE", "TIME", "LINE", "NMBR", "MESG", "NAME"]
    assert len(values["NAME"]) <= ncid.MAX_VALUE and values["NAME"]
    assert "*" not in values["NAME"] and "*" not in values["LINE"]
    assert values["NMBR"] == "123\u2217456"
    # The wire form has exactly one line end.
    assert ncid.encode(lines).count(b"\n") == 1


def test_clean_turns_stars_into_a_lookalike_and_controls_into_spaces() -> None:
    assert ncid.clean("A*B") == "A\u2217B"
    assert ncid.clean("A\r\nB\tC") == "A B C"
    assert ncid.clean("x" * 100) == "x" * ncid.MAX_VALUE


def test_rings_and_ring_stopped_codes() -> None:
    feed = ncid.NcidFeed(hangs_up=lambda line: line == "modem")
    assert feed.lines(event("ring", ring_count=2)) == ["CIDINFO: *LINE*front-desk*RING*2*TIME*09:30:05*"]
    codes = {
        "unknown": event("end", outcome="unknown"),
        "missed": event("end", outcome="missed"),
        "answered": event("end", outcome="answered", duration_s=42.0),
        "blocked box": event("end", outcome="blocked", blocked=True),
        "blocked modem": event("end", outcome="blocked", blocked=True, line="modem"),
    }
    got = {name: fields_of(feed.lines(e)[0])[1]["RING"] for name, e in codes.items()}
    assert got == {
        "unknown": "0",
        "missed": "-1",
        "answered": "-2",
        "blocked box": "-1",
        "blocked modem": "-4",
    }


def test_call_waiting_and_blocked_calls_have_their_labels() -> None:
    feed = ncid.NcidFeed(hangs_up=lambda line: line == "modem")
    labels = [
        fields_of(feed.lines(e)[0])[0]
        for e in (
            event("call", call_id="a", number="1", waiting=True),
            event("call", call_id="b", number="2", blocked=True),
            event("call", call_id="c", number="3", blocked=True, line="modem"),
            event("call", call_id="d", number="4", blocked=True, line="modem", hung_up=False),
        )
    ]
    assert labels == ["WID", "BLK", "HUP", "BLK"]


def test_an_update_is_announced_only_when_what_clients_show_changed() -> None:
    feed = ncid.NcidFeed()
    assert feed.lines(event("ring")) and feed.lines(event("call", number="111"))
    assert feed.lines(event("update", number="111", outcome="answered")) == []
    (again,) = feed.lines(event("update", number="111", name="KIM"))
    assert fields_of(again)[1]["NAME"] == "KIM"
    (blocked,) = feed.lines(event("update", number="111", name="KIM", blocked=True))
    assert blocked.startswith("BLK: ")
    assert feed.lines(event("end", number="111", outcome="answered"))
    # A box's end record after the end corrects the call: nothing to show again.
    assert feed.lines(event("update", number="111", name="KIM", blocked=True, outcome="missed")) == []
    # An update for a call never seen, with no caller, says nothing.
    assert feed.lines(event("update", call_id="zz")) == []


def test_line_events_become_messages() -> None:
    feed = ncid.NcidFeed()
    down = feed.lines({"type": "line", "line": "desk", "state": "down", "reason": "unplugged\r\nMSG: x"})
    assert down == ["MSG: line desk is down: unplugged MSG: x"]
    assert feed.lines({"type": "line", "line": "desk", "state": "up"}) == ["MSG: line desk is up"]


def test_startup_lines() -> None:
    assert ncid.greeting("1.2") == ["200 Server: cidbridge (NCID) 1.2", "210 API: 1.0 Feature Set 1 4"]
    assert ncid.startup_end("kr") == ["OPT: country: KR", "300 End of connection startup"]


def test_call_log_lists_calls_with_a_caller() -> None:
    feed = ncid.NcidFeed(hangs_up=lambda line: line == "modem")
    calls = [
        {"line": "desk", "started": "2026-11-25T23:59:00+09:00", "number": "0101", "name": "A"},
        {"line": "desk", "started": "2026-11-26T08:00:00+09:00", "number": None, "number_absence": None},
        {"line": "desk", "started": "2026-11-26T09:00:00+09:00", "number": "0102", "waiting": True},
        {"line": "modem", "started": "2026-11-26T10:00:00+09:00", "number": "0103", "outcome": "blocked"},
        {"line": "desk", "started": "2026-11-26T11:00:00+09:00", "number_absence": "private"},
    ]
    log = ncid.call_log(calls, feed, requested=True, enabled=True)
    assert log[0] == "254 Start of call log" and log[-1] == "250 End of call log"
    assert [fields_of(line)[0] for line in log[1:-1]] == ["CIDLOG", "WIDLOG", "HUPLOG", "CIDLOG"]
    assert fields_of(log[1])[1]["DATE"] == "11252026" and fields_of(log[1])[1]["TIME"] == "2359"
    assert fields_of(log[4])[1]["NMBR"] == "PRIVATE"


def test_call_log_answers_when_there_is_none() -> None:
    feed = ncid.NcidFeed()
    assert ncid.call_log([], feed, requested=True, enabled=True) == ["252 Call log empty"]
    rings_only = [{"line": "d", "started": TIME, "number": None, "number_absence": None}]
    assert ncid.call_log(rings_only, feed, requested=True, enabled=True) == ["252 Call log empty"]
    assert ncid.call_log([], feed, requested=False, enabled=True) == ["251 Call log not sent"]
    assert ncid.call_log([], feed, requested=True, enabled=False) == ["251 Call log not sent"]


# -- the client's side -------------------------------------------------------------------


def test_hello_lines_and_no_log() -> None:
    session = ncid.ClientSession()
    received = session.receive(b"HELLO: IDENT: client ncid (NCID) 1.6\r\n")
    assert session.ident == "client ncid (NCID) 1.6"
    assert not session.hello_done and received.replies == ()
    session.receive(b"HELLO: CMD: no_log\r\n")
    assert session.hello_done and not session.wants_log


def test_lines_may_end_with_cr_lf_or_crlf_and_arrive_in_pieces() -> None:
    session = ncid.ClientSession()
    replies: list[str] = []
    for piece in (b"REQ", b": Y", b"O\r", b"\nREQ: yo\rREQ: YO\n", b"\n\n\r\n"):
        replies += session.receive(piece).replies
    assert replies == ["ACK: REQ YO"] * 3


def test_keep_alive_lines_are_ignored_and_do_not_end_the_hello() -> None:
    session = ncid.ClientSession()
    received = session.receive(b"\n\r\n\n")
    assert received == ncid.Received() and not session.hello_done


def test_goodbye_stops_reading() -> None:
    session = ncid.ClientSession()
    received = session.receive(b"GOODBYE\nREQ: YO\n")
    assert session.goodbye and received.replies == ()


def test_requests_and_gateway_lines_are_ignored() -> None:
    session = ncid.ClientSession()
    received = session.receive(
        b"REQ: RELOAD\nCALL: ###DATE01010000...NMBR666...NAME FAKE+++\nHELLO: CMD: x\n"
    )
    assert received.replies == ()
    assert len(received.ignored) == 3
    assert session.hello_done and session.wants_log


def test_an_overlong_line_is_refused_even_without_its_end() -> None:
    session = ncid.ClientSession()
    with pytest.raises(ncid.LineTooLong):
        session.receive(b"x" * (ncid.MAX_CLIENT_LINE + 1))
    session = ncid.ClientSession()
    session.receive(b"y" * ncid.MAX_CLIENT_LINE)  # at the limit: still waiting for its end
    with pytest.raises(ncid.LineTooLong):
        session.receive(b"z\n")


def test_send_log_asks_for_the_log_again() -> None:
    session = ncid.ClientSession()
    session.receive(b"HELLO: CMD: no_log\nHELLO: CMD: send_log\n")
    assert session.wants_log
