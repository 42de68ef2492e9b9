"""The call tracker with a fake clock: no sleeping, every ordering."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from cidbridge.call_ids import restart_safe
from cidbridge.core.frames import CidFrame, HookFrame, InvalidFrame, MwiFrame, RingFrame
from cidbridge.core.tracker import CallTracker

RING = RingFrame("modem-text")
OFF = HookFrame("kr-adapter", "off")
ON = HookFrame("kr-adapter", "on")
FLASH = HookFrame("callerid-com", "flash")


def cid(number="5551234", name=None, absence=None, **extra):
    return CidFrame("modem-text", number, absence, name, extra=tuple(extra.items()))


def kinds(events):
    return [e.type for e in events]


def feed(tracker, script):
    """Run ``[(time, frame), ...]`` and return every event, ticking at each step."""
    events = []
    for now, frame in script:
        events += tracker.receive(frame, now) if frame is not None else tracker.tick(now)
    return events


# -- orderings of caller ID and rings ------------------------------------------------


def test_us_order_ring_cid_ring_then_end():
    t = CallTracker("desk", ring_gap=8.0)
    assert kinds(t.receive(RING, 0.0)) == ["ring"]
    events = t.receive(cid(name="BOB"), 2.0)
    assert kinds(events) == ["call"] and events[0].number == "5551234"
    assert kinds(t.receive(RING, 6.0)) == ["ring"]
    assert t.deadline == 14.0
    assert t.tick(13.9) == []
    (end,) = t.tick(14.0)
    assert end.type == "end" and end.outcome == "unknown" and end.call_id == events[0].call_id
    assert end.ring_count == 2 and end.name == "BOB"
    assert t.tick(100.0) == [] and not t.active


def test_uk_order_cid_before_first_ring():
    t = CallTracker("desk")
    (call,) = t.receive(cid(), 0.0)
    assert call.type == "call" and call.ring_count == 0
    (ring,) = t.receive(RING, 1.0)
    assert ring.call_id == call.call_id and ring.ring_count == 1


def test_cid_after_the_no_caller_id_announcement_fills_the_same_call():
    t = CallTracker("desk")
    events = feed(t, [(0.0, RING), (6.0, RING), (7.0, cid("01012345678", "KIM"))])
    assert kinds(events) == ["ring", "ring", "call", "update"]
    assert events[2].number is None and events[2].number_absence == "unavailable"
    assert events[3].number == "01012345678" and events[3].number_absence is None
    assert len({e.call_id for e in events}) == 1


def test_no_caller_id_by_second_ring_still_appears():
    t = CallTracker("desk")
    t.receive(RING, 0.0)
    events = t.receive(RING, 6.0)
    assert kinds(events) == ["ring", "call"]
    assert events[1].number is None and events[1].number_absence == "unavailable"
    (end,) = t.tick(20.0)
    assert end.number_absence == "unavailable" and end.ring_count == 2


def test_one_ring_then_silence_is_a_call_that_ended_without_caller_id():
    t = CallTracker("desk")
    events = feed(t, [(0.0, RING), (8.0, None)])
    assert kinds(events) == ["ring", "end"]
    assert events[0].call_id == events[1].call_id


def test_same_caller_id_twice_is_one_call():
    t = CallTracker("desk")
    first = t.receive(cid(), 0.0)
    assert t.receive(cid(), 0.5) == []
    (update,) = t.receive(cid(name="LATE NAME"), 1.0)
    assert update.type == "update" and update.call_id == first[0].call_id and update.name == "LATE NAME"


def test_same_number_written_differently_is_the_same_caller():
    t = CallTracker("desk")
    (call,) = t.receive(cid("010-1234-5678"), 0.0)
    assert t.receive(cid("01012345678"), 0.5) == []
    (ring,) = t.receive(RING, 1.0)
    assert ring.call_id == call.call_id and ring.number == "010-1234-5678"


def test_a_later_report_never_erases_what_was_known():
    t = CallTracker("desk")
    t.receive(cid("5551234", "ALICE"), 0.0)
    assert t.receive(cid("5551234", None), 1.0) == []
    (end,) = t.tick(100.0)
    assert end.name == "ALICE"


def test_second_caller_while_the_first_is_still_ringing_is_a_second_call():
    t = CallTracker("desk", ring_gap=8.0)
    events = feed(t, [(0.0, RING), (2.0, cid("5551111")), (6.0, RING), (10.0, cid("5552222")), (11.0, RING)])
    assert kinds(events) == ["ring", "call", "ring", "end", "call", "ring"]
    first, second = events[1].call_id, events[4].call_id
    assert first != second
    assert events[3].call_id == first and events[3].number == "5551111"
    assert events[4].number == "5552222" and events[5].call_id == second and events[5].ring_count == 1


def test_private_then_a_number_is_two_callers():
    t = CallTracker("desk")
    events = feed(t, [(0.0, cid(None, absence="private")), (3.0, cid("5553333"))])
    assert kinds(events) == ["call", "end", "call"]
    assert events[0].call_id != events[2].call_id


def test_mwi_and_invalid_frames_never_make_a_call():
    bad_fsk = InvalidFrame("xdmf", "checksum", bytes.fromhex("800f0108313132363039333002073535"))
    bad_dtmf = InvalidFrame("dtmf", "no end marker", b"A5551234")
    t = CallTracker("desk")
    for frame in (MwiFrame("xdmf", True, 2), bad_fsk, bad_dtmf, MwiFrame("xdmf", False)):
        assert t.receive(frame, 0.0) == []
        assert not t.active and t.deadline is None
    # During a ringing call: no new call, no caller, no extra ring.
    (ring,) = t.receive(RING, 1.0)
    for frame in (bad_fsk, MwiFrame("xdmf", True, 1), bad_dtmf):
        assert t.receive(frame, 2.0) == []
    (call,) = t.receive(cid("5550000"), 3.0)
    assert (call.type, call.call_id, call.number, call.ring_count) == ("call", ring.call_id, "5550000", 1)
    (end,) = t.tick(3.0 + t.ring_gap)
    assert end.type == "end" and end.call_id == ring.call_id


# -- hook state: answered, missed, durations -----------------------------------------


def test_hook_events_give_answered_and_duration():
    t = CallTracker("desk")
    t.receive(cid(), 0.0)
    (answered,) = t.receive(OFF, 3.0)
    assert answered.type == "update" and answered.outcome == "answered"
    assert t.deadline == 3.0 + t.max_call  # an answered call does not end on ring silence
    (end,) = t.receive(ON, 63.0)
    assert end.type == "end" and end.outcome == "answered" and end.duration_s == 60.0


def test_missed_when_the_box_sees_the_handset_but_nobody_answers():
    t = CallTracker("desk", ring_gap=8.0)
    t.receive(ON, 0.0)  # the box reports hook state
    t.receive(RING, 0.5)
    t.receive(cid(), 1.0)
    (end,) = t.tick(9.0)
    assert end.outcome == "missed"


def test_box_without_rings_waits_for_a_late_answer():
    # Korean adapters send the caller ID and the hook, never a ring.
    t = CallTracker("desk", ring_gap=8.0, ringless_timeout=45.0)
    (call,) = t.receive(cid("01012345678"), 0.0)
    assert t.tick(20.0) == []  # still ringing: 8 s of silence proves nothing here
    (answered,) = t.receive(OFF, 20.0)
    (end,) = t.receive(ON, 50.0)
    assert answered.call_id == end.call_id == call.call_id
    assert end.outcome == "answered" and end.duration_s == 30.0


def test_box_without_rings_gives_missed_after_the_ringless_timeout():
    t = CallTracker("desk", ringless_timeout=45.0)
    t.receive(ON, 0.0)
    t.receive(cid("01012345678"), 1.0)
    assert t.deadline == 46.0
    (end,) = t.tick(50.0)
    assert end.outcome == "missed" and end.duration_s is None


def test_off_hook_without_a_call_is_an_outgoing_call_not_a_caller():
    t = CallTracker("desk")
    assert t.receive(OFF, 0.0) == []
    assert t.receive(ON, 30.0) == []
    assert not t.active


def test_ring_while_off_hook_means_the_on_hook_was_lost():
    t = CallTracker("desk")
    first = feed(t, [(0.0, RING), (1.0, cid("5551111")), (2.0, OFF)])
    events = feed(t, [(100.0, RING)])
    assert kinds(events) == ["end", "ring"]
    assert events[0].call_id == first[0].call_id and events[0].outcome == "answered"
    assert events[0].duration_s is None  # unknown: the hang-up was not seen
    assert events[1].call_id != first[0].call_id


def test_answered_call_with_a_lost_on_hook_ends_after_max_call():
    t = CallTracker("desk", max_call=3600.0)
    feed(t, [(0.0, cid()), (1.0, OFF)])
    assert t.deadline == 3601.0
    (end,) = t.tick(3601.0)
    assert end.outcome == "answered" and end.duration_s is None
    assert t.receive(cid("5559999"), 3700.0)[0].waiting is False  # the line is free again


# -- call waiting ----------------------------------------------------------------------


def test_call_waiting_caller_rings_again_after_the_first_call_hangs_up():
    t = CallTracker("desk", ring_gap=8.0)
    events = feed(
        t,
        [(0.0, RING), (1.0, cid("5551111")), (2.0, OFF), (30.0, cid("5552222")), (40.0, ON), (41.0, RING)],
    )
    assert kinds(events) == ["ring", "call", "update", "call", "end", "ring"]
    first, waiting = events[1], events[3]
    assert waiting.waiting and waiting.call_id != first.call_id and waiting.number == "5552222"
    assert events[4].call_id == first.call_id and events[4].duration_s == 38.0
    assert events[5].call_id == waiting.call_id and events[5].ring_count == 1
    (end,) = t.tick(49.0)
    assert end.call_id == waiting.call_id and end.outcome == "missed"


def test_call_waiting_answered_with_a_hook_flash():
    t = CallTracker("desk")
    events = feed(t, [(0.0, cid("5551111")), (1.0, OFF), (10.0, cid("5552222")), (12.0, FLASH), (70.0, ON)])
    assert kinds(events) == ["call", "update", "call", "update", "end", "end"]
    assert events[3].call_id == events[2].call_id and events[3].outcome == "answered"
    ends = {e.call_id: e for e in events[4:]}
    assert ends[events[0].call_id].duration_s == 69.0
    assert ends[events[2].call_id].duration_s == 58.0


def test_repeated_caller_id_during_the_conversation_is_not_a_waiting_call():
    t = CallTracker("desk")
    feed(t, [(0.0, cid("5551111")), (1.0, OFF)])
    assert t.receive(cid("5551111"), 5.0) == []


# -- Whozz Calling start/end records -------------------------------------------------


def test_whozz_calling_detail_sequence_is_one_call():
    # R, start record, F (off hook), N (on hook), end record: one call, answered.
    t = CallTracker("01")
    events = feed(
        t,
        [
            (0.0, RING),
            (0.5, cid("800-240-4637", "CallerID.com", event="start")),
            (5.0, HookFrame("callerid-com", "off")),
            (65.0, HookFrame("callerid-com", "on")),
            (66.0, cid("800-240-4637", "CallerID.com", event="end", duration_s=60)),
        ],
    )
    assert kinds(events) == ["ring", "call", "update", "end"]
    assert len({e.call_id for e in events}) == 1
    assert events[-1].outcome == "answered" and events[-1].duration_s == 60.0


def test_end_record_corrects_a_call_ended_on_ring_silence():
    t = CallTracker("01", ring_gap=8.0)
    events = feed(t, [(0.0, RING), (0.5, cid("8002404637", event="start")), (9.0, None)])
    assert events[-1].type == "end" and events[-1].outcome == "unknown"
    (update,) = t.receive(cid("800-240-4637", event="end", duration_s=276), 290.0)
    assert update.type == "update" and update.call_id == events[0].call_id
    assert update.outcome == "answered" and update.duration_s == 276.0


def test_end_record_without_rings_ends_the_ringing_call():
    t = CallTracker("01")
    (call,) = t.receive(cid("7702637111", event="start"), 0.0)
    (end,) = t.receive(cid("7702637111", event="end", duration_s=0), 20.0)
    assert end.type == "end" and end.call_id == call.call_id and end.outcome == "missed"
    assert end.duration_s is None  # "0000" means never answered, not a 0 s conversation


def test_end_record_for_a_call_never_seen_is_still_a_call():
    t = CallTracker("01")
    events = t.receive(cid("7702637111", "CALLER", event="end", duration_s=42), 0.0)
    assert kinds(events) == ["call", "end"]
    assert events[1].outcome == "answered" and events[1].duration_s == 42.0
    assert not t.active


def test_end_record_of_another_caller_leaves_the_ringing_call_alone():
    t = CallTracker("01")
    (ringing,) = t.receive(cid("5551111"), 0.0)
    events = t.receive(cid("5552222", event="end", duration_s=0), 1.0)
    assert kinds(events) == ["call", "end"] and events[0].call_id != ringing.call_id
    assert t.active  # 5551111 still rings
    (end,) = t.tick(100.0)
    assert end.call_id == ringing.call_id


def test_outbound_records_are_ignored():
    t = CallTracker("01")
    assert t.receive(cid("5551234", direction="out"), 0.0) == []
    assert not t.active


def test_duplicate_just_after_the_end_is_absorbed_but_a_later_call_is_new():
    t = CallTracker("desk", duplicate_window=3.0)
    feed(t, [(0.0, cid("5551111")), (1.0, OFF), (10.0, ON)])
    assert t.receive(cid("5551111"), 11.0) == []  # a repeated packet
    (again,) = t.receive(cid("5551111"), 60.0)  # the same person calling back
    assert again.type == "call"


# -- real decoders into the tracker (the keys they share) ------------------------------


def decode_and_track(fmt, chunks):
    """Feed ``[(time, bytes), ...]`` through the format's decoder and one tracker per channel."""
    from cidbridge.core.formats import make_decoder

    decoder, trackers, events = make_decoder(fmt), {}, []
    for now, data in chunks:
        for frame in decoder.feed(data, now):
            channel = getattr(frame, "line", None)
            tracker = trackers.setdefault(channel, CallTracker(f"desk:{channel}"))
            events += tracker.receive(frame, now)
    for tracker in trackers.values():
        events += tracker.tick(10_000.0)
    return events


