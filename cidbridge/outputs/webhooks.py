"""Webhooks: each event POSTed as JSON to a URL, signed, in order, at least once, durably.

**The outbox is the call log.**  Every event is already in the log with its id, so
a webhook keeps only a *cursor* there (the ``cursors`` table: the last id it
delivered) and reads the events after it.  A receiver that is down for an hour, or
a daemon killed and restarted meanwhile, costs nothing but the wait: the sender
resumes at its cursor and sends every event it missed, oldest first.  The cursor
moves only after the receiver answered 2xx, so an event whose answer was lost (a
crash, a timeout) is sent again: at least once; the ``X-Cidbridge-Event-Id`` header
(and ``id`` in the body) lets the receiver drop a repeat.

* **Never slows the hub or another webhook.**  :meth:`WebhookOutput.deliver` only
  notes the newest id and wakes the sender; each webhook has its own task, HTTP
  connection and cursor.
* **Retries** any failure (no answer, a timeout, a non-2xx status, a redirect) with
  exponential backoff from 1 s, doubling up to ``max_backoff``; the event is not
  skipped (later ones would otherwise arrive before it).
* **Bounded.**  A webhook more than ``max_backlog`` events behind skips the oldest
  (counted in ``dropped``, logged); events deleted by the log's retention before
  they were sent are counted the same way.
* **Signed** (``secret``): ``X-Cidbridge-Signature: t=<unix time>,v1=<hex>``, the
  HMAC-SHA256 of ``<t>.<body>``, fresh for every attempt (see the README for how to
  verify it).
* **Redirects are not followed** (a moved receiver is reported, not silently
  followed to another host); the response body is read up to 64 kB, then dropped.
* **Calls from other nodes** (``origin`` events) are skipped unless ``relayed =
  true``: with the same webhook on every node of a cluster, each node sends its own
  lines' calls and the receiver gets each call once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import ssl
import time
import urllib.parse
from typing import Any

import httpx

from cidbridge import __version__
from cidbridge.config import WebhookConfig
from cidbridge.outputs import Backoff, Event, Output
from cidbridge.store import CallLog
from cidbridge.store.calllog import unix_time

log = logging.getLogger(__name__)
# httpx logs every request at info, URL and all: a URL may hold a token, and a busy
# webhook would fill the journal.  Failures reach the log through the output's state.
logging.getLogger("httpx").setLevel(logging.WARNING)

#: Response bytes read before the rest is dropped (and the connection closed).
MAX_RESPONSE = 64 * 1024
#: Events read from the log at a time.
BATCH = 100
RETRY_FIRST = 1.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Cidbridge-Signature`` value: ``t=<timestamp>,v1=<HMAC-SHA256 of "t.body">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def matches(wanted: tuple[str, ...], event: Event, *, relayed: bool) -> bool:
    """Whether a webhook that wants ``wanted`` (empty: everything) sends ``event``."""
    if "origin" in event and not relayed:
        return False
    if not wanted or event.get("type") in wanted:
        return True
    # "missed", "blocked": how a call ended (its end, or a correction to an ended call).
    outcome = event.get("outcome")
    return outcome in ("missed", "blocked") and outcome in wanted and event.get("type") in ("end", "update")


def body(event: Event, node: str) -> bytes:
    """The request body: the event as every other client sees it, with ``node``."""
    return json.dumps({**event, "node": node}, ensure_ascii=False, separators=(",", ":")).encode()


def _why(exc: BaseException) -> str:
    """The root cause of a failed request in a few words (``Connection refused``)."""
    cause: BaseException | None = exc
    for _ in range(6):
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


class DeliveryError(Exception):
    """One attempt failed; the message is what the log and /healthz show."""


class WebhookOutput(Output):
    """One ``[[webhooks]]`` entry.  ``store`` is the daemon's open call log."""

    def __init__(self, config: WebhookConfig, store: CallLog, node: str) -> None:
        super().__init__(f"webhook:{config.name}", queue_limit=1)  # the log is the queue
        self.config = config
        self.store = store
        self.node = node
        self.cursor_name = f"webhook:{config.name}"
        cursor = store.cursor(self.cursor_name)
        if cursor is None:
            # A new webhook starts with the events from now on, not the whole log.
            cursor = store.last_id()
            store.set_cursor(self.cursor_name, cursor)
        self.cursor = self._saved = cursor
        self.latest = store.last_id()
        self.retries = 0
        self.skipped = 0
        #: Unix time of the event being sent while it waits (lag), None when caught up.
        self._oldest_unsent: float | None = None
        self._wake = asyncio.Event()
        parts = urllib.parse.urlsplit(config.url)
        #: Where it goes, for logs: never the query string (it may hold a token).
        self.where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    # -- the hub's side ----------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        self.latest = max(self.latest, int(event["id"]))
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Events in the log after the last one sent (those the filter skips included)."""
        return max(0, self.latest - self.cursor)

    def status(self) -> dict[str, Any]:
        lag = 0.0 if self._oldest_unsent is None else max(0.0, time.time() - self._oldest_unsent)
        return {
            "state": self.state,
            "reason": self.reason,
            "queued": self.backlog,
            "delivered": self.delivered,
            "dropped": self.skipped,
            "url": self.where,
            # Exported by /metrics as cidbridge_output_<name>{output="webhook:<name>"}.
            "counters": {"retries": self.retries},
            "gauges": {"backlog": self.backlog, "lag_seconds": round(lag, 3)},
        }

    # -- the sender ----------------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.config
        verify: Any = True if cfg.ca_file is None else ssl.create_default_context(cafile=str(cfg.ca_file))
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(cfg.timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            trust_env=False,  # no proxy or .netrc from the environment: caller data goes where configured
            verify=verify,
            headers={"User-Agent": f"cidbridge/{__version__}", **cfg.headers},
        ) as client:
            if self.backlog == 0:
                self.set_state("up")
            while True:
                self._wake.clear()
                await self._keep_within_backlog()
                batch = self.store.events_after(self.cursor, limit=BATCH)
                if not batch:
                    self._oldest_unsent = None
                    await self._wake.wait()
                    continue
                self._count_pruned(batch[0]["id"])
                for event in batch:
                    if not matches(cfg.events, event, relayed=cfg.relayed):
                        self.cursor = int(event["id"])  # not for this webhook: passed over
                    elif not await self._send_until_delivered(client, event):
                        break  # fell too far behind while retrying: skip ahead first
                self._save_cursor()

    async def _send_until_delivered(self, client: httpx.AsyncClient, event: Event) -> bool:
        """Send ``event`` until the receiver takes it (True), or the backlog bound is hit (False)."""
        self._oldest_unsent = unix_time(str(event.get("time", "")))
        payload = body(event, self.node)
        backoff = Backoff(RETRY_FIRST, self.config.max_backoff)
        while True:
            try:
                await self._post(client, event, payload)
            except DeliveryError as exc:
                self.retries += 1
                self.set_state("down", str(exc))
                await asyncio.sleep(backoff.next())
                if self.backlog > self.config.max_backlog:
                    return False
                continue
            self.delivered += 1
            self.cursor = int(event["id"])
            self._save_cursor()
            self.set_state("up")
            return True

    async def _post(self, client: httpx.AsyncClient, event: Event, payload: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Cidbridge-Event-Id": str(event["id"]),
            "X-Cidbridge-Event-Type": str(event.get("type")),
            "X-Cidbridge-Node": self.node,
            "Idempotency-Key": f"{self.node}:{event['id']}",
        }
        if self.config.secret:
            headers["X-Cidbridge-Signature"] = signature(self.config.secret, int(time.time()), payload)
        try:
            async with client.stream("POST", self.config.url, content=payload, headers=headers) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_RESPONSE:
                        break  # closing an unread stream closes the connection too
        except httpx.TimeoutException:
            raise DeliveryError(f"{self.where}: no answer within {self.config.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.where}: {_why(exc)}") from None
        except Exception as exc:
            # Something under httpx not mapped to its errors (a receiver dying mid-request
            # can surface that way on some versions): one failed attempt, retried like
            # any other, never the end of this webhook's sender.
            log.debug("webhook %s: request failed", self.config.name, exc_info=True)
            raise DeliveryError(f"{self.where}: {type(exc).__name__}: {exc}") from None
        finally:
            client.cookies.clear()  # a receiver's cookies are not sent back
        if response.is_redirect:
            moved = urllib.parse.urlsplit(response.headers.get("location", ""))
            target = f"{moved.scheme}://{moved.netloc}{moved.path}" if moved.netloc else moved.path
            raise DeliveryError(
                f"{self.where}: HTTP {response.status_code} redirect to {target or '?'} not followed; "
                "set the webhook's url to the new address"
            )
        if not response.is_success:
            raise DeliveryError(
                f"{self.where}: HTTP {response.status_code} {response.reason_phrase}".rstrip()
            )

    def _save_cursor(self) -> None:
        if self.cursor != self._saved:
            self.store.set_cursor(self.cursor_name, self.cursor)
            self._saved = self.cursor

    # -- bounds ---------------------------------------------------------------------------

    async def _keep_within_backlog(self) -> None:
        """Skip the oldest events of a backlog beyond ``max_backlog`` (counted, logged)."""
        over = self.backlog - self.config.max_backlog
        if over <= 0:
            return
        start, stop = self.cursor, self.cursor + over
        skipped = 0
        while start < stop:
            chunk = [
                e for e in self.store.events_after(start, limit=min(1000, stop - start)) if e["id"] <= stop
            ]
            if not chunk:
                break
            skipped += sum(matches(self.config.events, e, relayed=self.config.relayed) for e in chunk)
            start = int(chunk[-1]["id"])
            await asyncio.sleep(0)
        self.skipped += skipped
        self.cursor = stop
        self._save_cursor()
        log.warning(
            "webhook %s fell %d events behind (max_backlog %d): skipped the oldest %d",
            self.config.name,
            over + self.config.max_backlog,
            self.config.max_backlog,
            skipped,
        )

    def _count_pruned(self, first_id: int) -> None:
        """Events deleted by retention before they were sent show as a gap after the cursor."""
        gap = first_id - self.cursor - 1
        if gap > 0:
            self.skipped += gap
            log.warning(
                "webhook %s: %d event(s) were deleted by retention before they could be sent",
                self.config.name,
                gap,
            )
