"""Blocking: the rules (sans-I/O), the hub marking calls, and a real daemon hanging up on a
blocked caller on a simulated modem before the second ring."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from cidbridge.core.blocking import BadRule, BlockList, BlockRule, CallerView, normalise
from cidbridge.core.tracker import CallEvent
from cidbridge.hub import Hub
from cidbridge.sim.modem import Caller
from cidbridge.store import CallLog
from tests.calls.helpers import log_events, wait_until

TOKEN = "block-test-token"

# -- the rules -----------------------------------------------------------------------------

RULES = BlockList(
    [
        BlockRule(1, "number", "+821012345678"),
        BlockRule(2, "prefix", "070"),
        BlockRule(3, "prefix", "07012"),
        BlockRule(4, "prefix", "+1"),
        BlockRule(5, "withheld", "private"),
    ]
)


@pytest.mark.parametrize(
    ("caller", "rule"),
    [
        (CallerView("+821012345678", ("01012345678", "+821012345678")), 1),
        (CallerView("+821012345678", ("01012345678",), known=True), 1),  # a number rule beats the phonebook
        (CallerView("+827012345678", ("07012345678", "+827012345678")), 3),  # the longest prefix
        (CallerView("+827099995555", ("07099995555", "+827099995555")), 2),
        (CallerView("+827099995555", ("07099995555",), known=True), None),  # a contact is never a prefix's
        (CallerView("+12125551234", ("12125551234", "+12125551234")), 4),
        (CallerView("+821099998888", ("01099998888", "+821099998888")), None),
        (CallerView(None, (), "private"), 5),
        (CallerView(None, (), "unavailable"), None),
        (CallerView(None, (), None), None),
    ],
)
def test_block_list_matching(caller, rule):
    found = RULES.match(caller)
    assert (found.id if found else None) == rule


def test_rules_are_normalised_or_refused():
    assert normalise("prefix", " 070-1 ") == "0701"
    assert normalise("prefix", "+82 70") == "+8270"
    assert normalise("withheld", "Private") == "private"
    for kind, value in [
        ("prefix", "07a"),
        ("prefix", ""),
        ("withheld", "all"),
        ("regex", "x"),
        ("number", " "),
    ]:
        with pytest.raises(BadRule):
            normalise(kind, value)


def test_hub_marks_every_event_of_a_blocked_call_and_its_outcome(tmp_path):
    async def run():
        with CallLog(tmp_path / "calls.sqlite") as store:
            hub = Hub(store, region="KR")
            hub.directory.add_block("number", "010-1234-5678")
            events = [
                await hub.publish(CallEvent("ring", "d-1", "desk", ring_count=1)),
                await hub.publish(CallEvent("call", "d-1", "desk", number="01012345678", ring_count=1)),
                await hub.publish(CallEvent("end", "d-1", "desk", number="01012345678", outcome="unknown")),
                await hub.publish(CallEvent("call", "d-2", "desk", number="01099998888")),
                await hub.publish(CallEvent("end", "d-2", "desk", number="01099998888", outcome="missed")),
            ]
            # Blocking takes effect for the next call, not one already decided.
            hub.directory.add_block("number", "01099998888")
            events.append(await hub.publish(CallEvent("call", "d-3", "desk", number="01099998888")))
            return events, {row["call_id"]: row for row in store.calls()}

    events, rows = asyncio.run(run())
    ring, call, end, other, other_end, later = events
    assert "blocked" not in ring  # not decided before the caller is known
    assert call["blocked"] is True and end["blocked"] is True and end["outcome"] == "blocked"
    assert "blocked" not in other and other_end["outcome"] == "missed"
    assert later["blocked"] is True
    assert rows["d-1"]["blocked"] is True and rows["d-1"]["outcome"] == "blocked"
    assert rows["d-2"]["blocked"] is False and rows["d-3"]["blocked"] is True


# -- a real daemon, a simulated modem on a pty ------------------------------------------------


def modem_line(device, **extra):
    return {"name": "desk", "port": device.path, "device": "modem", "hangup_delay": 0.2, **extra}


def test_a_blocked_caller_is_hung_up_on_before_the_second_ring(modem, start_daemon):
    model, device = modem
    daemon = start_daemon([modem_line(device)], server={"token": TOKEN}, calls={"ring_gap": 4})
    assert device.wait_for_input(b"AT+VCID=1")
    wait_until(lambda: model.cid_enabled, what="caller ID enabled")
    # Blocked from a caller card, as the panel does.
    status, answer = daemon.request("POST", "/api/blocks", {"value": "010-4444-5555"}, token=TOKEN)
    assert status == 201, answer

    start = len(model.timeline)
    sent = model.play_call(device, Caller("01044445555", "SPAM CO"), rings=3, ring_every=3.0)
    timeline = [what for _, what in model.timeline[start:]]
    assert sent == 1, timeline
    # The hang-up dialogue came after the caller ID and before the second ring was due.
    assert timeline.index("caller id") < timeline.index("command ATH1") < timeline.index("command ATH0")
    assert "ring 2 not sent: off hook" in timeline and "ring 2" not in timeline
    assert timeline.index("command ATH1") < timeline.index("ring 2 not sent: off hook")

    end = wait_until(
        lambda: next((e for e in log_events_t(daemon) if e["type"] == "end"), None), what="the call's end"
    )
    assert end["blocked"] is True and end["outcome"] == "blocked" and end["number"] == "01044445555"
    call = next(e for e in log_events_t(daemon) if e["type"] == "call")
    assert call["blocked"] is True
    status, page = daemon.request("GET", "/api/calls", token=TOKEN)
    assert page["calls"][0]["outcome"] == "blocked" and page["calls"][0]["blocked"] is True

    # Another caller rings on: no hang-up, and the outcome a modem can give ("unknown").
    start = len(model.timeline)
    assert model.play_call(device, Caller("01012121212", "FRIEND"), rings=2, ring_every=1.0) == 2
    assert not any(what.startswith("command ATH") for _, what in model.timeline[start:])


def log_events_t(daemon):
    status, events = daemon.request("GET", "/api/events?after=0&limit=500", token=TOKEN)
    assert status == 200
    return events


def test_block_added_from_the_cli_applies_to_the_running_daemon(modem, start_daemon, tmp_path):
    model, device = modem
    daemon = start_daemon([modem_line(device, hangup=["ATA", "ATH0"])], calls={"ring_gap": 4})
    wait_until(lambda: model.cid_enabled, what="caller ID enabled")
    db = str(tmp_path / "calls.sqlite")
    added = subprocess.run(
        [sys.executable, "-m", "cidbridge", "block", "add", "--withheld", "private", "--db", db],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert added.returncode == 0, added.stderr
    start = len(model.timeline)
    sent = model.play_call(
        device, Caller(None, number_absence="private", name_absence="private"), ring_every=3.0
    )
    timeline = [what for _, what in model.timeline[start:]]
    assert sent == 1 and "command ATA" in timeline and "command ATH0" in timeline, timeline
    end = wait_until(lambda: next((e for e in log_events(daemon) if e["type"] == "end"), None), what="end")
    assert end["outcome"] == "blocked" and end["number_absence"] == "private"


def test_a_box_line_only_marks_blocked_calls(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN}, calls={"ringless_timeout": 5})
    daemon.request("POST", "/api/blocks", {"kind": "prefix", "value": "070"}, token=TOKEN)
    status, answer = daemon.request(
        "POST", "/api/cti/incoming-call", {"number": "07011112222", "line": "pbx"}, token=TOKEN
    )
    assert status == 200, answer
    end = wait_until(
        lambda: next((e for e in log_events_t(daemon) if e["type"] == "end"), None), timeout=20, what="end"
    )
    assert end["blocked"] is True and end["outcome"] == "blocked"
    # Blocked calls are not missed calls.
    assert daemon.request("GET", "/api/missed?unknown=1", token=TOKEN)[1]["missed"] == []


def test_a_box_cannot_be_told_to_hang_up(tmp_path):
    from cidbridge.config import ConfigError, parse

    with pytest.raises(ConfigError, match="cannot hang up"):
        parse('[[lines]]\nname = "b"\nport = "/dev/null"\ndevice = "box"\nblock_action = "hangup"\n')
    with pytest.raises(ConfigError, match="hangup_delay"):
        parse('[[lines]]\nname = "m"\nport = "/dev/null"\nhangup_delay = 60\n')
    config = parse('[[lines]]\nname = "b"\nport = "/dev/null"\ndevice = "box"\n')
    assert config.lines[0].block_action == "mark"
