"""The hub: where call events become durable, numbered, and fanned out.

Every event goes through :meth:`Hub.publish`, which (1) adds the wall-clock time, the
number formatted for people and the phonebook's name for it, (2) commits it to the
call log, which assigns its ``id``, and only then (3) hands it to every sink
(Socket.IO, the panel's stream, metrics).  Store, then broadcast: an id a browser has
seen is always in the log.

Names: ``name`` is the one to show (the phonebook's when the number is in it, else
the network's); ``network_name`` is what the network sent; ``note`` is the
phonebook's note.

Sinks are delivered to in order, one event at a time, so every client sees ids in
increasing order.  A failing sink is logged and skipped; it never stops the others
or the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cidbridge import numbers
from cidbridge.core.tracker import END, UNKNOWN, CallEvent
from cidbridge.phonebook import Contact, Phonebook
from cidbridge.store import CallLog

log = logging.getLogger(__name__)

#: Version of the event payload (the README's "cti-event schema"); bumped on incompatible changes.
SCHEMA_VERSION = 1
#: Events a live subscriber may fall behind by before it is cut off (it then catches up).
SUBSCRIBER_QUEUE = 1000


class Sink(Protocol):
    """Receives every committed event, in id order."""

    async def deliver(self, event: dict[str, Any]) -> None: ...


def now_iso() -> str:
    """The wall-clock time now, ISO 8601 with the local offset, to the millisecond."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


class Subscription:
    """A live feed of committed events for one reader (the panel's stream)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Too slow: stop feeding it; the reader sees None, reconnects and catches up.
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    def close(self) -> None:
        self._hub._subscriptions.discard(self)


class Hub:
    """Store, then broadcast.  See the module doc."""

    def __init__(
        self,
        log_store: CallLog,
        *,
        region: str = "KR",
        phonebook: Phonebook | None = None,
        clock: Callable[[], str] = now_iso,
    ) -> None:
        self.store = log_store
        self.region = region
        #: Names that win over the network's (replaceable on reload).
        self.phonebook = phonebook
        self.clock = clock
        self.sinks: list[Sink] = []
        self._subscriptions: set[Subscription] = set()
        #: Held from an event's commit until every sink has it (see Broadcaster's replay).
        self.commit_lock = asyncio.Lock()

    def use_phonebook(self, path: Path | None, region: str) -> None:
        """Look names up in the CSV at ``path`` (None: no phonebook); kept if unchanged."""
        current = self.phonebook
        if path is None:
            self.phonebook = None
        elif current is None or current.path != path or current.region != region:
            self.phonebook = Phonebook(path, region)
            self.phonebook.refresh()  # read it now: a broken file is logged at start

    # -- input -------------------------------------------------------------------

    async def publish(self, event: CallEvent) -> dict[str, Any]:
        """Commit a call event and broadcast it; return the payload with its ``id``."""
        payload: dict[str, Any] = {"v": SCHEMA_VERSION, **asdict(event)}
        payload["display"] = numbers.display(event.number, self.region)
        payload["e164"] = numbers.e164(event.number, self.region)
        payload["network_name"] = event.name
        payload["note"] = None
        contact = self._contact(event.number)
        if contact is not None:
            payload["name"] = contact.name
            payload["name_absence"] = None
            payload["note"] = contact.note
        return await self._commit(payload)

    async def end_unfinished(self) -> int:
        """End the calls a previous run left open (it crashed, or the power went).

        The call tracker that followed them is gone, so their outcome is ``unknown``;
        ending them keeps panels from showing a call as ringing forever.  Returns how
        many were ended.
        """
        unfinished = self.store.unfinished_calls()
        for call in unfinished:
            await self.publish(
                CallEvent(
                    END,
                    call["call_id"],
                    call["line"],
                    number=call["number"],
                    name=call["network_name"],
                    number_absence=call["number_absence"],
                    name_absence=call["name_absence"],
                    ring_count=call["rings"],
                    outcome=UNKNOWN,
                    waiting=call["waiting"],
                )
            )
        if unfinished:
            log.warning("ended %d call(s) left open by the previous run (outcome unknown)", len(unfinished))
        return len(unfinished)

    def _contact(self, number: str | None) -> Contact | None:
        if self.phonebook is None or not number:
            return None
        try:
            return self.phonebook.lookup(number)
        except Exception:  # a phonebook problem must never cost a call
            log.exception("phonebook lookup failed")
            return None

    async def line_state(self, line: str, state: str, reason: str | None = None) -> dict[str, Any]:
        """Commit and broadcast a line going ``up`` or ``down``."""
        payload = {
            "v": SCHEMA_VERSION,
            "type": "line",
            "call_id": None,
            "line": line,
            "state": state,
            "reason": reason,
        }
        return await self._commit(payload)

    async def relay(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Commit and broadcast an event another cidbridge node already committed.

        ``payload`` is kept as it is (its ``time``, ``display``, ``origin``); only the
        ``id`` is this log's.  Used by the cluster link (:mod:`cidbridge.server.cluster`).
        """
        return await self._commit(dict(payload), keep_time=True)

    async def _commit(self, payload: dict[str, Any], *, keep_time: bool = False) -> dict[str, Any]:
        # One event at a time from commit to the last sink: ids reach clients in order.
        async with self.commit_lock:
            if not (keep_time and payload.get("time")):
                payload["time"] = self.clock()
            payload["id"] = self.store.append(payload)
            for subscription in list(self._subscriptions):
                subscription.offer(payload)
            for sink in self.sinks:
                try:
                    await sink.deliver(payload)
                except Exception:
                    log.exception("sink %s failed on event %s", type(sink).__name__, payload["id"])
        return payload

    # -- output ------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """Start a live feed; combine with :meth:`CallLog.events_after` to catch up."""
        subscription = Subscription(self)
        self._subscriptions.add(subscription)
        return subscription
