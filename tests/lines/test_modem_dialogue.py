"""The AT dialogue's decisions, without I/O: result codes, alternatives, the init sequence."""

from __future__ import annotations

import pytest

from cidbridge.core.modem import (
    CALLER_ID_CHAIN,
    DEFAULT_CALLER_ID,
    InitDialogue,
    Response,
    ResultParser,
    country_code,
    init_sequence,
)
from cidbridge.sim.modem import SimulatedModem


def answer(parser: ResultParser, command: str, *chunks: bytes) -> Response | None:
    parser.start(command)
    result = None
    for chunk in chunks:
        result = parser.feed(chunk) or result
    return result


def test_ok_after_echo_and_info_lines_split_anywhere():
    data = b"ATI3\r\r\nCX93001-EIS_V0.2002-V92\r\n\r\nOK\r\n"
    parser = ResultParser()
    parser.start("ATI3")
    responses = [parser.feed(data[i : i + 1]) for i in range(len(data))]
    done = [r for r in responses if r is not None]
    assert len(done) == 1
    assert done[0].ok and done[0].lines == ["CX93001-EIS_V0.2002-V92"]
    assert not parser.pending


def test_error_and_unsolicited_ring_during_a_command():
    response = answer(ResultParser(), "AT+VCID=1", b"\r\nRING\r\n", b"\r\nERROR\r\n")
    assert response is not None and not response.ok and not response.timed_out
    assert response.lines == ["RING"]  # seen, not swallowed: the decoder gets the same bytes


def test_numeric_result_codes_only_for_commands_without_information():
    # A modem whose stored profile says V0 answers ATZ with "0<CR>".
    assert answer(ResultParser(), "ATZ", b"0\r").ok
    assert not answer(ResultParser(), "AT+VCID=1", b"4\r").ok
    # For a query, "0" is the answer itself, not a result code.
    parser = ResultParser()
    assert answer(parser, "AT+VCID?", b"\r\n0\r\n") is None
    response = parser.feed(b"\r\nOK\r\n")
    assert response is not None and response.lines == ["0"]


def test_no_answer_expires():
    parser = ResultParser()
    assert answer(parser, "AT", b"garbage without end") is None
    response = parser.expire()
    assert response.timed_out and not response.ok and response.text == "no answer"


def test_init_sequence_order():
    steps = init_sequence(["ATZ", "ATE0V1"], country="KR", extra=["ATS24=0"])
    assert steps == ("ATZ", "ATE0V1", "AT+GCI=61", DEFAULT_CALLER_ID, "ATS24=0")
    assert init_sequence(caller_id="") == ("ATZ", "ATE0V1")
    assert DEFAULT_CALLER_ID.split("|") == list(CALLER_ID_CHAIN)


@pytest.mark.parametrize(("given", "code"), [("KR", "61"), ("uk", "B4"), ("b5", "B5"), ("00", "00")])
def test_country_codes(given, code):
    assert country_code(given) == code


def test_country_code_rejects_unknown():
    assert country_code("Korea") is None
    assert country_code("XZ") is None


def play(dialogue: InitDialogue, modem: SimulatedModem) -> InitDialogue:
    """Answer the dialogue with the simulated modem's real replies."""
    parser = ResultParser()
    while (command := dialogue.next_command()) is not None:
        parser.start(command)
        reply = modem.receive(command.encode() + b"\r")
        dialogue.answered(parser.feed(reply) or parser.expire())
    return dialogue


def test_first_caller_id_command_that_answers_ok_wins():
    standard = play(InitDialogue(init_sequence()), SimulatedModem())
    assert standard.error is None and standard.accepted[-1] == "AT+VCID=1"
    refuses_vcid = play(InitDialogue(init_sequence()), SimulatedModem(personality="hash-cid"))
    assert refuses_vcid.error is None and refuses_vcid.accepted[-1] == "AT#CID=1"
    assert [r.command for r in refuses_vcid.responses][-2:] == ["AT+VCID=1", "AT#CID=1"]


def test_refusal_names_the_commands_and_the_fix():
    dialogue = play(InitDialogue(["ATZ", "AT*NOPE|AT$NOPE"]), SimulatedModem())
    assert dialogue.error is not None and dialogue.done
    assert "refused AT*NOPE / AT$NOPE" in dialogue.error and "cidbridge probe" in dialogue.error


def test_silence_says_it_may_be_a_box():
    dialogue = play(InitDialogue(init_sequence()), SimulatedModem(personality="silent"))
    assert dialogue.error is not None and 'device = "box"' in dialogue.error
    assert len(dialogue.responses) == 1  # no point trying the rest


def test_modem_that_stops_answering_midway():
    dialogue = InitDialogue(["ATZ", "AT+VCID=1"])
    dialogue.answered(Response("ATZ", True))
    dialogue.answered(Response("AT+VCID=1", False, timed_out=True))
    assert dialogue.error == "the modem stopped answering at AT+VCID=1"


def _walk(dialogue, answers: dict[str, list[bool]]) -> list[object]:
    """Run a hang-up dialogue against scripted OK/ERROR answers; the steps it took."""
    steps: list[object] = []
    while (step := dialogue.next_step()) is not None:
        steps.append(step)
        if isinstance(step, str):
            dialogue.answered(Response(step, answers[step].pop(0)))
    return steps


def test_hang_up_pauses_before_the_last_command_and_retries_it_once():
    from cidbridge.core.modem import HangUpDialogue

    done = HangUpDialogue(["ATH1", "ATH0"], 1.0)
    assert _walk(done, {"ATH1": [True], "ATH0": [True]}) == ["ATH1", 1.0, "ATH0"]
    assert done.confirmed
    retried = HangUpDialogue(["ATH1", "ATH0"], 0.0)
    assert _walk(retried, {"ATH1": [True], "ATH0": [False, False], "AT": [True]}) == [
        "ATH1", "ATH0", "AT", "ATH0",
    ]  # fmt: skip
    assert not retried.confirmed and retried.final is not None and retried.final.text == "ERROR"


def test_a_blocked_call_starts_one_hang_up_while_it_may_still_ring():
    from cidbridge.core.modem import BlockedCalls

    blocked = BlockedCalls(remembered=2)
    call = {"type": "call", "call_id": "a", "blocked": True}
    assert blocked.should_hang_up(call)
    assert not blocked.should_hang_up({**call, "type": "update"})  # once per call
    assert not blocked.should_hang_up({**call, "call_id": "b", "type": "end"})  # too late
    assert not blocked.should_hang_up({**call, "call_id": "c", "blocked": False})