def test_whozz_calling_records_through_the_real_decoder():
    from cidbridge.core.formats.callerid_com import encode_call_record as record
    from cidbridge.core.formats.callerid_com import encode_detail as detail

    events = decode_and_track(
        "callerid-com",
        [
            (0.0, detail("R")),
            (0.5, record("800-240-4637", "CallerID.com", event="S")),
            (4.0, detail("F")),
            (64.0, detail("N")),
            (64.5, record("800-240-4637", "CallerID.com", event="E", duration=60, rings=2)),
        ],
    )
    assert kinds(events) == ["ring", "call", "update", "end", "update"]
    assert len({e.call_id for e in events}) == 1
    assert events[3].outcome == "answered" and events[3].duration_s == 60.0
    assert events[4].ring_count == 2  # the box's own ring count


def test_whozz_calling_without_detail_records_gets_its_outcome_from_the_end_record():
    from cidbridge.core.formats.callerid_com import encode_call_record as record

    events = decode_and_track(
        "callerid-com",
        [
            (0.0, record("7702637111", event="S")),
            (30.0, record("7702637111", event="E", duration=0, rings=5)),
        ],
    )
    assert kinds(events) == ["call", "end"]
    assert events[1].outcome == "missed" and events[1].ring_count == 5


def test_korean_adapter_frames_through_the_real_decoder():
    def frame(body):
        return b"\x02" + body.ljust(20).encode() + b"\x03"

    events = decode_and_track(
        "kr-adapter",
        [
            (0.0, frame("1I01012345678")),
            (12.0, frame("1S")),
            (72.0, frame("1E")),
            (100.0, frame("2I0212345678")),
        ],
    )
    channel_1 = [e for e in events if e.line == "desk:1"]
    assert kinds(channel_1) == ["call", "update", "end"]
    assert channel_1[-1].outcome == "answered" and channel_1[-1].duration_s == 60.0
    channel_2 = [e for e in events if e.line == "desk:2"]
    assert kinds(channel_2) == ["call", "end"] and channel_2[-1].number == "0212345678"


