"""The modem's AT dialogue as decisions, without I/O.

Small state machines, fed by whoever owns the port (:mod:`cidbridge.lines.at_channel`):

* :class:`ResultParser` finds, in the bytes a modem sends, the result code that
  ends the command in flight (``OK``, ``ERROR``, …) and collects the information
  lines before it (``ATI3`` text, ``AT+GCI?`` value).  It only *watches*: the same
  bytes still go to the decoder, so a RING or caller ID arriving mid-command is
  not lost.
* :class:`InitDialogue` walks an init sequence.  A step may list alternatives,
  ``A|B|C``: A is tried first, then B if A is refused or unanswered, and so on; the
  first OK wins.  It says which command to send next and, when a step cannot be
  done, why, in a sentence for the user.
* :class:`HangUpDialogue` hangs up on a blocked caller (commands, a pause, one
  retry), and :class:`BlockedCalls` says which events start it: once per call, while
  it rings (:mod:`cidbridge.lines.reject` runs it on the port).

:func:`init_sequence` builds the sequence a line sends after every (re)open: the
reset and result-code format, the country, the caller-ID enable chain, the extras.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FINAL_OK = frozenset({b"OK", b"CONNECT"})
FINAL_ERROR = frozenset({b"ERROR", b"NO CARRIER", b"NO DIALTONE", b"BUSY", b"NO ANSWER"})
#: Numeric result codes (a modem left in ``V0`` mode by its stored profile).
NUMERIC_FINAL = {b"0": True, b"4": False}

#: The caller-ID enable commands, in the order chipsets are commonly met (docs/formats.md):
#: IS-101 (Conexant, Lucent, Rockwell HCF), then USR/TI/Rockwell, a Conexant voice-mode
#: variant, Practical Peripherals.
CALLER_ID_CHAIN = ("AT+VCID=1", "AT#CID=1", "AT-STE=1;+VCID=1", "AT%CCID=1")
DEFAULT_CALLER_ID = "|".join(CALLER_ID_CHAIN)
#: Reset to the stored profile, then echo off and verbose result codes.
DEFAULT_INIT = ("ATZ", "ATE0V1")
#: What the keep-alive sends: the shortest command every modem answers.
KEEPALIVE_COMMAND = "AT"
#: Hanging up on a blocked caller, NCID's way: go off hook (the exchange stops ringing
#: and connects the caller), stay a moment, go back on hook (the caller is cut off).
DEFAULT_HANGUP = ("ATH1", "ATH0")

#: ITU-T T.35 country codes for ``AT+GCI=`` by ISO 3166 name; the setting selects
#: Bellcore FSK or ETSI/DTMF caller-ID detection (README: "Modems, boxes and several lines").
COUNTRY_CODES = {
    "US": "B5",
    "GB": "B4",
    "UK": "B4",
    "KR": "61",
    "JP": "00",
    "TW": "FE",
    "DE": "42",
    "FR": "3D",
}


class ModemError(Exception):
    """The modem did not take its initialisation; the message says which command and why."""


@dataclass(slots=True)
class Response:
    """What the modem answered to one command."""

    command: str
    ok: bool
    #: Information lines before the result code (echo and blank lines removed).
    lines: list[str] = field(default_factory=list)
    #: No result code arrived in time (``ok`` is then False).
    timed_out: bool = False

    @property
    def text(self) -> str:
        """The information lines joined, or the result (``OK``/``ERROR``/``no answer``)."""
        if self.lines:
            return " / ".join(self.lines)
        return "no answer" if self.timed_out else ("OK" if self.ok else "ERROR")


def country_code(value: str) -> str | None:
    """``"KR"`` or ``"61"`` → ``"61"``; None when ``value`` is neither a known name nor T.35 hex."""
    upper = value.strip().upper()
    if upper in COUNTRY_CODES:
        return COUNTRY_CODES[upper]
    if len(upper) == 2 and all(c in "0123456789ABCDEF" for c in upper):
        return upper
    return None


def init_sequence(
    init: Iterable[str] = DEFAULT_INIT,
    *,
    country: str | None = None,
    caller_id: str = DEFAULT_CALLER_ID,
    extra: Iterable[str] = (),
) -> tuple[str, ...]:
    """The steps sent after every open: ``init``, ``AT+GCI=…``, the caller-ID chain, ``extra``.

    The country comes before the caller-ID command because changing it can reset
    the modem's caller-ID detection; an empty ``caller_id`` sends none.
    """
    steps = [step for step in init if step.strip()]
    if country:
        steps.append(f"AT+GCI={country_code(country) or country}")
    if caller_id.strip():
        steps.append(caller_id)
    steps.extend(step for step in extra if step.strip())
    return tuple(steps)


def alternatives(step: str) -> list[str]:
    """``"A|B"`` → ``["A", "B"]`` (blanks dropped)."""
    return [command.strip() for command in step.split("|") if command.strip()]


def gives_information(command: str) -> bool:
    """Whether ``command`` answers with text before its result code (a query, ``ATI``, ``+GMx``).

    For the others a bare ``0``/``4`` line is a numeric result code; for these it may
    be the answer itself (``AT+VCID?`` → ``0``).
    """
    upper = command.upper().replace(" ", "")
    return "?" in upper or upper.startswith(("ATI", "AT+GM", "AT&V"))


class ResultParser:
    """Finds the result code ending the command in flight.  See the module doc.

    Call :meth:`start` when a command is written, :meth:`feed` with every byte
    read (it returns the :class:`Response` once the result code is complete), and
    :meth:`expire` if none came in time.
    """

    def __init__(self) -> None:
        self.command: str | None = None
        self._tail = b""
        self._lines: list[str] = []
        self._numeric = False

    @property
    def pending(self) -> bool:
        return self.command is not None

    def start(self, command: str) -> None:
        self.command = command
        self._tail = b""
        self._lines = []
        self._numeric = not gives_information(command)

    def feed(self, data: bytes) -> Response | None:
        if self.command is None:
            return None
        # Bounded: a modem spewing text without line ends cannot grow this.
        *complete, tail = (self._tail + data).replace(b"\r", b"\n").split(b"\n")
        self._tail = tail[-512:]
        echo = self.command.encode("ascii", "replace").upper()
        for raw in complete:
            line = raw.strip()
            if not line or line.upper() == echo:
                continue
            if line in FINAL_OK or line in FINAL_ERROR:
                return self._finish(line in FINAL_OK)
            if self._numeric and line in NUMERIC_FINAL:
                return self._finish(NUMERIC_FINAL[line])
            if len(self._lines) < 64:
                self._lines.append(line.decode("latin-1"))
        return None

    def expire(self) -> Response:
        """The command got no result code in time."""
        response = Response(self.command or "", False, self._lines, timed_out=True)
        self.command = None
        return response

    def _finish(self, ok: bool) -> Response:
        response = Response(self.command or "", ok, self._lines)
        self.command = None
        return response


class InitDialogue:
    """Walks an init sequence, trying each step's alternatives until one answers OK.

    Loop: ``while (command := dialogue.next_command()) is not None`` send it, then
    :meth:`answered` with the response.  Afterwards :attr:`error` is None on
    success, or the sentence to show; :attr:`accepted` lists the commands that
    answered OK (the caller-ID command that worked, for ``probe`` and the logs).
    """

    def __init__(self, steps: Sequence[str]) -> None:
        self._steps = [alts for alts in (alternatives(step) for step in steps) if alts]
        self._step = 0
        self._alt = 0
        self.responses: list[Response] = []
        self.accepted: list[str] = []
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.error is not None or self._step >= len(self._steps)

    def next_command(self) -> str | None:
        if self.done:
            return None
        return self._steps[self._step][self._alt]

    def answered(self, response: Response) -> None:
        self.responses.append(response)
        if response.ok:
            self.accepted.append(response.command)
            self._step, self._alt = self._step + 1, 0
            return
        self._alt += 1
        if self._alt < len(self._steps[self._step]):
            return
        self.error = self._explain(self._steps[self._step])

    def _explain(self, step: list[str]) -> str:
        tried = " / ".join(step)
        this_step = self.responses[-len(step) :]
        if all(r.timed_out for r in self.responses):
            return (
                f"no answer to {tried}: is this a modem (a caller-ID box needs "
                'device = "box") and is the baud rate right?'
            )
        if all(r.timed_out for r in this_step):
            return f"the modem stopped answering at {tried}"
        return f"the modem refused {tried}; run `cidbridge probe` to find a command it accepts"


class HangUpDialogue:
    """Hanging up on a blocked caller, NCID's way, as steps (see :mod:`cidbridge.lines.reject`).

    Loop: ``while (step := dialogue.next_step()) is not None``: a ``str`` is a command
    to send (then :meth:`answered` with its response), a ``float`` is seconds to wait.
    The commands go in order, with ``delay`` seconds before the last one (off hook,
    pause, on hook); if the last is not answered OK, ``AT`` and the last once more.
    Afterwards :attr:`confirmed` says whether the modem said OK to hanging up.
    """

    def __init__(self, commands: Sequence[str], delay: float) -> None:
        self._plan: list[str | float] = []
        commands = [c.strip() for c in commands if c.strip()]
        for index, command in enumerate(commands):
            if index == len(commands) - 1 and index > 0 and delay > 0:
                self._plan.append(float(delay))
            self._plan.append(command)
        self._last = commands[-1] if commands else None
        self._retried = False
        self._sent: str | None = None
        #: The answer to the last hang-up command (None until it came).
        self.final: Response | None = None

    @property
    def last_command(self) -> str:
        return self._last or ""

    @property
    def confirmed(self) -> bool:
        return self.final is not None and self.final.ok

    def next_step(self) -> str | float | None:
        if not self._plan:
            return None
        step = self._plan.pop(0)
        if isinstance(step, str):
            self._sent = step
        return step

    def answered(self, response: Response) -> None:
        if self._sent != self._last or self._plan:
            return  # not the final hang-up command: carry on
        self.final = response
        if not response.ok and not self._retried:
            # A modem busy answering may miss it: wake it with AT, then the last once more.
            self._retried = True
            self._plan = [KEEPALIVE_COMMAND, self._last]


#: Events of a call that may still be ringing (an ``end`` comes too late to hang up).
_RINGING_TYPES = frozenset({"ring", "call", "update"})


class BlockedCalls:
    """Which committed events start a hang-up: a blocked call that may still ring, once per call."""

    def __init__(self, remembered: int = 64) -> None:
        self.remembered = remembered
        self._seen: OrderedDict[str, None] = OrderedDict()

    def should_hang_up(self, event: Mapping[str, Any]) -> bool:
        call_id = event.get("call_id")
        if not event.get("blocked") or not call_id or event.get("type") not in _RINGING_TYPES:
            return False
        if call_id in self._seen:
            return False
        self._seen[call_id] = None
        while len(self._seen) > self.remembered:
            self._seen.popitem(last=False)
        return True
