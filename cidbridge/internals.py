"""Every private name of a library that cidbridge relies on, in one table, checked.

The fast fan-out (:mod:`cidbridge.server.fanout`), the smaller per-connection objects
(:mod:`cidbridge.server.lean`), the idle web server
(:mod:`cidbridge.daemon`), the client address used by the rate limits
(:mod:`cidbridge.server.security`), the log filter (:mod:`cidbridge.cli.serve`), the
connection caps
(:mod:`cidbridge.server.connections`) and the number metadata preload
(:mod:`cidbridge.numbers`) reach into python-engineio, python-socketio, uvicorn,
phonenumbers and asyncio.  pyproject.toml bounds those libraries to
versions where the names are known to exist, and each name is listed here with a
check of the shape cidbridge expects.

What a caller can rely on:

* :func:`problems` runs every check once per process (a few milliseconds, in a
  thread of its own, so it is safe inside a running event loop) and returns what
  changed, each as one sentence naming the library and its version, the name, the
  file that uses it and what cidbridge does without it.
* The daemon logs each problem as a warning at start.  A feature whose names are
  missing is turned off in favour of the slower path that needs none
  (:func:`usable`): the fan-out then sends every event through Engine.IO's queue.
* tests/upgrades/test_private_names.py runs each check as its own test, so an
  upgrade that removes or reshapes a name fails loudly there, naming it.

Libraries with no private name used: starlette, redis (the cluster uses its public
Streams commands), prometheus-client, asyncinotify (checked by grepping for ``._`` on
their objects; keep it that way or add a row).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

#: Features that can be turned off when their names are missing (see :func:`usable`).
FANOUT = "fanout"
CONNECTION_GUARD = "connection_guard"
PRELOAD = "number_metadata_preload"
LEAN = "lean_connections"


class Changed(Exception):
    """A private name is missing or no longer has the shape cidbridge relies on."""


@dataclass(frozen=True, slots=True)
class Internal:
    """One private name: whose it is, who uses it, and what happens without it."""

    library: str
    name: str
    used_by: str
    without: str
    check: Callable[[], Any]
    feature: str = ""

    def describe(self, reason: str) -> str:
        return (
            f"{self.library} {_version(self.library)}: {self.name} (used by {self.used_by}) "
            f"is missing or changed ({reason}); {self.without}. cidbridge is tested with the "
            "versions in constraints.txt: please report this"
        )


INTERNALS: list[Internal] = []


def _internal(library: str, name: str, used_by: str, without: str, feature: str = "") -> Callable[..., Any]:
    def register(check: Callable[[], Any]) -> Callable[[], Any]:
        INTERNALS.append(Internal(library, name, used_by, without, check, feature))
        return check

    return register


def _version(library: str) -> str:
    if library == "python":
        import platform

        return platform.python_version()
    try:
        return version(library)
    except PackageNotFoundError:
        return "(not installed)"


def _expect(condition: object, reason: str) -> None:
    if not condition:
        raise Changed(reason)


def _run(coro: Any) -> Any:
    """Run a coroutine to completion in a private event loop on a thread of its own."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, name="cidbridge-internals")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _eio_server() -> Any:
    import engineio

    return engineio.AsyncServer(async_mode="asgi", logger=False)


# -- python-engineio (server/fanout.py, server/security.py, cli/serve.py) ----------------

_SLOWER = "every event takes the Engine.IO queue path instead (correct, but a slower fan-out)"
_FANOUT = "cidbridge/server/fanout.py"


@_internal("python-engineio", "AsyncServer._async['websocket']", _FANOUT, _SLOWER, FANOUT)
def _eio_driver_table() -> None:
    from engineio.async_drivers.asgi import WebSocket

    table = _eio_server()._async
    _expect(isinstance(table, dict), f"_async is {type(table).__name__}, not a dict")
    _expect(table.get("websocket") is WebSocket, "the asgi driver's 'websocket' entry is not asgi.WebSocket")


