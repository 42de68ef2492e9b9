"""Outputs: the other protocols every committed event goes out on.

Socket.IO and the panel's stream are the daemon's own clients; outputs are the
software a front desk already runs (NCID clients, POS systems listening for
CallerID.com UDP, Home Assistant over MQTT, webhooks).  Each is a hub sink like the
broadcaster, with one rule the broadcaster does not need: **an output never slows
the hub**.  :meth:`Output.deliver` only puts the event in the output's own bounded
queue (:class:`EventQueue`) and returns; the output's own task does the I/O.  A
consumer that is down or slow costs its own queue: once it is full the oldest event
is dropped and counted, and nothing else notices.

What every output gives, and the rest of the daemon relies on:

* ``name``: unique, used in ``/healthz`` (``"outputs": {name: status}``), in
  ``/metrics`` (``cidbridge_output_*{output=name}``) and in log lines;
* :meth:`Output.status`: ``state`` (``"starting"``, ``"up"``, ``"down"``), ``reason``
  when down, and its counters (``queued``, ``delivered``, ``dropped``); an output may
  add ``"gauges"`` and ``"counters"`` (``{name: number}``), which ``/metrics``
  exports as ``cidbridge_output_<name>{output=…}`` (e.g. the NCID server's clients);
* :meth:`Output.start` (inside the event loop, after the web server) and
  :meth:`Output.close` (at shutdown, within a second);
* events arrive in id order, after their commit; an output sees every event the hub
  commits (calls relayed from other nodes included: skip ``"origin"`` events if the
  protocol should only carry this node's own calls).

:func:`build` makes the outputs a configuration asks for; the daemon adds the
resulting :class:`Outputs` to the hub's sinks after the broadcaster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cidbridge.config import Config
    from cidbridge.hub import Hub

__all__ = ["DEFAULT_QUEUE", "Backoff", "EventQueue", "Output", "Outputs", "build"]

log = logging.getLogger(__name__)

#: Events an output may fall behind by before the oldest are dropped.
DEFAULT_QUEUE = 1000

Event = dict[str, Any]


class EventQueue:
    """A bounded FIFO of events between the hub and one consumer.

    :meth:`put` never blocks and never fails: when the queue holds ``limit`` events
    the oldest one is dropped and counted in :attr:`dropped`.  :meth:`get` waits for
    an event; :meth:`unget` puts one back at the front (a send that failed is retried
    first, so order is kept).
    """

    def __init__(self, limit: int = DEFAULT_QUEUE) -> None:
        if limit < 1:
            raise ValueError("an event queue holds at least one event")
        self.limit = limit
        self.dropped = 0
        self._items: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: Event) -> None:
        if len(self._items) >= self.limit:
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        self._wake()

    def unget(self, event: Event) -> None:
        """Put ``event`` back at the front; if that overflows, the newest is dropped instead."""
        self._items.appendleft(event)
        if len(self._items) > self.limit:
            self._items.pop()
            self.dropped += 1
        self._wake()

    async def get(self) -> Event:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def get_nowait(self) -> Event | None:
        return self._items.popleft() if self._items else None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Backoff:
    """Capped exponential backoff: ``first`` seconds, doubling up to ``cap``, ±10 % jitter.

    The jitter keeps several cidbridge nodes that lost the same broker or receiver at
    the same moment from retrying in lockstep.  :meth:`reset` after a success.
    """

    def __init__(self, first: float, cap: float, *, jitter: float = 0.1) -> None:
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self._next = first

    def next(self) -> float:
        """The delay before the next attempt (and double the one after, up to the cap)."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * (1 + self.jitter * (2 * random.random() - 1))

    def reset(self) -> None:
        self._next = self.first


