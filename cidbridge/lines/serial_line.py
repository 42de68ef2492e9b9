"""One configured line: a port, its decoder and call trackers, kept up for months.

:meth:`Line.run` loops over *sessions*.  A session opens the port
(:func:`~cidbridge.lines.port.open_port`), initialises a modem (the AT dialogue of
:mod:`cidbridge.core.modem`), reports the line ``up``, then feeds every byte read
to the capture file, the AT channel and the line's
:class:`~cidbridge.core.source.CallSource` (decoder and a call tracker per
channel), and every call event it gives to the hub.  While no call is in
progress a modem that has said nothing for ``keepalive`` seconds gets an ``AT``;
no answer (twice) ends the session.

A session ends when the port fails: unplugged (EIO, ENODEV, hang-up), never there,
refused, a modem gone silent.  The line reports ``down`` with a one-sentence reason
and retries with capped exponential backoff, reopening the configured path.  It
retries at once when that path appears again or leads to another device (a by-id
symlink re-pointed after a replug; :mod:`cidbridge.lines.pathwatch` waits on inotify
for it), so a replugged device is back within a fraction of a second whatever the
backoff had grown to.

Nothing here decodes or decides what a call is: that is the sans-I/O core's job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import serial

from cidbridge.call_ids import restart_safe
from cidbridge.config import LineConfig
from cidbridge.core.formats import Decoder, make_decoder
from cidbridge.core.modem import KEEPALIVE_COMMAND, InitDialogue, ModemError, init_sequence
from cidbridge.core.source import CallSource
from cidbridge.core.tracker import CallEvent, CallTracker
from cidbridge.lines.at_channel import AtChannel
from cidbridge.lines.capture import RawCapture
from cidbridge.lines.diagnose import describe_open_error
from cidbridge.lines.pathwatch import PathWatch
from cidbridge.lines.port import close_port, is_url, open_port
from cidbridge.lines.reject import Rejecter
from cidbridge.lines.status import EventSink, SourceStatus

log = logging.getLogger(__name__)

READ_SIZE = 4096
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
#: Longest a closing port may take (a hung-up tty's final flush) before we move on.
CLOSE_TIMEOUT = 2.0


class LineLost(Exception):
    """The port stopped working; the message is the reason shown to users."""


class Line(SourceStatus):
    """Keeps one configured line running.  Create it, then ``await run()`` until cancelled."""

    def __init__(
        self,
        config: LineConfig,
        sink: EventSink,
        *,
        ring_gap: float = 8.0,
        ringless_timeout: float = 45.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sink, clock)
        self.config = config
        #: The decoder and a call tracker per channel (sans-I/O: bytes and the time in, events out).
        self.calls = CallSource(
            config.name,
            config.channels,
            decoder=make_decoder(config.format),
            ring_gap=ring_gap,
            ringless_timeout=ringless_timeout,
            call_ids=restart_safe,  # logged: unique across restarts
        )
        #: Sessions that reached ``up``, the first included.
        self.sessions_up = 0
        self.capture = RawCapture(config.capture, config.capture_max_bytes) if config.capture else None
        self._last_heard = self.clock()
        #: Hangs up on blocked callers while a modem session runs (block_action = "hangup").
        self._rejecter: Rejecter | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def decoder(self) -> Decoder:
        return self.calls.decoder  # type: ignore[return-value]

    @property
    def names(self) -> list[str]:
        """Every line name this port serves: its own, then its channels' (line events name each)."""
        names = [self.config.name]
        names += [n for n in dict.fromkeys(self.config.channels.values()) if n != self.config.name]
        return names

    def status(self) -> dict[str, Any]:
        """This line's entry in /healthz."""
        return {
            "state": self.state,
            "reason": self.reason,
            "port": self.config.port,
            "since": self.since,
            "channels": dict(self.config.channels),
        }

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        backoff = BACKOFF_FIRST
        try:
            while True:
                try:
                    await self._session()
                    reason = "the port closed"
                except (LineLost, ModemError) as exc:
                    reason = str(exc)
                except (serial.SerialException, OSError, ValueError) as exc:
                    reason = describe_open_error(self.config.port, exc)
                except Exception as exc:
                    # A bug must not silence a line for months: log it, start a new session.
                    log.exception("line %s: unexpected error", self.name)
                    reason = f"unexpected error ({type(exc).__name__}: {exc}); see the log"
                if self.state == "up":
                    backoff = BACKOFF_FIRST  # it worked a moment ago: retry quickly
                await self._set_state("down", reason)
                self.first_attempt_done.set()
                if await self._wait_before_retry(backoff, PathWatch(self.config.port)):
                    backoff = BACKOFF_FIRST  # a device (re)appeared: a fresh start
                else:
                    backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            if self.capture is not None:
                self.capture.close()

    async def _session(self) -> None:
        cfg = self.config
        reader, writer = await open_port(cfg.port, cfg.baudrate)
        self._last_heard = self.clock()
        at = AtChannel(writer)
        if cfg.device == "modem" and cfg.block_action == "hangup":
            self._rejecter = Rejecter(at, cfg)
        tasks = {asyncio.create_task(self._read(reader, at), name=f"read {cfg.name}")}
        try:
            if cfg.device == "modem":
                steps = init_sequence(
                    cfg.init, country=cfg.country, caller_id=cfg.caller_id, extra=cfg.extra_init
                )
                dialogue = await self._while_reading(at.run(InitDialogue(steps), cfg.command_timeout), tasks)
                log.info("line %s: modem initialised (%s)", cfg.name, ", ".join(dialogue.accepted))
                if cfg.keepalive > 0:
                    tasks.add(asyncio.create_task(self._keepalive(at), name=f"keepalive {cfg.name}"))
            await self._set_state("up", None)
            self.sessions_up += 1
            self.first_attempt_done.set()
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises why the session ended
        finally:
            if self._rejecter is not None:
                self._rejecter.close()
                self._rejecter = None
            # Closed for real (fd and lock released) before the next session reopens it.
            await close_port(writer, *tasks, timeout=CLOSE_TIMEOUT)

    async def _while_reading(self, coro: Coroutine[Any, Any, Any], tasks: set[asyncio.Task[Any]]) -> Any:
        """Run ``coro`` while the reader runs; if reading fails first, raise its error."""
        job = asyncio.create_task(coro)
        try:
            await asyncio.wait({job, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not job.done():
                job.cancel()
        for task in tasks:
            if task.done():
                task.result()
                raise LineLost("the port closed while initialising")
        return job.result()

    async def _read(self, reader: asyncio.StreamReader, at: AtChannel) -> None:
        calls = self.calls
        while True:
            timeout = self._next_timeout()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives together with data, and the line would never stop.
            try:
                async with asyncio.timeout(timeout):
                    data = await reader.read(READ_SIZE)
            except TimeoutError:
                await self._timers()
                continue
            except (serial.SerialException, OSError) as exc:
                raise LineLost(self._gone(_brief(exc))) from None
            if not data:
                raise LineLost(self._gone("end of file"))
            self._last_heard = now = self.clock()
            if self.capture is not None:
                self.capture.write(data)
            at.feed(data)
            await self._publish_all(calls.feed(data, now).events)

    def _gone(self, why: str) -> str:
        if is_url(self.config.port):
            return f"the connection to {self.config.port} closed ({why}); reconnecting"
        return f"the device went away ({why}); unplugged or reset?"

    async def _keepalive(self, at: AtChannel) -> None:
        """``AT`` after ``keepalive`` s of silence while no call is in progress; no answer → lost."""
        interval = self.config.keepalive
        while True:
            await asyncio.sleep(max(0.0, self._last_heard + interval - self.clock()))
            if self.clock() - self._last_heard < interval:
                continue  # the modem spoke meanwhile: it is alive
            for _ in range(2):  # one lost reply is noise; two in a row is a dead modem
                if self._in_call():
                    # Never talk over a call: some modems stop decoding caller ID when
                    # a command arrives between rings.  Check again after the call.
                    self._last_heard = self.clock()
                    break
                response = await at.command(KEEPALIVE_COMMAND, self.config.command_timeout)
                if not response.timed_out:
                    break
            else:
                raise LineLost(
                    f"the modem stopped answering (no reply to {KEEPALIVE_COMMAND} within "
                    f"{self.config.command_timeout:g} s); reopening it"
                )

    def _in_call(self) -> bool:
        return self.calls.active

    async def _wait_before_retry(self, seconds: float, watch: PathWatch) -> bool:
        """Sleep ``seconds`` (running call timers); True if the device path changed meanwhile.

        The path is watched with inotify (:mod:`cidbridge.lines.pathwatch`), not polled:
        a down line wakes for its backoff, its calls' timers and its device, nothing else.
        """
        change = asyncio.create_task(watch.wait_changed(), name=f"watch {self.name}")
        try:
            until = self.clock() + seconds
            while (left := until - self.clock()) > 0:
                timers = self._next_timeout()
                done, _ = await asyncio.wait({change}, timeout=left if timers is None else min(left, timers))
                if done:
                    change.result()
                    log.info("line %s: %s changed; reopening now", self.name, watch.path)
                    return True
                await self._timers()
            return False
        finally:
            change.cancel()
            await asyncio.gather(change, return_exceptions=True)

    # -- call events and timers --------------------------------------------------

    def _tracker(self, channel: str | None) -> CallTracker:
        """The call tracker of ``channel`` (None: the line itself), made on first use."""
        return self.calls.tracker(channel)

    def set_timing(self, ring_gap: float, ringless_timeout: float) -> None:
        """New ``[calls]`` timings (a reload), for the calls in progress too."""
        self.calls.set_timing(ring_gap, ringless_timeout)

    def _next_timeout(self) -> float | None:
        deadline = self.calls.deadline
        return None if deadline is None else max(0.0, deadline - self.clock())

    async def _timers(self) -> None:
        await self._publish_all(self.calls.tick(self.clock()).events)

    async def _publish_all(self, events: list[CallEvent]) -> None:
        for event in events:
            await self._publish(event)

    async def _publish(self, event: CallEvent) -> None:
        committed = await self.sink.publish(event)
        if self._rejecter is not None and isinstance(committed, dict):
            self._rejecter.consider(committed)  # a blocked caller: hang up (lines/reject.py)

    def _log_state(self) -> None:
        if self.state == "up":
            log.info("line %s up on %s", self.name, self.config.port)
        else:
            log.warning("line %s down: %s", self.name, self.reason)


def _brief(exc: BaseException) -> str:
    """``read failed: [Errno 5] Input/output error`` → ``Input/output error``."""
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return strerror
    text = str(exc)
    if "returned no data" in text:  # pyserial's words for a hang-up (POLLHUP, then EOF)
        return "hang-up"
    return text.rsplit("] ", 1)[-1] if "] " in text else text or type(exc).__name__
