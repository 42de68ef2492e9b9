"""ASGI layers in front of everything the daemon serves (HTTP, Socket.IO, SSE, the panel).

From the outside in (:func:`guarded`):

1. :class:`SecurityHeaders` — every response carries a Content-Security-Policy with
   no inline script, ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``
   (and ``frame-ancestors 'none'``) and ``Referrer-Policy: no-referrer``.  It only
   adds headers, so it may sit outside the Host check: refusals carry them too.
2. :class:`HostCheck` — Starlette's ``TrustedHostMiddleware``: a request whose
   ``Host`` is not loopback (``127.0.0.1``, ``[::1]``, ``localhost``, any port), the
   configured ``[server] host``, or a name in ``[server] allowed_hosts`` is answered
   400 before any route, Socket.IO included.  That is what stops DNS rebinding: a
   web page whose name an attacker re-points at 127.0.0.1 still sends its own name
   as ``Host``.  Refusals are logged once a minute per host name.
3. :class:`NoJsonp` — Engine.IO's JSONP polling (``?j=``) is refused: it answers
   with a script any page may include, outside CORS.

And, around Socket.IO and the HTTP API (in :mod:`cidbridge.server.web`), an
:class:`OriginLog`: a browser hides why a cross-origin request failed from the page
(socket.io-client only says ``xhr poll error``), so the daemon logs, once a minute
per origin, each page origin that is not in ``[server] cors_origins``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cidbridge.server.auth import same_origin
from cidbridge.server.security import LogLimiter, client_address

log = logging.getLogger(__name__)

#: Host names every daemon answers to, whatever the configuration.
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")
#: ``[server] host`` values that mean "every interface": no name to allow from them.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_ADMITTED = "cidbridge.host_admitted"
# The layers that only pass a request on have a plain ``__call__`` returning the inner
# app's awaitable instead of an ``async def`` awaiting it ("pass-through" below): a
# WebSocket's whole connection is spent inside the app, and every ``await`` on the way
# would keep a coroutine frame (about 250 bytes) per connected client for that long.
# The outermost app is therefore not a coroutine function: the daemon tells uvicorn it
# is ASGI 3 (``interface="asgi3"``) rather than letting it guess.


def host_pattern(name: str) -> str:
    """``name`` the way ``TrustedHostMiddleware`` compares it: lower case, IPv6 in brackets."""
    name = name.strip().lower()
    try:
        if ipaddress.ip_address(name.strip("[]")).version == 6:
            return f"[{name.strip('[]')}]"
    except ValueError:
        pass
    return name


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> list[str]:
    """Loopback names, the listening host when it is a name or an address, and ``extra``."""
    hosts = list(LOOPBACK_HOSTS)
    for name in (host, *extra):
        pattern = host_pattern(name)
        if pattern not in WILDCARD_HOSTS and pattern not in hosts:
            hosts.append(pattern)
    return hosts


class HostCheck:
    """``TrustedHostMiddleware`` around ``app``, logging refusals; :meth:`allow` replaces the list."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self._refusals = LogLimiter()
        self.allow(hosts)

    def allow(self, hosts: Sequence[str]) -> None:
        """From now on, answer these hosts (a reload)."""
        self.hosts = list(hosts)
        self._check = TrustedHostMiddleware(self._admit, allowed_hosts=self.hosts, www_redirect=False)

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only marked here: the app runs from __call__, once the check's frames are gone
        # (a WebSocket would keep them for as long as it is connected).
        scope[_ADMITTED] = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # Host names are case-insensitive; Starlette 1.7 (our floor) compares them as given.
        # (Copied only when needed: the scope's headers stay with a WebSocket while it lasts.)
        if any(k == b"host" and v != v.lower() for k, v in scope["headers"]):
            scope["headers"] = [(k, v.lower()) if k == b"host" else (k, v) for k, v in scope["headers"]]
        await self._check(scope, receive, send)
        if scope.get(_ADMITTED):
            await self.app(scope, receive, send)
        else:
            host = (Headers(scope=scope).get("host") or "")[:100]
            if (repeats := self._refusals.check(host)) is not None:
                more = f" ({repeats} more since the last report)" if repeats else ""
                log.warning(
                    "refused a request for host %r from %s: not an allowed host name "
                    "(list the names browsers use in [server] allowed_hosts)%s",
                    host,
                    client_address(scope),
                    more,
                )


class NoJsonp:
    """Refuses Engine.IO JSONP polling (a ``j`` query parameter) before python-engineio sees it."""

    def __init__(self, app: ASGIApp, path: str = "/socket.io/") -> None:
        self.app = app
        self.path = path

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Pass-through: not a coroutine (see the top of this module).
        if scope["type"] == "http" and scope["path"].startswith(self.path):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            if "j" in query:
                response = PlainTextResponse("JSONP polling is not supported", status_code=400)
                return response(scope, receive, send)
        return self.app(scope, receive, send)


class OriginLog:
    """Logs requests from pages of origins that ``[server] cors_origins`` does not allow.

    It refuses nothing: Engine.IO answers such a handshake 400 itself, and the HTTP
    API sends no CORS header for it, so the browser keeps the answer from the page.
    But the browser tells the page only that the request failed (socket.io-client:
    ``xhr poll error`` or ``websocket error``, retried forever), so the reason has to
    be where someone can read it: one warning per origin per minute, naming the origin
    and the key.  ``origins`` gives the live allow-list (a reload replaces it).
    """

    def __init__(self, app: ASGIApp, origins: Callable[[], Sequence[str]]) -> None:
        self.app = app
        self.origins = origins
        self._reports = LogLimiter()

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Pass-through: not a coroutine (see the top of this module).
        if scope["type"] in ("http", "websocket"):
            self._check(scope)
        return self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        conn = HTTPConnection(scope)
        origin = conn.headers.get("origin")
        if origin is None or same_origin(conn):
            return
        allowed = self.origins()
        if "*" in allowed or origin in allowed:
            return
        shown = origin[:100]
        if (repeats := self._reports.check(shown)) is not None:
            more = f" ({repeats} more since the last report)" if repeats else ""
            log.warning(
                "refused a page at origin %r (%s %s from %s): that origin is not in [server] "
                "cors_origins; add it there if the page is yours, the browser hides this reason "
                "from the page%s",
                shown,
                scope.get("method", "WebSocket"),
                scope["path"][:60],
                client_address(scope),
                more,
            )


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Pass-through: not a coroutine (see the top of this module).
        if scope["type"] != "http":
            # WebSockets carry no page.  Their ``send`` must stay uvicorn's own bound
            # method: the fan-out reaches the transport through it (server/fanout.py).
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def guarded(
    app: ASGIApp, hosts: Sequence[str], socketio_path: str = "/socket.io/"
) -> tuple[ASGIApp, HostCheck]:
    """``app`` behind the three layers; also the :class:`HostCheck`, whose list a reload replaces."""
    host_check = HostCheck(NoJsonp(app, socketio_path), hosts)
    return SecurityHeaders(host_check), host_check