class Output:
    """Base class of an output: its name, state, counters and queue.

    A subclass implements :meth:`run` (consume :attr:`queue` until cancelled) and may
    override :meth:`deliver` (an output with a queue per client, like the NCID
    server, fans out there instead) and :meth:`status` (adding its own details).
    It reports its connection with :meth:`set_state`, which logs changes once.
    """

    def __init__(self, name: str, *, queue_limit: int = DEFAULT_QUEUE) -> None:
        self.name = name
        self.queue = EventQueue(queue_limit)
        self.state = "starting"
        self.reason: str | None = None
        self.delivered = 0
        self._task: asyncio.Task[None] | None = None

    # -- what the hub and the daemon call ------------------------------------------

    def deliver(self, event: Event) -> None:
        """Take one committed event; never blocks (see the module doc)."""
        self.queue.put(event)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run_logged(), name=f"output {self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, 1.0)

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "queued": len(self.queue),
            "delivered": self.delivered,
            "dropped": self.queue.dropped,
        }

    # -- for subclasses --------------------------------------------------------------

    async def run(self) -> None:
        """Consume :attr:`queue` until cancelled."""
        raise NotImplementedError

    def set_state(self, state: str, reason: str | None = None) -> None:
        """Record the consumer's state; a change is logged once (down at warning)."""
        if (state, reason) == (self.state, self.reason):
            return
        self.state, self.reason = state, reason
        if state == "down":
            log.warning("output %s is down: %s", self.name, reason or "no reason given")
        else:
            log.info("output %s is %s%s", self.name, state, f" ({reason})" if reason else "")

    async def _run_logged(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug in one output must not go unnoticed, nor take the daemon with it.
            log.exception("output %s stopped", self.name)
            self.set_state("down", f"stopped by an internal error: {exc}")


class Outputs:
    """Every configured output, as one hub sink."""

    def __init__(self, outputs: Iterable[Output] = ()) -> None:
        self.outputs = list(outputs)

    def __bool__(self) -> bool:
        return bool(self.outputs)

    async def deliver(self, event: Event) -> None:
        for output in self.outputs:
            try:
                output.deliver(event)
            except Exception:
                log.exception("output %s refused event %s", output.name, event.get("id"))

    async def start(self) -> None:
        for output in self.outputs:
            await output.start()

    async def close(self) -> None:
        await asyncio.gather(*(output.close() for output in self.outputs), return_exceptions=True)

    def status(self) -> dict[str, dict[str, Any]]:
        return {output.name: output.status() for output in self.outputs}


def build(config: Config, hub: Hub) -> Outputs:
    """The outputs ``config`` turns on (none by default)."""
    outputs: list[Output] = []
    # NCID server and CallerID.com UDP records (imported here: they import this module).
    if config.ncid.enabled:
        from cidbridge.outputs.ncid import NcidServer

        modems = {
            line.name for line in config.lines if line.device == "modem" and line.block_action == "hangup"
        }
        outputs.append(NcidServer(config.ncid, hub, hangs_up=modems.__contains__))
    if config.udp.send:
        from cidbridge.lines.udp_source import owns_line
        from cidbridge.outputs.callerid_udp import CallerIdUdpOutput, line_numbers

        udp = config.udp
        skip = (lambda line: owns_line(udp, line)) if udp.listen else (lambda line: False)
        outputs.append(CallerIdUdpOutput(udp, numbers=line_numbers(config), skip_line=skip))
    # MQTT and webhooks, imported only when configured (aiomqtt and httpx cost start-up time).
    if config.mqtt.enabled or config.webhooks:
        from cidbridge.server.web import node_name

        node = node_name(config)
        if config.mqtt.enabled:
            from cidbridge.outputs.mqtt import MqttOutput

            serial = [name for line in config.lines for name in (line.name, *line.channels.values())]
            outputs.append(MqttOutput(config.mqtt, node, lines=serial, connected_lines=serial))
        if config.webhooks:
            from cidbridge.outputs.webhooks import WebhookOutput

            outputs += [WebhookOutput(hook, hub.store, node) for hook in config.webhooks]
    return Outputs(outputs)
