"""Who may connect, and how much a client may ask of the daemon.

Caller numbers are personal data.  The rules, shared by Socket.IO and the HTTP API:

* **Tokens.**  When tokens are configured (always, beyond loopback: the config
  refuses to start otherwise) every Socket.IO connection and every ``/api`` request
  must present one.  Tokens are compared in constant time, and only a token's *name*
  ever reaches a log line.
* **One parser.**  Every HTTP route reads the token the same way
  (:func:`offered_token`): ``Authorization: Bearer <token>`` (any spacing, any case
  of ``Bearer``), ``?token=`` only where a route allows it.
* **Guessing is slow.**  :class:`FailedLogins` counts wrong tokens per client address,
  for HTTP and Socket.IO together: after :data:`AUTH_FAILURE_BURST` of them the
  address is refused (429, ``Retry-After``) until its allowance refills, one guess
  every ``1 / AUTH_FAILURE_RATE`` seconds.
* **Rate limits.**  :class:`RateLimiter` is a token bucket per key.  Socket.IO uses
  one for connection attempts per peer address (``[server] connect_burst`` and
  ``connect_rate``: a client stuck reconnecting in a loop is refused for a while;
  connected clients are not touched) and one for events a client sends (the panel
  protocol needs none, so a client that floods is disconnected).
* **Addresses.**  Only a parsed IP address (:func:`client_address`) is ever used as a
  key or logged, never header text.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import math
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
#: Seconds a request body may take to arrive (a body sent a byte at a time holds a connection).
BODY_TIMEOUT = 10.0
#: Wrong tokens one address may offer at once, then per second (one guess every 5 s).
AUTH_FAILURE_BURST = 10
AUTH_FAILURE_RATE = 0.2

log = logging.getLogger(__name__)


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


def offered_token(headers: Any, query: Any = None) -> str | None:
    """The token an HTTP request offers: ``Authorization: Bearer <token>``, else ``?token=``.

    The one parser every route uses.  ``Bearer`` is matched in any case and any
    number of spaces may follow it (RFC 7235 allows more than one).  ``query`` is
    looked at only when given (the routes that accept a token in the URL) and only
    when there is no ``Authorization`` header.
    """
    header = headers.get("authorization")
    if header is not None:
        scheme, _, rest = header.strip().partition(" ")
        token = rest.strip()
        return token if scheme.lower() == "bearer" and token else None
    if query is not None:
        return query.get("token") or None
    return None


def client_address(scope: Any) -> str:
    """The client's IP address from an ASGI scope, normalised; ``"unknown"`` if it is not one.

    uvicorn puts ``X-Forwarded-For`` text there when the request comes through a
    trusted proxy (``[server] trusted_proxies``); whatever the header said, only an
    address that parses as one is used as a rate-limit key or written to the log.
    """
    client = scope.get("client") if scope else None
    try:
        return str(ipaddress.ip_address(str(client[0]))) if client else "unknown"
    except ValueError:
        return "unknown"


def peer_address(environ: dict[str, Any]) -> str:
    """The client's address for a Socket.IO connection.

    python-engineio's ASGI driver hard-codes ``REMOTE_ADDR`` to 127.0.0.1; the ASGI
    scope has the real one (see :func:`client_address`).
    """
    return client_address(environ.get("asgi.scope") or {})


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

    def wait(self, key: object, cost: float = 1.0) -> float:
        """Seconds until ``key`` may take ``cost`` (0 when it may now); takes nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket.tokens + (self.clock() - bucket.updated) * self.rate)
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

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


class FailedLogins:
    """Wrong tokens per client address, shared by every HTTP route and Socket.IO.

    Each wrong token takes one from the address's allowance (:data:`AUTH_FAILURE_BURST`,
    refilled at :data:`AUTH_FAILURE_RATE` per second).  While it is empty the address
    is refused before its token is even looked at (:meth:`retry_after`), so a right
    guess cannot be told from a wrong one.  Failures are logged once a minute per
    address, with the count of those not logged.
    """

    def __init__(
        self,
        burst: float = AUTH_FAILURE_BURST,
        rate: float = AUTH_FAILURE_RATE,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allowance = RateLimiter(burst, rate, clock=clock)
        self._log = LogLimiter(clock=clock)

    def retry_after(self, address: str) -> int:
        """Whole seconds ``address`` must wait before it may offer a token again; 0 = now."""
        return math.ceil(self._allowance.wait(address))

    def failed(self, address: str, where: str) -> None:
        """``address`` offered a wrong token to ``where`` (a route, or "Socket.IO")."""
        self._allowance.allow(address)
        if (repeats := self._log.check(address)) is not None:
            more = f" ({repeats} more since the last report)" if repeats else ""
            log.warning("wrong token from %s on %s%s", address, where, more)


class BodyError(Exception):
    """A request body that cannot be read as JSON; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_json(request: Any, limit: int = MAX_HTTP_BODY) -> Any:
    """The request's JSON body, at most ``limit`` bytes; :class:`BodyError` otherwise.

    ``Content-Type: application/json`` (or ``…+json``) is required: a missing or empty
    one is refused (415), because a cross-origin page can send a body without a type
    and without asking the browser's CORS preflight.  Nesting too deep for the parser
    is a 400 like any other bad JSON.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        shown = repr(kind) if kind else "none"
        raise BodyError(415, f"the body must be JSON (Content-Type: application/json), not {shown}")
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            raw = await read_capped(request, limit)
    except BodyTooLarge as exc:
        raise BodyError(413, str(exc)) from None
    except TimeoutError:
        raise BodyError(408, f"the body took longer than {BODY_TIMEOUT:g} s to arrive") from None
    try:
        return json.loads(raw)
    except RecursionError:
        raise BodyError(400, "the body is not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"the body is not valid JSON ({exc})") from None
