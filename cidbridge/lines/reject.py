"""Hanging up on a blocked caller, on a modem line.

There is no AT command that refuses a ringing call; a modem can only answer and hang
up.  NCID's way, followed here: go off hook (``ATH1``: the exchange stops ringing and
connects the caller), wait a moment (``hangup_delay``, 1 s by default) so the
exchange has seen the answer, go back on hook (``ATH0``: the caller is cut off).  If
the last command is not answered OK, ``AT`` and the last command are tried once more
(a modem busy answering may miss it).  The commands and the delay are per line
(``[[lines]] hangup``, ``hangup_delay``); ``block_action = "mark"`` only marks.

The hub decides whether a call is blocked (``blocked`` in the event it returns); the
line hands each event to :meth:`Rejecter.consider`.  What to do is decided without
I/O in :mod:`cidbridge.core.modem` (:class:`~cidbridge.core.modem.BlockedCalls`:
once per call, while it rings; :class:`~cidbridge.core.modem.HangUpDialogue`: the
commands, the pause, the retry); this module only runs it on the port.  Caller ID
comes between the first and second rings on North American lines and before the
first ring on Korean and British ones, so the modem is off hook before the second
ring: the dialogue takes a few milliseconds to start, the rings are seconds apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from cidbridge.config import LineConfig
from cidbridge.core.modem import BlockedCalls, HangUpDialogue
from cidbridge.lines.at_channel import AtChannel

log = logging.getLogger(__name__)


class Rejecter:
    """Hangs up on the blocked calls of one modem session.  See the module doc."""

    def __init__(self, at: AtChannel, config: LineConfig) -> None:
        self.at = at
        self.config = config
        self._blocked = BlockedCalls()
        self._tasks: set[asyncio.Task[None]] = set()

    def consider(self, event: dict[str, Any]) -> None:
        """Start hanging up if ``event`` belongs to a blocked call still ringing (once per call)."""
        if not self._blocked.should_hang_up(event):
            return
        call_id = event["call_id"]
        task = asyncio.create_task(self._hang_up(call_id), name=f"hang up {call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hang_up(self, call_id: str) -> None:
        dialogue = HangUpDialogue(self.config.hangup, self.config.hangup_delay)
        try:
            while (step := dialogue.next_step()) is not None:
                if isinstance(step, float):
                    await asyncio.sleep(step)
                else:
                    dialogue.answered(await self.at.command(step, self.config.command_timeout))
            if not dialogue.confirmed:
                log.warning(
                    "line %s: the modem did not confirm hanging up on blocked call %s (%s: %s)",
                    self.config.name, call_id, dialogue.last_command,
                    dialogue.final.text if dialogue.final is not None else "not sent",
                )  # fmt: skip
            else:
                log.info("line %s: hung up on blocked call %s", self.config.name, call_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # the port went away mid-dialogue: the session ends on its own
            log.warning(
                "line %s: hanging up on blocked call %s failed", self.config.name, call_id, exc_info=True
            )

    def close(self) -> None:
        """Stop any dialogue in progress (the session is ending)."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    async def wait(self) -> None:
        """Wait for the dialogues in progress (tests)."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks)
