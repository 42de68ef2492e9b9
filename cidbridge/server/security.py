"""Who may connect, and how much a client may ask of the daemon.

Caller numbers are personal data.  The rules, shared by Socket.IO and the HTTP API:

* **Tokens.**  When tokens are configured (always, beyond loopback: the config
  refuses to start otherwise) every Socket.IO connection and every ``/api`` request
  must present one.  Tokens are compared in constant time, and only a token's *name*
  ever reaches a log line.
* **Rate limits.**  :class:`RateLimiter` is a token bucket per key.  Socket.IO uses
  one for connection attempts per peer address (``[server] connect_burst`` and
  ``connect_rate``: a client stuck reconnecting in a loop, or guessing tokens, is
  refused for a while; connected clients are not touched) and one for events a
  client sends (the panel protocol needs none, so a client that floods is
  disconnected).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Events a connected client may send in a burst, then per second (panels send none).
CLIENT_EVENT_BURST = 20
CLIENT_EVENT_RATE = 5.0
#: Largest message a client may send over Socket.IO, and largest HTTP request body.
MAX_CLIENT_MESSAGE = 16_000
MAX_HTTP_BODY = 16_000


def check_token(tokens: dict[str, str], offered: object) -> str | None:
    """The name of the configured token ``offered`` matches, or None.

    Every configured token is compared (in constant time) whatever matches, so the
    time taken says nothing about which token, or how much of one, was right.
    """
    if not isinstance(offered, str):
        return None
    offered_bytes = offered.encode()
    match = None
    for name, token in tokens.items():
        if hmac.compare_digest(token.encode(), offered_bytes):
            match = name
    return match


def bearer_token(headers: Any, query: Any) -> str | None:
    """The token an HTTP request offers: ``Authorization: Bearer …`` or ``?token=…``."""
    header = headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return query.get("token")


def peer_address(environ: dict[str, Any]) -> str:
    """The client's address for a Socket.IO connection.

    python-engineio's ASGI driver hard-codes ``REMOTE_ADDR`` to 127.0.0.1; the ASGI
    scope has the real one (already taken from ``X-Forwarded-For`` by uvicorn when the
    request comes from a trusted proxy, see ``FORWARDED_ALLOW_IPS``).
    """
    client = (environ.get("asgi.scope") or {}).get("client")
    return str(client[0]) if client else "unknown"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: ``burst`` at once, refilled at ``rate`` per second.

    Memory is bounded: at most ``max_keys`` buckets are kept; full buckets are the
    first forgotten (a forgotten key starts full again, which is what it was).
    """

    def __init__(
        self,
        burst: float,
        rate: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = rate
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[object, _Bucket] = {}

    def allow(self, key: object, cost: float = 1.0) -> bool:
        """Take ``cost`` from ``key``'s bucket; False (and nothing taken) if it is short."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < cost:
            return False
        bucket.tokens -= cost
        return True

    def forget(self, key: object) -> None:
        self._buckets.pop(key, None)

    def _prune(self, now: float) -> None:
        full = [
            key
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst
        ]
        for key in full or list(self._buckets)[: self.max_keys // 2]:
            del self._buckets[key]


class LogLimiter:
    """At most one log line per key every ``interval`` seconds, counting the rest.

    A panel left with a wrong token retries every few seconds for months; one line a
    minute says so without burying the journal.  Memory is bounded like
    :class:`RateLimiter`'s.
    """

    def __init__(
        self, interval: float = 60.0, *, max_keys: int = 1_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        #: key -> (when it was last logged, refusals not logged since)
        self._seen: dict[object, tuple[float, int]] = {}

    def check(self, key: object) -> int | None:
        """None to stay quiet; else log now, mentioning this many suppressed repeats."""
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval:
            self._seen[key] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._seen) >= self.max_keys:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
            if len(self._seen) >= self.max_keys:
                return None  # too many distinct peers at once: the counters still count them
        self._seen[key] = (now, 0)
        return last[1] if last is not None else 0


class BodyTooLarge(Exception):
    """An HTTP request body over its limit (answer 413); the message says the limit."""


async def read_capped(request: Any, limit: int) -> bytes:
    """A Starlette request's body, refused (:class:`BodyTooLarge`) past ``limit`` bytes.

    Checks the declared ``Content-Length`` first, then counts what actually arrives, so
    a client cannot make the daemon buffer more than ``limit`` by lying or by chunking.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