@_internal("python-engineio", "async_drivers.asgi.WebSocket(handler, server)", _FANOUT, _SLOWER, FANOUT)
def _eio_websocket() -> None:
    from engineio.async_drivers.asgi import WebSocket

    async def handler(ws: Any) -> None:
        pass

    async def send(message: Any) -> None:
        pass

    async def probe() -> Any:
        ws = WebSocket(handler, _eio_server())
        _expect(ws.handler is handler, "the handler is not kept as .handler")
        await ws({"asgi.receive": None, "asgi.send": send})
        return ws

    ws = _run(probe())
    _expect(ws.asgi_send is send, "__call__(environ) no longer keeps environ['asgi.send'] as .asgi_send")
    _expect(inspect.iscoroutinefunction(WebSocket.wait), "wait() is not a coroutine")


@_internal(
    "python-engineio", "AsyncSocket._websocket_handler given to the WebSocket", _FANOUT, _SLOWER, FANOUT
)
def _eio_socket_handler() -> None:
    from engineio.async_socket import AsyncSocket

    built: list[Any] = []

    class Recorder:
        def __init__(self, handler: Any, server: Any) -> None:
            built.append(handler)

        async def __call__(self, environ: Any) -> None:
            pass

    async def probe() -> AsyncSocket:
        server = _eio_server()
        server._async = {**server._async, "websocket": Recorder}
        sock = AsyncSocket(server, "probe")
        await sock._upgrade_websocket({})
        return sock

    sock = _run(probe())
    _expect(built, "upgrading to WebSocket no longer builds the driver's WebSocket class")
    bound = getattr(built[0], "__self__", None) is sock
    _expect(bound, "the WebSocket's handler is not a bound method of the socket")


@_internal(
    "python-engineio",
    "AsyncSocket.queue, .upgraded, .upgrading, .closed, .closing; AsyncServer.sockets",
    _FANOUT,
    _SLOWER,
    FANOUT,
)
def _eio_socket_state() -> None:
    from engineio.async_socket import AsyncSocket

    server = _eio_server()
    _expect(isinstance(server.sockets, dict), "AsyncServer.sockets is not a dict")
    sock = AsyncSocket(server, "probe")
    kind = type(sock.queue).__name__
    _expect(isinstance(sock.queue, asyncio.Queue), f"queue is a {kind}, not an asyncio.Queue")
    for flag in ("upgraded", "upgrading", "closed", "closing"):
        _expect(getattr(sock, flag, None) is False, f".{flag} is not a bool that starts False")


@_internal("python-engineio", "packet.Packet takes an extra attribute", _FANOUT, _SLOWER, FANOUT)
def _eio_packet() -> None:
    from engineio import packet

    pkt = packet.Packet(packet.MESSAGE, "42")
    try:
        pkt.cidbridge_frame = b""
    except AttributeError:
        raise Changed("Packet has __slots__: the pre-built frame cannot ride on it") from None
    _expect(pkt.encode() == "442", f"a MESSAGE encodes as {pkt.encode()!r}, not '442'")


@_internal(
    "python-engineio",
    "environ['asgi.scope'] of the ASGI driver",
    "cidbridge/server/security.py",
    "every Socket.IO client is counted as one address by connect_burst/connect_rate",
)
def _eio_asgi_scope() -> None:
    from engineio.async_drivers.asgi import translate_request

    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}
    scope["client"] = ("192.0.2.1", 1)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    environ = _run(translate_request(scope, receive, None))
    _expect(environ.get("asgi.scope") is scope, "the environ no longer carries the scope as 'asgi.scope'")


@_internal(
    "python-engineio",
    "log messages 'Unknown receive error' and '<event> async handler error'",
    "cidbridge/cli/serve.py",
    "a client's undecodable packet logs a traceback at ERROR again",
)
def _eio_log_messages() -> None:
    from engineio import async_server, async_socket

    _expect("'Unknown receive error'" in inspect.getsource(async_socket), "'Unknown receive error' is gone")
    _expect("' async handler error'" in inspect.getsource(async_server), "'async handler error' is gone")


