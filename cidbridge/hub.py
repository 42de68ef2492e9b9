"""The hub: where call events become durable, numbered, and fanned out.

Every event goes through :meth:`Hub.publish`, which (1) adds the wall-clock time, the
number formatted for people and the phonebook's name for it, (2) commits it to the
call log, which assigns its ``id``, and only then (3) hands it to every sink
(Socket.IO, the panel's stream, metrics).  Store, then broadcast: an id a browser has
seen is always in the log.

Names: ``name`` is the one to show (the phonebook's when the number is in it, else
the network's); ``network_name`` is what the network sent; ``note`` is the
phonebook's note.  The phonebook is in the call log database
(:class:`~cidbridge.store.directory.Directory`); a ``[calls] phonebook`` file is
merged into it when it changes.

Blocking: once a call's caller is known (its number, or why there is none), the
block list decides, once per call.  Every event of a blocked call carries
``blocked: true``, and its outcome is ``blocked`` unless someone answered it.  The
line that read the call sees ``blocked`` in what :meth:`Hub.publish` returns, and a
modem line hangs up (:mod:`cidbridge.lines.reject`).

Announcements are changes that are not call events (a contact edited, a missed call
returned, the block list changed): :meth:`Hub.announce` hands them to the panels'
streams and to every announcer (Socket.IO's ``cti-directory``).  They are not in the
call log and have no id; a panel that reconnects fetches what it shows again.

Sinks are delivered to in order, one event at a time, so every client sees ids in
increasing order.  A failing sink is logged and skipped; it never stops the others
or the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from cidbridge import numbers
from cidbridge.core.tracker import ANSWERED, END, MISSED, UNKNOWN, CallEvent
from cidbridge.phonebook import PhonebookFile
from cidbridge.store import CallLog
from cidbridge.store.directory import Contact, Directory

log = logging.getLogger(__name__)

#: Version of the event payload (the README's "cti-event schema"); bumped on incompatible changes.
SCHEMA_VERSION = 1
#: Events a live subscriber may fall behind by before it is cut off (it then catches up).
SUBSCRIBER_QUEUE = 1000
#: The outcome of a blocked call nobody answered.
BLOCKED = "blocked"
#: Calls whose block verdict is remembered (a call's later events reuse it).
_VERDICTS = 512
#: A call event's fields, in the payload's order.
_EVENT_FIELDS = tuple(field.name for field in fields(CallEvent))


class Sink(Protocol):
    """Receives every committed event, in id order."""

    async def deliver(self, event: dict[str, Any]) -> None: ...


def now_iso() -> str:
    """The wall-clock time now, ISO 8601 with the local offset, to the millisecond."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Announcement:
    """A change that is not a call event (see the module doc), on a subscription's queue."""

    payload: dict[str, Any]


