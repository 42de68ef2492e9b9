"""The AT dialogue with a modem: send a command, wait for its final result code.

Reading never stops while a command is pending: every byte still goes to the
decoder, so a RING or a caller-ID block that arrives during initialisation is not
lost.  :class:`ResponseWaiter` only watches the same bytes for the result codes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

FINAL_OK = frozenset({b"OK", b"CONNECT"})
FINAL_ERROR = frozenset({b"ERROR", b"NO CARRIER", b"NO DIALTONE", b"BUSY", b"NO ANSWER"})


class ModemError(Exception):
    """The modem did not accept the initialisation; the message names the command."""


@dataclass(slots=True)
class Response:
    """What the modem answered to one command."""

    command: str
    ok: bool
    #: Information lines before the result code (``ATI3`` text, ``AT+VCID?`` value, …).
    lines: list[str] = field(default_factory=list)
    timed_out: bool = False


class ResponseWaiter:
    """Watches the byte stream for the result code that ends the current command."""

    def __init__(self) -> None:
        self._buffer = b""
        self._lines: list[str] = []
        self._future: asyncio.Future[tuple[bool, list[str]]] | None = None

    def feed(self, data: bytes) -> None:
        if self._future is None:
            return
        self._buffer = (self._buffer + data)[-4096:]
        *complete, self._buffer = self._buffer.replace(b"\r", b"\n").split(b"\n")
        for raw in complete:
            line = raw.strip()
            if not line:
                continue
            if line in FINAL_OK or line in FINAL_ERROR:
                if not self._future.done():
                    self._future.set_result((line in FINAL_OK, self._lines))
                self._future = None
                return
            self._lines.append(line.decode("latin-1"))

    async def command(self, writer: asyncio.StreamWriter, command: str, timeout: float) -> Response:
        """Send ``command`` and wait up to ``timeout`` seconds for OK or ERROR."""
        loop = asyncio.get_running_loop()
        self._future = loop.create_future()
        self._buffer = b""
        self._lines = []
        future = self._future
        log.debug("modem <- %s", command)
        writer.write(command.encode("ascii") + b"\r")
        try:
            ok, lines = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._future = None
            return Response(command, False, list(self._lines), timed_out=True)
        log.debug("modem -> %s %s", lines, "OK" if ok else "ERROR")
        return Response(command, ok, lines)


async def initialise(
    writer: asyncio.StreamWriter, waiter: ResponseWaiter, init: tuple[str, ...], timeout: float
) -> list[Response]:
    """Run the init sequence.  ``A|B|C`` tries A, then B, then C until one answers OK.

    Raises :class:`ModemError` when a step gets no OK from any of its alternatives.
    """
    responses: list[Response] = []
    for step in init:
        alternatives = [cmd.strip() for cmd in step.split("|") if cmd.strip()]
        for command in alternatives:
            response = await waiter.command(writer, command, timeout)
            responses.append(response)
            if response.ok:
                break
        else:
            tried = " / ".join(alternatives)
            if responses and all(r.timed_out for r in responses):
                raise ModemError(
                    f"no answer to {tried}: is this a modem (not a caller-ID box: "
                    'set device = "box") and is the baud rate right?'
                )
            raise ModemError(f"the modem refused {tried}; run `cidbridge probe` to find a command it accepts")
    return responses