# -- asyncio (server/fanout.py) -----------------------------------------------------------


@_internal("python", "asyncio.Queue._getters", _FANOUT, _SLOWER, FANOUT)
def _queue_getters() -> None:
    async def probe() -> int:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        _expect(isinstance(getattr(queue, "_getters", None), collections.deque), "no _getters deque")
        task = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        waiting = len(queue._getters)  # type: ignore[attr-defined]
        task.cancel()
        return waiting

    _expect(_run(probe()) == 1, "a task waiting in get() is not in _getters")


# -- python-socketio (server/broadcast.py, server/fanout.py) --------------------------------------


@_internal(
    "python-socketio",
    "AsyncServer.manager.rooms[namespace][room] = {sid: eio_sid}",
    "cidbridge/server/broadcast.py",
    "no event reaches any client",
)
def _sio_rooms() -> None:
    import socketio

    async def probe() -> tuple[Any, Any]:
        sio = socketio.AsyncServer(async_mode="asgi")
        manager = sio.manager
        manager.set_server(sio)
        sid = manager.connect("eio-probe", "/")
        sid = await sid if inspect.isawaitable(sid) else sid
        entered = manager.enter_room(sid, "/", "agents", eio_sid="eio-probe")
        if inspect.isawaitable(entered):
            await entered
        return sid, manager.rooms

    sid, rooms = _run(probe())
    _expect(isinstance(sid, str), f"connect() gave {type(sid).__name__}, not a sid")
    _expect(dict(rooms["/"]["agents"]) == {sid: "eio-probe"}, "a room no longer maps sid to eio sid")


@_internal("python-socketio", "AsyncServer.packet_class", _FANOUT, "events cannot be encoded: none is sent")
def _sio_packet_class() -> None:
    import socketio
    from socketio import packet

    pkt = socketio.AsyncServer(async_mode="asgi").packet_class(packet.EVENT, namespace="/", data=["e", 1])
    _expect(pkt.encode() == '2["e",1]', f"an EVENT encodes as {pkt.encode()!r}")


# -- uvicorn (daemon.py, server/fanout.py) ----------------------------------------------------

_DAEMON = "cidbridge/daemon.py"


@_internal(
    "uvicorn",
    "server.ServerState.default_headers, read by every protocol",
    _DAEMON,
    "responses may carry a stale Date header",
)
def _uvicorn_default_headers() -> None:
    import uvicorn.server
    from uvicorn.protocols.http import h11_impl, httptools_impl
    from uvicorn.protocols.websockets import websockets_sansio_impl

    _expect(isinstance(uvicorn.server.ServerState().default_headers, list), "no default_headers list")
    for module in (h11_impl, httptools_impl, websockets_sansio_impl):
        _expect(
            "server_state.default_headers" in inspect.getsource(module),
            f"{module.__name__} no longer reads server_state.default_headers",
        )


@_internal(
    "uvicorn",
    "Server.main_loop(), Server.capture_signals(), Server.should_exit/.started/.server_state",
    _DAEMON,
    "the idle daemon wakes 10 times a second, and uvicorn may take over SIGTERM/SIGINT",
)
def _uvicorn_server() -> None:
    import uvicorn

    source = inspect.getsource(uvicorn.Server)
    _expect("await self.main_loop()" in source, "serve no longer awaits main_loop()")
    _expect("with self.capture_signals():" in source, "serve no longer uses capture_signals()")
    # log_config=None: a default Config would install uvicorn's own log handlers in the daemon.
    server = uvicorn.Server(uvicorn.Config(app=_asgi_app, log_config=None))
    for attr in ("should_exit", "started", "server_state"):
        _expect(hasattr(server, attr), f"no .{attr}")
    _expect(isinstance(server.config.encoded_headers, list), "Config.encoded_headers is not a list")


