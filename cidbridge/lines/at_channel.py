"""Sending AT commands on a port whose bytes are read by someone else.

The line's reader task owns the port's input: it hands every chunk to the decoder
*and* to :meth:`AtChannel.feed`.  :meth:`AtChannel.command` writes one command and
waits for the :class:`~cidbridge.core.modem.ResultParser` to see its result code.
Nothing read is consumed here, which is why a RING during initialisation still
reaches the call tracker.
"""

from __future__ import annotations

import asyncio
import logging

from cidbridge.core.modem import InitDialogue, ModemError, Response, ResultParser

log = logging.getLogger(__name__)


class AtChannel:
    """One command at a time on ``writer``; feed it everything read from the same port."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.parser = ResultParser()
        self._answer: asyncio.Future[Response] | None = None
        self._lock = asyncio.Lock()

    def feed(self, data: bytes) -> None:
        """Watch bytes read from the port for the pending command's result code."""
        if not self.parser.pending:
            return
        response = self.parser.feed(data)
        if response is not None and self._answer is not None and not self._answer.done():
            self._answer.set_result(response)

    async def command(self, command: str, timeout: float) -> Response:
        """Send ``command`` and return its response; ``timed_out`` if none within ``timeout`` s."""
        async with self._lock:
            self._answer = asyncio.get_running_loop().create_future()
            self.parser.start(command)
            log.debug("modem <- %s", command)
            self.writer.write(command.encode("ascii") + b"\r")
            try:
                async with asyncio.timeout(timeout):
                    response = await self._answer
            except TimeoutError:
                response = self.parser.expire()
            finally:
                self._answer = None
            log.debug("modem -> %s", response.text)
            return response

    async def run(self, dialogue: InitDialogue, timeout: float) -> InitDialogue:
        """Play ``dialogue`` to its end; raise :class:`ModemError` if a step failed."""
        while (command := dialogue.next_command()) is not None:
            dialogue.answered(await self.command(command, timeout))
        if dialogue.error is not None:
            raise ModemError(dialogue.error)
        return dialogue
