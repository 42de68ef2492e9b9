"""The call tracker with a fake clock: no sleeping, every ordering."""

from __future__ import annotations

from cidbridge.core.frames import CidFrame, HookFrame, RingFrame
from cidbridge.core.tracker import CallTracker

RING = RingFrame("modem-text")


def cid(number="5551234", name=None):
    return CidFrame("modem-text", number, None, name)


def kinds(events):
    return [e.type for e in events]


def test_us_order_ring_cid_ring_then_end():
    t = CallTracker("desk", ring_gap=8.0)
    assert kinds(t.receive(RING, 0.0)) == ["ring"]
    events = t.receive(cid(name="BOB"), 2.0)
    assert kinds(events) == ["call"] and events[0].number == "5551234"
    assert kinds(t.receive(RING, 6.0)) == ["ring"]
    assert t.tick(13.9) == []
    (end,) = t.tick(14.0)
    assert end.type == "end" and end.outcome == "unknown" and end.call_id == events[0].call_id


def test_uk_order_cid_before_first_ring():
    t = CallTracker("desk")
    (call,) = t.receive(cid(), 0.0)
    assert call.type == "call" and call.ring_count == 0
    (ring,) = t.receive(RING, 1.0)
    assert ring.call_id == call.call_id and ring.ring_count == 1


def test_no_caller_id_by_second_ring_still_appears():
    t = CallTracker("desk")
    t.receive(RING, 0.0)
    events = t.receive(RING, 6.0)
    assert kinds(events) == ["ring", "call"]
    assert events[1].number is None and events[1].number_absence == "unavailable"


def test_same_caller_id_twice_is_one_call():
    t = CallTracker("desk")
    first = t.receive(cid(), 0.0)
    assert t.receive(cid(), 0.5) == []
    (update,) = t.receive(cid(name="LATE NAME"), 1.0)
    assert update.type == "update" and update.call_id == first[0].call_id and update.name == "LATE NAME"


def test_hook_events_give_answered_and_duration():
    t = CallTracker("desk")
    t.receive(cid(), 0.0)
    (answered,) = t.receive(HookFrame("kr-adapter", "off"), 3.0)
    assert answered.outcome == "answered"
    assert t.deadline is None  # an answered call does not end on ring silence
    (end,) = t.receive(HookFrame("kr-adapter", "on"), 63.0)
    assert end.type == "end" and end.outcome == "answered" and end.duration_s == 60.0


def test_missed_when_the_box_sees_the_handset_but_nobody_answers():
    t = CallTracker("desk", ring_gap=8.0)
    t.receive(HookFrame("kr-adapter", "on"), 0.0)  # the box reports hook state
    t.receive(cid(), 1.0)
    (end,) = t.tick(9.0)
    assert end.outcome == "missed"