@_internal(
    "uvicorn",
    "Config.ssl: the SSLContext the listening socket serves with",
    _DAEMON,
    "a reload cannot renew the TLS certificate: it is served only after a restart",
)
def _uvicorn_ssl_context() -> None:
    import uvicorn
    import uvicorn.server

    config = uvicorn.Config(app=_asgi_app, lifespan="off", log_config=None)
    config.load()
    _expect(hasattr(config, "ssl") and config.ssl is None, "no Config.ssl (None without TLS)")
    _expect(
        "ssl=config.ssl" in inspect.getsource(uvicorn.server.Server),
        "the server no longer listens with config.ssl",
    )


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    pass


@_internal(
    "uvicorn",
    "ws='websockets-sansio' protocol: .transport, .close_sent, .handshake_complete, ASGI send bound to it",
    _FANOUT,
    _SLOWER,
    FANOUT,
)
def _uvicorn_websocket_protocol() -> None:
    import uvicorn
    import uvicorn.server

    async def probe() -> Any:
        config = uvicorn.Config(app=_asgi_app, ws="websockets-sansio", lifespan="off", log_config=None)
        config.load()
        protocol_class = config.ws_protocol_class
        _expect(protocol_class is not None, "uvicorn has no 'websockets-sansio' protocol")
        protocol = protocol_class(  # type: ignore[misc]
            config=config, server_state=uvicorn.server.ServerState(), app_state={}
        )
        return protocol

    protocol = _run(probe())
    _expect(hasattr(protocol, "transport"), "no .transport")
    _expect(protocol.close_sent is False, "no .close_sent that starts False")
    _expect(protocol.handshake_complete is False, "no .handshake_complete that starts False")
    _expect(inspect.iscoroutinefunction(protocol.send), "send() is not a coroutine")
    source = inspect.getsource(type(protocol))
    sends = "self.app(self.scope, self.receive, self.send)" in source
    _expect(sends, "the app's send is not protocol.send")


@_internal(
    "uvicorn",
    "protocols.http.httptools_impl.HttpToolsProtocol: connection_made/lost, on_message_begin, "
    "on_headers_complete, on_response_complete; .pipeline, .client, .transport, .loop",
    "cidbridge/server/connections.py",
    "connections are not capped and a request head has no deadline (idle sockets can use up the open files)",
    CONNECTION_GUARD,
)
def _uvicorn_httptools_protocol() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    for method in (
        "connection_made",
        "connection_lost",
        "on_message_begin",
        "on_headers_complete",
        "on_response_complete",
    ):
        _expect(callable(getattr(HttpToolsProtocol, method, None)), f"no {method}()")
    init = inspect.getsource(HttpToolsProtocol.__init__)
    for attribute in ("self.pipeline", "self.client", "self.transport", "self.loop"):
        _expect(attribute in init, f"__init__ no longer sets {attribute}")
    source = inspect.getsource(HttpToolsProtocol)
    _expect("self.on_response_complete" in source, "on_response_complete is no longer the cycle's callback")
    _expect("def on_message_begin(self)" in source, "on_message_begin is no longer a parser callback")


# -- the smaller per-connection objects (server/lean.py) -------------------------------------

_LEAN = "cidbridge/server/lean.py"
_BIGGER = "each connected client takes about 10 kB more memory (asyncio queues, handshake headers kept)"


def _queue_methods(source: str, owner: str) -> set[str]:
    """The names used on ``<owner>.queue`` in ``source``."""
    import re

    return set(re.findall(re.escape(owner) + r"\.queue\.(\w+)", source))


def _lean_queue_api() -> set[str]:
    from cidbridge.server.lean import LeanQueue

    return {name for name in dir(LeanQueue) if not name.startswith("_")}


@_internal(
    "python-engineio",
    "BaseSocket.queue made by server.create_queue(); the queue methods AsyncSocket uses",
    _LEAN,
    _BIGGER,
    LEAN,
)
def _eio_create_queue() -> None:
    from engineio import async_socket, base_socket

    init = inspect.getsource(base_socket.BaseSocket.__init__)
    made = "self.queue = self.server.create_queue()" in init
    _expect(made, "the socket's queue is not made by create_queue()")
    used = _queue_methods(inspect.getsource(async_socket), "self")
    _expect(used, "AsyncSocket uses no self.queue method: the source changed shape")
    missing = used - _lean_queue_api()
    _expect(not missing, f"AsyncSocket uses queue methods LeanQueue lacks: {sorted(missing)}")


