"""Who is asking: the one authentication check every HTTP route and Socket.IO use.

A request is let in when no token is configured, or when it offers a configured
token, or a panel session cookie made from one:

* ``Authorization: Bearer <token>`` (:func:`~cidbridge.server.security.offered_token`);
* the ``cidbridge_session`` cookie, which the panel gets from ``POST /api/session``
  (or from ``GET /?token=…``, which then redirects to ``/`` so the token leaves the
  address bar).  The cookie holds the token's *name* and an HMAC of the token, never
  the token itself: it stays valid across restarts, and stops working when the token
  is removed or changed by a reload.  It is ``HttpOnly`` and ``SameSite=Strict``, and
  it counts only on same-origin requests (``Origin`` and ``Sec-Fetch-Site`` are
  checked), so another page, even one on the same host but another port, cannot
  use it: no cross-site request forgery;
* ``?token=`` only on the routes that cannot send a header (``GET /api/stream`` for
  third-party ``EventSource`` clients, and ``GET /`` for old bookmarks).

Wrong tokens are counted per client address (:class:`~cidbridge.server.security.FailedLogins`):
an address that keeps guessing gets 429 with ``Retry-After``.

Session routes:

* ``POST /api/session`` ``{"token": "…", "remember": true}`` → 204 and the cookie
  (kept :data:`REMEMBER_SECONDS` with ``remember``, else until the browser closes);
  401 wrong token, 429 too many wrong tokens;
* ``DELETE /api/session`` → 204, cookie cleared;
* ``GET /api/session`` → ``{"signed_in": bool, "token_required": bool}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cidbridge.server.security import (
    BodyError,
    FailedLogins,
    check_token,
    client_address,
    offered_token,
    read_json,
)

SESSION_COOKIE = "cidbridge_session"
#: How long a "remember me" session cookie lasts (about six months).
REMEMBER_SECONDS = 180 * 24 * 3600
_MAC_CONTEXT = b"cidbridge panel session v1:"


class Refused(Exception):
    """A request that is not let in; :meth:`response` is the answer."""

    def __init__(self, status: int, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    def response(self) -> Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        return JSONResponse({"error": str(self)}, status_code=self.status, headers=headers)


def session_value(name: str, token: str) -> str:
    """The cookie for token ``name``: ``v1.<name>.<HMAC-SHA256(token, name)>``, base64url."""
    mac = hmac.new(token.encode(), _MAC_CONTEXT + name.encode(), hashlib.sha256).digest()
    return f"v1.{_b64(name.encode())}.{_b64(mac)}"


def session_token_name(value: str, tokens: dict[str, str]) -> str | None:
    """The name of the configured token ``value`` was made from, or None."""
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != "v1":
        return None
    try:
        name = _unb64(parts[1]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    token = tokens.get(name)
    if token is None:
        return None
    return name if hmac.compare_digest(session_value(name, token), value) else None


def same_origin(conn: HTTPConnection) -> bool:
    """Whether a browser sent this from the daemon's own pages (or it is not a browser).

    ``Origin`` must be this very origin (scheme, host and port); without ``Origin``,
    ``Sec-Fetch-Site`` must say ``same-origin`` or ``none`` (typed in the address
    bar).  A request with neither comes from no browser, so forgery does not apply.
    """
    origin = conn.headers.get("origin")
    if origin is not None:
        scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
        return origin.lower() == f"{scheme}://{conn.headers.get('host', '')}".lower()
    return conn.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


class Auth:
    """The check, over the live token table (``tokens()`` follows reloads)."""

    def __init__(self, tokens: Callable[[], dict[str, str]], failures: FailedLogins | None = None) -> None:
        self.tokens = tokens
        self.failures = failures or FailedLogins()

    @property
    def required(self) -> bool:
        return bool(self.tokens())

    def check(
        self, conn: HTTPConnection, where: str, *, token: str | None = None, query: bool = False
    ) -> str:
        """The name of the token ``conn`` is let in with (``""`` when none is configured).

        ``token`` is one offered out of band (Socket.IO's ``auth.token``); ``query``
        allows ``?token=``.  Raises :class:`Refused`: 429 while the address is
        throttled, 401 for a wrong or missing token, 403 for the session cookie on a
        request from another origin.  ``where`` names the route in the log.
        """
        tokens = self.tokens()
        if not tokens:
            return ""
        if token is None:
            token = offered_token(conn.headers, conn.query_params if query else None)
        cookie = conn.cookies.get(SESSION_COOKIE)
        if token is None and cookie:
            # An HMAC cannot be guessed: a session cookie is judged even while the
            # address is throttled for wrong tokens (a panel on the same PC as a guesser).
            if not same_origin(conn):
                raise Refused(403, "the session cookie is only accepted from this server's own pages")
            name = session_token_name(cookie, tokens)
            if name is None:
                raise Refused(401, "the session has expired (its token was changed); sign in again")
            return name
        if token is None:
            raise Refused(401, "invalid or missing token")
        address = client_address(conn.scope)
        wait = self.failures.retry_after(address)
        if wait:
            raise Refused(429, f"too many wrong tokens from this address; retry in {wait} s", wait)
        name = check_token(tokens, token)
        if name is None:
            self.failures.failed(address, where)
            raise Refused(401, "invalid or missing token")
        return name

    def allows(self, conn: HTTPConnection, *, query: bool = False) -> bool:
        """Whether ``conn`` still presents valid credentials; counts nothing (a stream's re-check)."""
        tokens = self.tokens()
        if not tokens:
            return True
        token = offered_token(conn.headers, conn.query_params if query else None)
        if token is not None:
            return check_token(tokens, token) is not None
        cookie = conn.cookies.get(SESSION_COOKIE)
        return bool(cookie) and same_origin(conn) and session_token_name(cookie, tokens) is not None

    def refusal(self, request: Request, where: str, *, query: bool = False) -> Response | None:
        """None when ``request`` is let in, else the answer to send (for route handlers)."""
        try:
            self.check(request, where, query=query)
        except Refused as refused:
            return refused.response()
        return None

    # -- the session routes ------------------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        return [Route("/api/session", self.session, methods=["GET", "POST", "DELETE"])]

    async def session(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"signed_in": self.allows(request), "token_required": self.required})
        if not same_origin(request):
            return Refused(403, "sign in from this server's own pages").response()
        if request.method == "DELETE":
            response = Response(status_code=204)
            response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
            return response
        try:
            body = await read_json(request)
        except BodyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        if not isinstance(body, dict) or not isinstance(body.get("token"), str):
            return JSONResponse({"error": 'expected {"token": "…", "remember": true|false}'}, status_code=422)
        try:
            name = self.check(request, "/api/session", token=body["token"])
        except Refused as refused:
            return refused.response()
        response = Response(status_code=204)
        if name:
            self.set_cookie(response, request, name, remember=body.get("remember") is True)
        return response

    async def index_token(self, request: Request) -> Response:
        """``GET /?token=…``: the cookie for a right token, then ``/`` without the token."""
        response = RedirectResponse("/", status_code=303)
        try:
            name = self.check(request, "/", query=True)
        except Refused as refused:
            if refused.status == 429:
                return refused.response()
            return response  # the panel then says it is not signed in
        if name:
            self.set_cookie(response, request, name, remember=True)
        return response

    def set_cookie(self, response: Response, request: Request, name: str, *, remember: bool) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            session_value(name, self.tokens()[name]),
            max_age=REMEMBER_SECONDS if remember else None,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None


def connection(environ: dict[str, Any]) -> HTTPConnection:
    """A Starlette view of the request behind a Socket.IO connection (its ASGI scope)."""
    return HTTPConnection(environ.get("asgi.scope") or {"type": "http", "headers": []})