class Subscription:
    """A live feed of committed events (and announcements) for one reader (the panel's stream)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[dict[str, Any] | Announcement | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False

    def offer(self, event: dict[str, Any] | Announcement) -> None:
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
        clock: Callable[[], str] = now_iso,
    ) -> None:
        self.store = log_store
        self.region = region
        #: The phonebook and the block list (in the call log database).
        self.directory = Directory(log_store, lambda: self.region)
        #: The ``[calls] phonebook`` file merged into it, if one is configured.
        self.phonebook_file: PhonebookFile | None = None
        self.clock = clock
        self.sinks: list[Sink] = []
        #: Called with every announcement (Socket.IO's ``cti-directory``).
        self.announcers: list[Callable[[dict[str, Any]], Awaitable[None]]] = []
        self._subscriptions: set[Subscription] = set()
        self._verdicts: OrderedDict[str, bool] = OrderedDict()
        #: Held from an event's commit until every sink has it (see Broadcaster's replay).
        self.commit_lock = asyncio.Lock()

    def use_phonebook(self, path: Path | None, region: str) -> None:
        """Merge the file at ``path`` into the phonebook now and whenever it changes (None: no file)."""
        self.region = region
        if path is None:
            self.phonebook_file = None
            return
        if self.phonebook_file is None or self.phonebook_file.path != path:
            self.phonebook_file = PhonebookFile(path)
        self.sync_phonebook(force=True)  # now: a broken file is logged at start and reload

    def sync_phonebook(self, *, force: bool = False) -> None:
        """Merge the phonebook file in if it changed (one ``stat`` a second at most)."""
        book = self.phonebook_file
        if book is None:
            return
        raw = book.changed(force=force)
        if raw is not None:
            self.directory.sync_file(book.path, raw)

    # -- input -------------------------------------------------------------------

    async def publish(self, event: CallEvent) -> dict[str, Any]:
        """Commit a call event and broadcast it; return the payload with its ``id``."""
        # Not dataclasses.asdict: its deep copy of every field (all plain values here)
        # was a tenth of the time before the commit.
        payload: dict[str, Any] = {"v": SCHEMA_VERSION}
        for name in _EVENT_FIELDS:
            payload[name] = getattr(event, name)
        try:
            payload["display"] = numbers.display(event.number, self.region)
            payload["e164"] = numbers.e164(event.number, self.region)
        except Exception:  # formatting must never cost a call: shown as delivered
            log.exception("formatting number of event on %s failed", event.line)
            payload["display"], payload["e164"] = event.number, None
        payload["network_name"] = event.name
        payload["note"] = None
        contact = self._contact(event.number)
        if contact is not None:
            if contact.name:
                payload["name"] = contact.name
                payload["name_absence"] = None
            payload["note"] = contact.note
        if self._blocked(payload, known=contact is not None):
            payload["blocked"] = True
            if payload.get("outcome") in (MISSED, UNKNOWN):
                payload["outcome"] = BLOCKED
        committed = await self._commit(payload)
        if event.type == END and committed.get("outcome") == ANSWERED:
            await self._answered(committed)
        return committed

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
        if not number:
            return None
        try:
            self.sync_phonebook()
            return self.directory.lookup(number)
        except Exception:  # a phonebook problem must never cost a call
            log.exception("phonebook lookup failed")
            return None

    def _blocked(self, payload: dict[str, Any], *, known: bool) -> bool:
        """Whether this call is blocked: decided once, when its caller is first known."""
        call_id = payload["call_id"]
        verdict = self._verdicts.get(call_id)
        if verdict is not None:
            return verdict
        number, absence = payload.get("number"), payload.get("number_absence")
        if not number and not absence:
            return False  # a ring before the caller ID: not decided yet
        try:
            rule = self.directory.block_list().match(self.directory.caller_view(number, absence, known))
        except Exception:  # a broken block list must never cost a call
            log.exception("block list check failed")
            rule = None
        self._verdicts[call_id] = rule is not None
        while len(self._verdicts) > _VERDICTS:
            self._verdicts.popitem(last=False)
        if rule is not None:
            log.info(
                "call %s on %s is blocked (rule %d, %s)", call_id, payload.get("line"), rule.id, rule.kind
            )
        return rule is not None

    async def _answered(self, event: dict[str, Any]) -> None:
        """An answered call returns its caller's earlier missed calls."""
        try:
            returned = self.directory.answered_later(event["call_id"])
        except Exception:
            log.exception("marking missed calls returned failed")
            return
        if returned:
            await self.announce({"type": "missed", "returned": returned, "how": "answered"})

    async def announce(self, change: dict[str, Any]) -> dict[str, Any]:
        """Send a change that is not a call event to every panel (see the module doc)."""
        payload = {"v": SCHEMA_VERSION, **change, "time": self.clock()}
        for subscription in list(self._subscriptions):
            subscription.offer(Announcement(payload))
        for announcer in self.announcers:
            try:
                await announcer(payload)
            except Exception:
                log.exception("announcer %s failed", getattr(announcer, "__qualname__", announcer))
        return payload

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

    def end_subscriptions(self) -> None:
        """Tell every live feed that there is no more (shutdown): its reader sees None and stops."""
        for subscription in list(self._subscriptions):
            subscription.overflowed = True
            with contextlib.suppress(asyncio.QueueFull):
                subscription.queue.put_nowait(None)