@_internal(
    "python-engineio",
    "AsyncServer._async['translate_request'] and environ['wsgi.input'] of the ASGI driver",
    _LEAN,
    _BIGGER,
    LEAN,
)
def _eio_translate_request() -> None:
    from engineio.async_drivers.asgi import translate_request

    entry = _eio_server()._async.get("translate_request")
    _expect(entry is translate_request, "no 'translate_request' entry")
    scope = {"type": "websocket", "path": "/", "query_string": b"", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    environ = _run(translate_request(scope, receive, None))
    _expect("wsgi.input" in environ, "the environ has no 'wsgi.input'")


@_internal(
    "uvicorn",
    "websockets-sansio protocol: .queue (an asyncio.Queue, its methods), .request/.response of the handshake",
    _LEAN,
    _BIGGER,
    LEAN,
)
def _uvicorn_websocket_queue() -> None:
    protocol_class = websocket_protocol_class()
    source = inspect.getsource(protocol_class)
    init = inspect.getsource(protocol_class.__init__)  # type: ignore[misc]
    _expect("self.queue: asyncio.Queue" in init or "self.queue = asyncio.Queue()" in init, "no self.queue")
    used = _queue_methods(source, "self")
    missing = used - _lean_queue_api()
    _expect(used and not missing, f"the protocol uses queue methods LeanQueue lacks: {sorted(missing)}")
    # The handshake's request and response are read only while answering it.
    outside = source
    for method in ("handle_connect", "send"):
        outside = outside.replace(inspect.getsource(getattr(protocol_class, method)), "")
    for name in ("self.request", "self.response"):
        _expect(name in source, f"no {name}")
        _expect(name not in outside, f"{name} is read outside handle_connect() and send()")
    _expect(callable(getattr(protocol_class, "send", None)), "no send()")


# -- phonenumbers (numbers.py) ------------------------------------------------------------


@_internal(
    "phonenumbers",
    "PhoneMetadata.load_all(), ._region_available, ._country_code_available",
    "cidbridge/numbers.py",
    "number metadata loads lazily on calls: with no file descriptor left, a failed load "
    "leaves phonenumbers' lock held and freezes the daemon",
    PRELOAD,
)
def _phonenumbers_metadata() -> None:
    from phonenumbers.phonemetadata import PhoneMetadata

    _expect(callable(getattr(PhoneMetadata, "load_all", None)), "no PhoneMetadata.load_all()")
    for table in ("_region_available", "_country_code_available"):
        _expect(isinstance(getattr(PhoneMetadata, table, None), dict), f"no PhoneMetadata.{table} dict")
    source = inspect.getsource(PhoneMetadata.metadata_for_region)
    _expect("_region_available" in source, "metadata_for_region no longer reads _region_available")


def websocket_protocol_class() -> type:
    """The uvicorn protocol class whose instances the fan-out writes to directly."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    return WebSocketsSansIOProtocol


# -- the results ------------------------------------------------------------------------


def run(internal: Internal) -> str | None:
    """Check one name: None when it is as expected, else the sentence describing the problem."""
    try:
        internal.check()
    except Exception as exc:  # Changed, or anything the library raises instead
        return internal.describe(str(exc) or type(exc).__name__)
    return None


@functools.cache
def problems() -> tuple[tuple[Internal, str], ...]:
    """Every name that is missing or changed, with its sentence; checked once per process."""
    found = []
    for internal in INTERNALS:
        sentence = run(internal)
        if sentence is not None:
            found.append((internal, sentence))
    return tuple(found)


def usable(feature: str) -> bool:
    """Whether every private name ``feature`` needs is as expected."""
    return not any(internal.feature == feature for internal, _ in problems())
