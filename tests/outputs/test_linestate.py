"""Each line's state from the events, sans I/O (what the MQTT output publishes as retained state)."""

from __future__ import annotations

import itertools
from typing import Any

from cidbridge.core.linestate import IDLE, RINGING, TALKING, LineStates, caller_text

_ids = itertools.count(1)


def ev(kind: str, call_id: str | None, line: str = "front", **fields: Any) -> dict[str, Any]:
    return {"id": next(_ids), "type": kind, "call_id": call_id, "line": line, "time": f"t{kind}", **fields}


def follow(states: LineStates, *events: dict[str, Any]) -> list[str | None]:
    notices = []
    for event in events:
        change = states.apply(event)
        notices.append(change.notice if change else None)
    return notices


def test_an_answered_call_rings_then_talks_then_ends() -> None:
    states = LineStates()
    notices = follow(
        states,
        ev("ring", "c1", ring_count=1),
        ev("call", "c1", number="01012345678", display="010-1234-5678", name="KIM", ring_count=1),
    )
    assert notices == ["ring", "call"]
    snap = states.snapshot("front")
    assert (snap["state"], snap["caller"], snap["number"], snap["call_id"]) == (
        RINGING,
        "KIM",
        "01012345678",
        "c1",
    )
    assert follow(states, ev("update", "c1", number="01012345678", name="KIM", outcome="answered")) == [
        "answered"
    ]
    assert states.snapshot("front")["state"] == TALKING
    end = ev("end", "c1", number="01012345678", name="KIM", outcome="answered", duration_s=42.0)
    assert follow(states, end) == ["end"]
    snap = states.snapshot("front")
    assert (snap["state"], snap["outcome"], snap["duration_s"]) == (IDLE, "answered", 42.0)
    # The caller stays shown after the call ended: the line's last caller.
    assert (snap["call_id"], snap["caller"], snap["since"]) == ("c1", "KIM", "tend")


def test_a_missed_call_gives_missed_and_a_late_correction_too() -> None:
    states = LineStates()
    missed = ev("end", "c1", number="111", outcome="missed")
    assert follow(states, ev("call", "c1", number="111"), missed) == ["call", "missed"]
    # A box's end record turning an "unknown" end into missed, after the fact: missed once.
    unknown = ev("end", "c2", number="222", outcome="unknown")
    assert follow(states, ev("call", "c2", number="222"), unknown) == ["call", "end"]
    assert follow(states, ev("update", "c2", number="222", outcome="missed")) == ["missed"]
    assert follow(states, ev("update", "c2", number="222", outcome="missed", ring_count=4)) == ["update"]
    assert states.snapshot("front")["state"] == IDLE


def test_a_blocked_caller_gives_blocked() -> None:
    states = LineStates()
    blocked = ev("end", "c1", number="111", outcome="blocked", blocked=True)
    assert follow(states, ev("call", "c1", number="111", blocked=True), blocked) == ["call", "blocked"]
    assert states.snapshot("front")["blocked"] is True


def test_call_waiting_keeps_the_new_caller_and_ringing_wins_over_talking() -> None:
    states = LineStates()
    follow(
        states,
        ev("call", "c1", number="111"),
        ev("update", "c1", number="111", outcome="answered"),
        ev("call", "c2", number="222", waiting=True),
    )
    snap = states.snapshot("front")
    assert (snap["state"], snap["number"], snap["waiting"], snap["calls"]) == (RINGING, "222", True, 2)
    # The first call hanging up does not bring its caller back.
    follow(states, ev("end", "c1", number="111", outcome="answered"))
    snap = states.snapshot("front")
    assert (snap["state"], snap["number"], snap["calls"]) == (RINGING, "222", 1)


def test_lines_are_independent_and_line_events_set_the_connection() -> None:
    states = LineStates()
    states.add_line("back")
    change = states.apply(ev("line", None, line="back", state="down", reason="unplugged"))
    assert change is not None and change.connection_changed and change.notice is None
    follow(states, ev("call", "c1", number="111"))
    assert states.snapshot("back")["state"] == IDLE
    assert states.snapshot("back")["connection"] == "down"
    assert states.snapshot("front")["state"] == RINGING
    assert states.connection("front") is None
    assert states.lines() == ["back", "front"]


def test_bounded_lines_and_calls() -> None:
    states = LineStates(max_lines=2, max_calls=3)
    for line in ("a", "b", "c"):
        states.apply(ev("call", f"{line}1", line=line, number="1"))
    assert states.lines() == ["a", "b"] and states.ignored == 1
    # Calls whose end was lost: the oldest are forgotten, the line is not pinned forever.
    for i in range(10):
        states.apply(ev("ring", f"x{i}", line="a"))
    assert states.snapshot("a")["calls"] == 3


def test_snapshot_changes_only_when_something_shown_changes() -> None:
    states = LineStates()
    first = states.apply(ev("call", "c1", number="111"))
    assert first is not None and first.snapshot_changed and first.new_line
    again = states.apply(ev("update", "c1", number="111"))
    assert again is not None and not again.snapshot_changed and not again.new_line


def test_caller_text() -> None:
    assert caller_text({"name": "Kim Minji", "display": "010-1234-5678"}) == "Kim Minji"
    assert caller_text({"display": "010-1234-5678", "number": "01012345678"}) == "010-1234-5678"
    assert caller_text({"number_absence": "private"}) == "Private number"
    assert caller_text({"number_absence": "unavailable"}) == "No caller ID"
    assert caller_text({}) == ""
