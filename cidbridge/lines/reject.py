"""Hanging up on a blocked caller, on a modem line.

There is no AT command that refuses a ringing call; a modem can only answer and hang
up.  NCID's way, followed here: go off hook (``ATH1``: the exchange stops ringing and
connects the caller), wait a moment (``hangup_delay``, 1 s by default) so the
exchange has seen the answer, go back on hook (``ATH0``: the caller is cut off).  If
the last command is not answered OK, ``AT`` and the last command are tried once more
(a modem busy answering may miss it).  The commands and the delay are per line
(``[[lines]] hangup``, ``hangup_delay``); ``block_action = "mark"`` only marks.

The hub decides whether a call is blocked (``blocked`` in the event it returns); the
line hands each event to :meth:`Rejecter.consider`, which starts the dialogue once
per call while it rings.  Caller ID comes between the first and second rings on
North American lines and before the first ring on Korean and British ones, so the
modem is off hook before the second ring: the dialogue takes a few milliseconds to
start, the rings are seconds apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import Any

from cidbridge.config import LineConfig
from cidbridge.lines.at_channel import AtChannel
from cidbridge.lines.modem import KEEPALIVE_COMMAND

log = logging.getLogger(__name__)

#: Calls remembered as hung up (a call's later events must not start it again).
_REMEMBERED = 64
#: Events of a call that may still be ringing (an ``end`` comes too late to hang up).
_RINGING_TYPES = frozenset({"ring", "call", "update"})


class Rejecter:
    """Hangs up on the blocked calls of one modem session.  See the module doc."""

    def __init__(self, at: AtChannel, config: LineConfig) -> None:
        self.at = at
        self.config = config
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def consider(self, event: dict[str, Any]) -> None:
        """Start hanging up if ``event`` belongs to a blocked call still ringing (once per call)."""
        call_id = event.get("call_id")
        if not event.get("blocked") or not call_id or event.get("type") not in _RINGING_TYPES:
            return
        if call_id in self._seen:
            return
        self._seen[call_id] = None
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        task = asyncio.create_task(self._hang_up(call_id), name=f"hang up {call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hang_up(self, call_id: str) -> None:
        commands = [c.strip() for c in self.config.hangup if c.strip()]
        timeout = self.config.command_timeout
        try:
            response = None
            for index, command in enumerate(commands):
                if index == len(commands) - 1 and index > 0 and self.config.hangup_delay > 0:
                    await asyncio.sleep(self.config.hangup_delay)
                response = await self.at.command(command, timeout)
            if response is not None and not response.ok:
                await self.at.command(KEEPALIVE_COMMAND, timeout)
                response = await self.at.command(commands[-1], timeout)
            if response is not None and not response.ok:
                log.warning(
                    "line %s: the modem did not confirm hanging up on blocked call %s (%s: %s)",
                    self.config.name, call_id, commands[-1], response.text,
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
