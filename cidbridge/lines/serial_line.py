"""One configured line: a serial port, its decoder and call tracker, kept up forever.

:meth:`Line.run` opens the port with pyserial-asyncio, initialises a modem
(``device = "modem"``), then feeds every byte read to the decoder, every frame to the
tracker and every call event to the hub.  When the port fails (unplugged, never
there, refused) the line reports itself ``down`` to the hub, retries with capped
exponential backoff and reports ``up`` again once it is back.  Nothing here decodes
or decides: that is the sans-I/O core's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

import serial
import serial_asyncio_fast

from cidbridge.config import LineConfig
from cidbridge.core.formats import make_decoder
from cidbridge.core.frames import Frame
from cidbridge.core.tracker import CallEvent, CallTracker
from cidbridge.lines.modem import ModemError, ResponseWaiter, initialise

log = logging.getLogger(__name__)

READ_SIZE = 4096
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


class EventSink(Protocol):
    """Where a line sends what happened (the hub)."""

    async def publish(self, event: CallEvent) -> object: ...

    async def line_state(self, line: str, state: str, reason: str | None = None) -> object: ...


class LineLost(Exception):
    """The port stopped working; the message is the reason shown to users."""


class Line:
    """Keeps one configured line running.  Create it, then ``await run()`` until cancelled."""

    def __init__(
        self,
        config: LineConfig,
        sink: EventSink,
        *,
        ring_gap: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.sink = sink
        self.clock = clock
        self.ring_gap = ring_gap
        self.decoder = make_decoder(config.format)
        self.trackers: dict[str | None, CallTracker] = {}
        self.state = "starting"
        self.reason: str | None = None
        #: Set once the line has been up at least once (the daemon waits for it at start).
        self.first_attempt_done = asyncio.Event()

    @property
    def name(self) -> str:
        return self.config.name

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            try:
                await self._session()
                reason = "the port closed"
            except (LineLost, ModemError) as exc:
                reason = str(exc)
            except (serial.SerialException, OSError) as exc:
                reason = describe_open_error(self.config.port, exc)
            if self.state == "up":
                backoff = BACKOFF_FIRST  # it worked a moment ago: retry quickly
            await self._set_state("down", reason)
            self.first_attempt_done.set()
            await self._sleep_with_timers(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _session(self) -> None:
        cfg = self.config
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=cfg.port, baudrate=cfg.baudrate, exclusive=True
        )
        waiter = ResponseWaiter()
        reading = asyncio.create_task(self._read(reader, waiter), name=f"read {cfg.name}")
        try:
            if cfg.device == "modem":
                init = asyncio.create_task(initialise(writer, waiter, cfg.init, cfg.command_timeout))
                done, _ = await asyncio.wait({init, reading}, return_when=asyncio.FIRST_COMPLETED)
                if init not in done:
                    init.cancel()
                    await reading  # raises why reading stopped
                init.result()
            await self._set_state("up", None)
            self.first_attempt_done.set()
            await reading
        finally:
            reading.cancel()
            with contextlib.suppress(BaseException):
                await reading
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, waiter: ResponseWaiter) -> None:
        decoder = self.decoder
        while True:
            timeout = self._next_timeout()
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            except TimeoutError:
                await self._timers()
                continue
            except (serial.SerialException, OSError) as exc:
                raise LineLost(f"read failed ({exc}); the device was unplugged or reset") from None
            if not data:
                exc = reader.exception()
                raise LineLost(f"the device went away ({exc or 'end of file'}); unplugged?")
            waiter.feed(data)
            now = self.clock()
            await self._frames(decoder.feed(data, now), now)

    # -- frames and timers -------------------------------------------------------

    async def _frames(self, frames: list[Frame], now: float) -> None:
        for frame in frames:
            channel = getattr(frame, "line", None)
            for event in self._tracker(channel).receive(frame, now):
                await self.sink.publish(event)

    def _tracker(self, channel: str | None) -> CallTracker:
        tracker = self.trackers.get(channel)
        if tracker is None:
            name = self.config.name if channel is None else f"{self.config.name}:{channel}"
            tracker = CallTracker(name, ring_gap=self.ring_gap)
            self.trackers[channel] = tracker
        return tracker

    def _next_timeout(self) -> float | None:
        deadlines = [t.deadline for t in self.trackers.values() if t.deadline is not None]
        if self.decoder.deadline is not None:
            deadlines.append(self.decoder.deadline)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - self.clock())

    async def _timers(self) -> None:
        now = self.clock()
        await self._frames(self.decoder.timeout(now), now)
        for tracker in list(self.trackers.values()):
            for event in tracker.tick(now):
                await self.sink.publish(event)

    async def _sleep_with_timers(self, seconds: float) -> None:
        until = self.clock() + seconds
        while (left := until - self.clock()) > 0:
            timeout = self._next_timeout()
            await asyncio.sleep(left if timeout is None else min(left, timeout))
            await self._timers()

    async def _set_state(self, state: str, reason: str | None) -> None:
        if state == self.state and reason == self.reason:
            return
        if state == "down" and self.state == "down":
            self.reason = reason  # still down, possibly for a new reason: no new event
            return
        self.state, self.reason = state, reason
        if state == "up":
            log.info("line %s up on %s", self.name, self.config.port)
        else:
            log.warning("line %s down: %s", self.name, reason)
        await self.sink.line_state(self.name, state, reason)


def describe_open_error(port: str, exc: BaseException) -> str:
    """One sentence saying why ``port`` cannot be used and what to do about it."""
    text = str(exc)
    if "No such file" in text or ("could not open port" in text and "Errno 2" in text):
        return f"{port} does not exist; plug the device in, or run `cidbridge ports` to find its path"
    if "Permission denied" in text or "Errno 13" in text:
        return (
            f"permission denied on {port}; add this user to the dialout group "
            "(sudo usermod -aG dialout $USER, then log in again)"
        )
    if "exclusively lock" in text or "Resource temporarily unavailable" in text:
        return f"{port} is in use by another program (ModemManager? see the udev rule in the README)"
    return f"cannot use {port}: {text}"