# -- properties over any ordering ------------------------------------------------------

FRAMES = st.sampled_from(
    [
        RING,
        OFF,
        ON,
        FLASH,
        cid("5551111"),
        cid("5551111", "ANN"),
        cid("5552222"),
        cid(None, absence="private"),
        cid("5551111", event="end", duration_s=30),
        cid("5552222", event="end", duration_s=0),
        cid("5553333", direction="out"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 20.0), FRAMES), max_size=40))
def test_any_sequence_gives_well_formed_calls(steps):
    """Every call is announced at most once, ends exactly once, and nothing follows but updates."""
    t = CallTracker("desk", ring_gap=8.0, ringless_timeout=30.0, max_call=600.0)
    now, events = 0.0, []
    for delay, frame in steps:
        now += delay
        events += t.receive(frame, now)
    events += t.tick(now + 10_000.0)
    assert not t.active and t.deadline is None
    by_call = defaultdict(list)
    for event in events:
        by_call[event.call_id].append(event)
    for call_events in by_call.values():
        types = [e.type for e in call_events]
        assert types.count("call") <= 1
        assert types.count("end") == 1
        after_end = types[types.index("end") + 1 :]
        assert set(after_end) <= {"update"}
        rings = [e.ring_count for e in call_events]
        assert rings == sorted(rings)
        assert all(e.outcome in ("answered", "missed", "unknown") for e in call_events if e.type == "end")


def test_call_ids_come_from_the_injected_factory():
    ids = iter(["first-id", "second-id"])
    t = CallTracker("desk", new_call_id=lambda: next(ids))
    (ring,) = t.receive(RING, 0.0)
    (end,) = t.tick(t.ring_gap)
    (again,) = t.receive(RING, 100.0)
    assert (ring.call_id, end.call_id, again.call_id) == ("first-id", "first-id", "second-id")
    # The default reads no clock: the same ids in every run (not for a logged source).
    assert CallTracker("desk").receive(RING, 0.0)[0].call_id == "desk-1"


def test_restart_safe_ids_keep_the_format_and_differ_across_restarts():
    before = restart_safe("front", clock_ns=lambda: 1_700_000_000_000_000_000)
    after = restart_safe("front", clock_ns=lambda: 1_700_000_000_250_000_000)
    assert [before(), before()] == ["front-18bcfe56800-1", "front-18bcfe56800-2"]
    assert after() == "front-18bcfe568fa-1"
