"""The daemon: lines, hub, call log and web server in one process and one event loop.

Lifecycle (like uvicorn's ``Server``):

1. **startup** — open the call log, build the hub and its sinks, bind the listening
   socket, start the web server, start every line and give each a moment to come up;
   then report ready (``on_ready`` with the URL).
2. **serve** — until :meth:`Daemon.stop` is called (SIGTERM, SIGINT).
3. **shutdown** — stop reading the lines, close Socket.IO clients, stop the web
   server, close the call log.  Everything committed stays committed.

Failures that make starting impossible raise :class:`StartupError` with one sentence
naming the cause and the fix; the CLI turns it into an exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

import socketio
import uvicorn

from cidbridge.config import Config
from cidbridge.hub import Hub
from cidbridge.lines.serial_line import Line
from cidbridge.server.broadcast import Broadcaster
from cidbridge.server.http import HttpApp
from cidbridge.store import CallLog, StoreError

log = logging.getLogger(__name__)

#: Longest the daemon waits for its lines' first attempt before reporting ready anyway.
LINE_START_WAIT = 10.0


class StartupError(Exception):
    """The daemon cannot start; ``exit_status`` is the documented CLI exit status."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class _UvicornServer(uvicorn.Server):
    """uvicorn's server minus its signal handling: the daemon owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    """Runs the whole pipeline.  ``await Daemon(config).serve()``."""

    def __init__(self, config: Config, *, on_ready: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.on_ready = on_ready
        self.url = ""
        self.lines: list[Line] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def stop(self) -> None:
        """Ask the daemon to shut down gracefully (safe from a signal handler)."""
        self._stopping.set()

    def status(self) -> dict[str, Any]:
        """What /healthz reports: each line's state, and the clients connected."""
        return {
            "lines": {
                line.name: {"state": line.state, "reason": line.reason, "port": line.config.port}
                for line in self.lines
            },
            "clients": self.broadcaster.clients,
        }

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        try:
            await self._startup()
            await self._stopping.wait()
        finally:
            await self._shutdown()

    # -- lifecycle ---------------------------------------------------------------

    async def _startup(self) -> None:
        cfg = self.config
        self.store = CallLog(cfg.store.path)
        try:
            self.store.open()
        except StoreError as exc:
            raise StartupError(str(exc), 3) from None
        self.hub = Hub(self.store, region=cfg.calls.region)
        self.broadcaster = Broadcaster(cfg, self.hub)
        self.hub.sinks.append(self.broadcaster)
        http = HttpApp(
            self.hub,
            tokens=cfg.server.tokens,
            replay_calls=cfg.calls.replay_calls,
            status=self.status,
        )
        app = socketio.ASGIApp(self.broadcaster.sio, other_asgi_app=http.app)
        sock = self._bind()
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
        self.server = _UvicornServer(
            uvicorn.Config(
                app,
                lifespan="off",
                ws="websockets-sansio",
                ws_per_message_deflate=False,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        self._tasks.append(asyncio.create_task(self.server.serve(sockets=[sock]), name="http"))
        while not self.server.started:
            if self._tasks[0].done():
                self._tasks[0].result()
                raise StartupError("the web server stopped while starting", 1)
            await asyncio.sleep(0.01)
        self.lines = [Line(line, self.hub, ring_gap=cfg.calls.ring_gap) for line in cfg.lines]
        for line in self.lines:
            self._tasks.append(asyncio.create_task(line.run(), name=f"line {line.name}"))
        if self.lines:
            waits = [asyncio.create_task(line.first_attempt_done.wait()) for line in self.lines]
            await asyncio.wait(waits, timeout=LINE_START_WAIT)
            for wait in waits:
                wait.cancel()
        log.info("cidbridge listening on %s with %d line(s)", self.url, len(self.lines))
        if self.on_ready is not None:
            self.on_ready(self.url)

    def _bind(self) -> socket.socket:
        host, port = self.config.server.host, self.config.server.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is already in use (another cidbridge?); "
                    "stop it or set [server] port",
                    4,
                ) from None
            raise StartupError(
                f"cannot listen on {host}:{port} ({exc.strerror}); check [server] host", 4
            ) from None
        sock.listen(128)
        sock.setblocking(False)
        return sock

    async def _shutdown(self) -> None:
        log.info("shutting down")
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks[1:]:
            with contextlib.suppress(BaseException):
                await task
        if hasattr(self, "broadcaster"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.broadcaster.close(), 2)
        if self._tasks:
            self.server.should_exit = True
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._tasks[0], 4)
        if hasattr(self, "store"):
            self.store.close()
