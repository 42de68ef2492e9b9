"""A simulated voice modem: answers AT commands like the real ones, prints calls like them.

:class:`SimulatedModem` is the device's brain with no I/O: bytes from the host go to
:meth:`SimulatedModem.receive`, which returns the modem's answer; :meth:`call_script`
returns what the modem prints during one incoming call, as ``(delay_s, bytes)`` steps.
:mod:`cidbridge.sim.pty` plays it on a pseudo-terminal.

Personalities cover the modems users meet (the README's "Modems, boxes and several
lines"): one that accepts every init command, one that refuses ``AT+VCID=1`` but takes
``AT#CID=1``, one that forgets caller ID after ``ATZ``, and one that goes silent.

The modem has a hook: ``ATH1`` and ``ATA`` take it off hook, ``ATH0``/``ATH``/``ATZ``
put it back.  :meth:`SimulatedModem.play_call` plays a call the way the exchange
does, so a ring that falls due after the modem went off hook is not sent (the call
was answered).  :attr:`SimulatedModem.timeline` records, with monotonic times, every
command received and every ring and caller ID sent, so a test can check that a
blocked caller was hung up on before the second ring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from cidbridge.core.formats.modem_text import encode_block

PERSONALITIES = ("standard", "hash-cid", "forgetful", "silent")


@dataclass(slots=True)
class Caller:
    """One simulated incoming call."""

    number: str | None
    name: str | None = None
    number_absence: str | None = None
    name_absence: str | None = None
    month: int = 1
    day: int = 1
    hour: int = 12
    minute: int = 0


@dataclass
class SimulatedModem:
    """A modem's command interpreter and call printer.  See the module doc."""

    personality: str = "standard"
    echo: bool = True
    verbose: bool = True
    cid_enabled: bool = False
    #: Every command line received, for tests to inspect.
    commands: list[str] = field(default_factory=list)
    #: ``(time.monotonic(), what)``: ``"command ATH1"``, ``"ring 1"``, ``"caller id"``,
    #: ``"ring 2 not sent: off hook"``.
    timeline: list[tuple[float, str]] = field(default_factory=list)
    off_hook: bool = False
    #: The modem went off hook since the current call began (see :meth:`play_call`).
    picked_up: bool = False
    _pending: bytes = b""

    def receive(self, data: bytes) -> bytes:
        """Bytes written by the host → bytes the modem answers (echo included)."""
        if self.personality == "silent":
            return b""
        out = b""
        self._pending += data
        while b"\r" in self._pending:
            raw, _, self._pending = self._pending.partition(b"\r")
            raw = raw.strip(b"\n ")
            if self.echo:
                out += raw + b"\r"
            if raw:
                out += self._answer(raw.decode("ascii", "replace"))
        self._pending = self._pending[-256:]
        return out

    def _answer(self, line: str) -> bytes:
        self.commands.append(line)
        self.timeline.append((time.monotonic(), f"command {line}"))
        upper = line.upper().replace(" ", "")
        if not upper.startswith("AT"):
            return self._result(False)
        body = upper[2:]
        info: list[str] = []
        ok = True
        for command in _split(body):
            ok, text = self._command(command)
            if text:
                info.append(text)
            if not ok:
                break
        return b"".join(b"\r\n" + text.encode() + b"\r\n" for text in info) + self._result(ok)

    def _command(self, command: str) -> tuple[bool, str | None]:
        if command in ("H1", "A"):
            self.off_hook = self.picked_up = True
            return True, None
        if command in ("H", "H0"):
            self.off_hook = False
            return True, None
        if command in ("", "Z", "&F"):
            self.echo, self.verbose, self.off_hook = True, True, False
            if self.personality == "forgetful":
                self.cid_enabled = False
            return True, None
        if command.startswith("E"):
            self.echo = command[1:2] != "0"
            return True, None
        if command.startswith("V"):
            self.verbose = command[1:2] != "0"
            return True, None
        if command in ("+VCID=1", "+VCID=2"):
            if self.personality == "hash-cid":
                return False, None
            self.cid_enabled = True
            return True, None
        if command in ("#CID=1", "#CID=2"):
            self.cid_enabled = True
            return True, None
        if command == "+VCID?":
            return True, "1" if self.cid_enabled else "0"
        if command in ("I0", "I"):
            return True, "56000"
        if command == "I3":
            return True, "CX93001-EIS_V0.2002-V92"
        if command == "+GMI":
            return True, "CONEXANT"
        if command == "+FCLASS=?":
            return True, "0,1,1.0,2,8"
        if command == "+VCID=?":
            return True, "(0-2)"
        if command == "+GCI?":
            return True, "+GCI: B5"
        if command.startswith(("+GCI=", "S", "Q", "&", "-STE", "+FCLASS", "X", "M", "L")):
            return True, None
        return False, None

    def _result(self, ok: bool) -> bytes:
        if self.verbose:
            return b"\r\nOK\r\n" if ok else b"\r\nERROR\r\n"
        return b"0\r" if ok else b"4\r"

    # -- calls -------------------------------------------------------------------

    def ring(self) -> bytes:
        return b"\r\nRING\r\n" if self.verbose else b"2\r"

    def call_script(self, caller: Caller, rings: int = 3) -> list[tuple[float, bytes]]:
        """What the modem prints for one call: RING, the caller-ID block, more RINGs.

        Delays follow the US cadence, compressed (real: a ring every 6 s).  A modem
        whose caller ID is off prints the RINGs only, like a real one.
        """
        steps: list[tuple[float, bytes]] = [(0.0, self.ring())]
        if self.cid_enabled and self.personality != "silent":
            steps.append((0.5, b"\r\n" + self._block(caller)))
        steps.extend((1.0, self.ring()) for _ in range(rings - 1))
        return steps

    def play_call(
        self,
        device: Writer,
        caller: Caller,
        *,
        rings: int = 3,
        caller_id_after: float = 0.5,
        ring_every: float = 6.0,
    ) -> int:
        """Play one call on ``device`` as the exchange does; return the rings sent.

        A ring at 0 s, the caller ID ``caller_id_after`` s later (if caller ID is on),
        then a ring every ``ring_every`` s, unless the modem went off hook meanwhile:
        an answered line stops ringing (the unsent ring goes into :attr:`timeline`).
        """
        self.picked_up = False
        start = time.monotonic()
        steps: list[tuple[float, str]] = [(0.0, "ring 1")]
        if self.cid_enabled and self.personality != "silent":
            steps.append((caller_id_after, "caller id"))
        steps += [(ring_every * n, f"ring {n + 1}") for n in range(1, rings)]
        steps.sort()
        sent = 0
        for at, what in steps:
            time.sleep(max(0.0, start + at - time.monotonic()))
            if what.startswith("ring"):
                if self.picked_up:
                    self.timeline.append((time.monotonic(), f"{what} not sent: off hook"))
                    return sent
                device.write(self.ring())
                sent += 1
            else:
                device.write(b"\r\n" + self._block(caller))
            self.timeline.append((time.monotonic(), what))
        return sent

    def _block(self, caller: Caller) -> bytes:
        return encode_block(
            caller.number,
            caller.name,
            month=caller.month,
            day=caller.day,
            hour=caller.hour,
            minute=caller.minute,
            number_absence=caller.number_absence,
            name_absence=caller.name_absence,
        )


class Writer(Protocol):
    """Where :meth:`SimulatedModem.play_call` writes (a :class:`~cidbridge.sim.pty.PtyDevice`)."""

    def write(self, data: bytes, timeout: float = 1.0) -> None: ...


def _split(body: str) -> list[str]:
    """Split a command line body (after ``AT``) into its commands: ``Z``, ``E0``, ``+VCID=1``."""
    commands: list[str] = []
    i = 0
    while i < len(body):
        if body[i] in "+#%-*$!":
            end = body.find(";", i)
            end = len(body) if end < 0 else end
            commands.append(body[i:end])
            i = end + 1
            continue
        j = i + 1
        if body[i] == "&" and j < len(body):
            j += 1
        while j < len(body) and (body[j].isdigit() or body[j] in "=?"):
            j += 1
        commands.append(body[i:j])
        i = j
    return commands
