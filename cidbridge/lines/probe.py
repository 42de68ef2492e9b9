"""What is on a port: a modem (which commands it takes) or a caller-ID box (which format).

:func:`probe` is the engine of ``cidbridge probe``: it opens the port the way the
daemon does, asks ``AT``; a modem then gets the identification commands and each
caller-ID enable command in turn; a device that never answers is taken for a box,
and the bytes it sends while listening go through every decoder to find its
format.  :func:`lines_block` turns the result into the ``[[lines]]`` table to paste.
Nothing is printed here; the CLI renders the :class:`ProbeReport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from cidbridge.core.formats import FORMATS, make_decoder
from cidbridge.core.frames import Frame
from cidbridge.core.modem import CALLER_ID_CHAIN, DEFAULT_INIT, Response
from cidbridge.lines.at_channel import AtChannel
from cidbridge.lines.port import close_port, open_port

#: Identification commands: model, chipset, maker, fax/voice
#: classes, caller-ID modes, country.  Logged by NCID for support for the same reason.
IDENTIFY = ("ATI0", "ATI3", "AT+GMI", "AT+FCLASS=?", "AT+VCID=?", "AT+GCI?")
#: Bytes fed to each decoder per call when guessing a box's format.
CHUNK = 64


@dataclass(slots=True)
class FormatGuess:
    """What one decoder made of the bytes a box sent."""

    format: str
    frames: list[Frame]

    @property
    def calls(self) -> int:
        return sum(1 for f in self.frames if f.kind == "cid")

    @property
    def valid(self) -> int:
        return sum(1 for f in self.frames if f.kind != "invalid")


@dataclass(slots=True)
class ProbeReport:
    """Everything ``probe`` found out.  ``modem`` False means nothing answered ``AT``."""

    port: str
    baudrate: int
    modem: bool
    identity: list[Response] = field(default_factory=list)
    #: Every caller-ID enable command tried, with its answer.
    caller_id: list[Response] = field(default_factory=list)
    #: A caller-ID command was accepted, then ``ATZ``, then ``AT+VCID?`` said 0.
    forgets_after_reset: bool | None = None
    #: Bytes heard while listening for a box.
    heard: bytes = b""
    formats: list[FormatGuess] = field(default_factory=list)

    @property
    def working_caller_id(self) -> str | None:
        return next((r.command for r in self.caller_id if r.ok), None)

    @property
    def country(self) -> str | None:
        """The modem's ``AT+GCI?`` answer (``B5``), if it gave one."""
        for response in self.identity:
            if response.command == "AT+GCI?" and response.ok and response.lines:
                return response.lines[0].split(":")[-1].strip() or None
        return None


def detect_formats(data: bytes) -> list[FormatGuess]:
    """Run ``data`` through every decoder; the ones that found frames, most calls first."""
    guesses = []
    for name in FORMATS:
        if name == "auto":
            continue
        decoder = make_decoder(name)
        frames: list[Frame] = []
        for start in range(0, len(data), CHUNK):
            frames += decoder.feed(data[start : start + CHUNK], 0.0)
        frames += decoder.flush(0.0)
        guess = FormatGuess(name, frames)
        if guess.valid:
            guesses.append(guess)
    return sorted(guesses, key=lambda g: (-g.calls, -g.valid))


async def probe(
    port: str,
    baudrate: int,
    *,
    timeout: float = 1.0,
    listen: float = 30.0,
    progress: Callable[[str], None] = lambda _: None,
) -> ProbeReport:
    """Probe ``port``.  Opening errors propagate (the CLI explains them); see the module doc."""
    reader, writer = await open_port(port, baudrate)
    at = AtChannel(writer)
    heard = bytearray()
    arrived = asyncio.Event()

    async def read() -> None:
        while data := await reader.read(4096):
            heard.extend(data)
            at.feed(data)
            arrived.set()

    reading = asyncio.create_task(read())
    report = ProbeReport(port, baudrate, modem=False)
    try:
        progress("asking AT")
        for _ in range(2):
            if (await at.command("AT", timeout)).ok:
                report.modem = True
                break
        if report.modem:
            await _probe_modem(at, report, timeout, progress)
        else:
            progress(
                f"no answer to AT: listening up to {listen:g} s for a caller-ID box (call this line now)"
            )
            heard.clear()
            await _listen(heard, arrived, listen, reading)
            report.heard = bytes(heard)
            report.formats = detect_formats(report.heard)
    finally:
        await close_port(writer, reading)
    return report


async def _probe_modem(
    at: AtChannel, report: ProbeReport, timeout: float, progress: Callable[[str], None]
) -> None:
    for command in DEFAULT_INIT:
        await at.command(command, timeout * 3)  # a reset can take a moment
    for command in IDENTIFY:
        progress(command)
        report.identity.append(await at.command(command, timeout))
    for command in CALLER_ID_CHAIN:
        progress(command)
        report.caller_id.append(await at.command(command, timeout))
    if report.working_caller_id and "VCID" in report.working_caller_id:
        # The Conexant habit (home-assistant/core#57765): caller ID off again after ATZ.
        await at.command(DEFAULT_INIT[0], timeout * 3)
        after = await at.command("AT+VCID?", timeout)
        if after.ok and after.lines:
            report.forgets_after_reset = after.lines[-1].strip().endswith("0")


async def _listen(
    heard: bytearray, arrived: asyncio.Event, seconds: float, reading: asyncio.Task[None]
) -> None:
    """Gather bytes for ``seconds``; stop early a moment after something decodes as a call."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0 and not reading.done():
        arrived.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await arrived.wait()
        if any(guess.calls for guess in detect_formats(bytes(heard))):
            # The rest of the record (a name after the number) may still be coming.
            deadline = min(deadline, loop.time() + 1.5)


def lines_block(report: ProbeReport, *, path: str | None = None, name: str = "front-desk") -> str:
    """The ``[[lines]]`` table that makes this device work, ready to paste."""
    out = [
        "[[lines]]",
        f"name = {json.dumps(name)}",
        f"port = {json.dumps(path or report.port)}",
        f"baudrate = {report.baudrate}",
    ]
    if report.modem:
        out.append('device = "modem"')
        working = report.working_caller_id
        if working is None:
            out.append('caller_id = ""  # no caller-ID command answered OK: see the README')
        elif working != CALLER_ID_CHAIN[0]:
            out.append(f"caller_id = {json.dumps(working)}")
        if report.country:
            out.append(
                f'# country = "{report.country}"  # the modem\'s setting now; '
                "set yours (KR, B4 for the UK, …) if only RING ever arrives"
            )
    else:
        out.append('device = "box"')
        if report.formats:
            out.append(f"format = {json.dumps(report.formats[0].format)}")
        else:
            out.append(
                'format = "auto"  # nothing decoded: call the line while probing, or check the baud rate'
            )
    return "\n".join(out)
