"""The daemon: lines, hub, call log and web server in one process and one event loop.

Lifecycle (like uvicorn's ``Server``):

1. **startup** — open the call log, build the hub and its sinks, bind the listening
   socket, start the web server, start every line and give each a moment to come up;
   then report ready (``on_ready`` with the URL).
   Under systemd, ready is also ``READY=1`` on ``$NOTIFY_SOCKET``, followed by
   ``STATUS=`` lines and watchdog pings from the event loop (:mod:`cidbridge.service`).
2. **serve** — until :meth:`Daemon.stop` is called (SIGTERM, SIGINT).  SIGHUP
   (``systemctl reload``) re-reads the config file: :meth:`Daemon.reload`.
3. **shutdown** — stop reading the lines, close Socket.IO clients, stop the web
   server, close the call log.  Everything committed stays committed.  It takes
   under 5 s (``SHUTDOWN_BUDGET``), so ``systemctl stop`` never has to kill.

Failures that make starting impossible raise :class:`StartupError` with one sentence
naming the cause and the fix; the CLI turns it into an exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from email.utils import formatdate
from pathlib import Path
from typing import Any

import uvicorn

from cidbridge import internals, numbers, service
from cidbridge.config import Config, ConfigError, LineConfig, load
from cidbridge.hub import Hub
from cidbridge.lines.capture import with_capture
from cidbridge.lines.pushed import posted_calls
from cidbridge.lines.serial_line import Line
from cidbridge.lines.udp_source import UdpSource
from cidbridge.outputs import build as build_outputs
from cidbridge.reload import ReloadPlan
from cidbridge.server import lean
from cidbridge.server.auth import session_token_name
from cidbridge.server.broadcast import check_token
from cidbridge.server.guards import allowed_hosts
from cidbridge.server.web import WebServer
from cidbridge.store import CallLog, StoreError
from cidbridge.store.flush import keep_flushed
from cidbridge.store.retention import keep_pruned

log = logging.getLogger(__name__)

#: Longest the daemon waits for its lines' first attempt before reporting ready anyway.
LINE_START_WAIT = 10.0
#: Seconds between STATUS= refreshes when systemd asks for no watchdog.
STATUS_REFRESH = 30.0
#: The graceful shutdown fits in this, so SIGTERM → exit takes under 5 s (the unit's
#: TimeoutStopSec is 15 s: systemd never has to SIGKILL).
SHUTDOWN_BUDGET = 4.5


class StartupError(Exception):
    """The daemon cannot start; ``exit_status`` is the documented CLI exit status."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class _ServerState(uvicorn.server.ServerState):
    """uvicorn's shared state, with the Date header computed when a response needs it."""

    def __init__(self, extra_headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__()
        self._extra = extra_headers
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []

    @property  # type: ignore[override]
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._headers = [(b"date", formatdate(now, usegmt=True).encode()), *self._extra]
        return self._headers

    @default_headers.setter
    def default_headers(self, value: list[tuple[bytes, bytes]]) -> None:
        pass  # uvicorn's own refresh; computed above instead


class _UvicornServer(uvicorn.Server):
    """uvicorn's server minus its signal handling (the daemon owns the signals) and its tick.

    uvicorn wakes every 0.1 s to refresh the Date header and poll ``should_exit``: ten
    wake-ups a second, forever, on a PC that is idle nearly all day.  Here the Date
    header is computed per response (:class:`_ServerState`) and ``should_exit`` sets an
    event the main loop waits on, so an idle daemon sleeps until something happens.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_requested = asyncio.Event()
        super().__init__(config)
        self.server_state = _ServerState(config.encoded_headers)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._exit_requested.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit_requested.set()
        else:
            self._exit_requested.clear()

    async def main_loop(self) -> None:
        await self._exit_requested.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    """Runs the whole pipeline.  ``await Daemon(config).serve()``."""

    def __init__(
        self,
        config: Config,
        *,
        on_ready: Callable[[str], None] | None = None,
        capture: Path | None = None,
    ) -> None:
        self.config = config
        self.on_ready = on_ready
        #: ``serve --capture FILE``: every line's raw bytes go there (see lines/capture.py).
        self.capture = capture
        self.url = ""
        self.lines: list[Line] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._line_tasks: dict[str, asyncio.Task[None]] = {}
        self._reload_task: asyncio.Task[Any] | None = None
        self.notifier = service.Notifier.from_environment()
        #: Called with the new config on every successful reload (e.g. the phonebook).
        self.reload_hooks: list[Callable[[Config], Awaitable[None] | None]] = []

    def stop(self) -> None:
        """Ask the daemon to shut down gracefully (safe from a signal handler)."""
        self._stopping.set()

    def status(self) -> dict[str, Any]:
        """What /healthz reports: each line's state, and the clients connected."""
        status = {
            "lines": {line.name: line.status() for line in self.lines},
            **(self.web.status() if hasattr(self, "web") else {"clients": 0}),
        }
        if getattr(self, "outputs", None):
            status["outputs"] = self.outputs.status()
        return status

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            await self._startup()
            await self._stopping.wait()
        finally:
            await self._shutdown()

    # -- lifecycle ---------------------------------------------------------------

    async def _startup(self) -> None:
        cfg = self.config
        # Every country's number metadata now: nothing is loaded (no file opened) on a call's path.
        if internals.usable(internals.PRELOAD):
            numbers.preload()
        self.store = CallLog(cfg.store.path, synchronous=cfg.store.synchronous)
        try:
            self.store.open()
        except StoreError as exc:
            raise StartupError(str(exc), 3) from None
        self.hub = Hub(self.store, region=cfg.calls.region)
        try:
            self.hub.use_phonebook(cfg.calls.phonebook, cfg.calls.region)
        except StoreError as exc:
            raise StartupError(str(exc), 3) from None
        self.hub.sinks.append(service.EventLogSink())
        self.reload_hooks.append(lambda new: self.hub.use_phonebook(new.calls.phonebook, new.calls.region))
        await self.hub.end_unfinished()  # before any client or line: nobody sees a stale call
        # A library upgrade that changed a private name we use: say so, once, at start.
        for _, problem in internals.problems():
            log.warning("%s", problem)
        # The other protocols events go out on (NCID, UDP, MQTT, webhooks), after Socket.IO.
        self.outputs = build_outputs(cfg, self.hub)
        # Calls posted to the ingest endpoint: a source of the daemon's, like its lines.
        self.posted = posted_calls(
            self.hub,
            ring_gap=cfg.calls.ring_gap,
            ringless_timeout=cfg.calls.ringless_timeout,
            taken=lambda: {line.name for line in self.lines},
            on_forget=lambda name: self.web.metrics.forget_line(name),
        )
        # Socket.IO, HTTP API, ingest endpoint, metrics and (with redis_url) the cluster link.
        self.web = WebServer(
            cfg,
            self.hub,
            status=self.status,
            lines=lambda: self.lines,
            posted=self.posted,
            outputs=self.outputs,
        )
        self.hub.sinks.append(self.outputs)
        self.broadcaster, self.http = self.web.broadcaster, self.web.http
        # Listed (as starting) before the server answers: /healthz never omits a configured line.
        starting = [self._add_line(line_config) for line_config in cfg.lines]
        if cfg.udp.listen:
            starting.append(self._add_udp_source())
        sock = self._bind()
        host, port = sock.getsockname()[:2]
        self.url = f"{self.web.scheme}://{host if ':' not in host else f'[{host}]'}:{port}/"
        self.server = _UvicornServer(
            uvicorn.Config(
                self.web.app,
                lifespan="off",
                interface="asgi3",  # the outermost layer returns an awaitable (server/guards.py)
                # uvicorn's websockets-sansio protocol, with smaller per-connection state.
                ws=lean.websocket_protocol(),
                ws_per_message_deflate=False,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=2,
                **self.web.uvicorn_options(),
            )
        )
        self._tasks.append(asyncio.create_task(self.server.serve(sockets=[sock]), name="http"))
        while not self.server.started:
            if self._tasks[0].done():
                self._tasks[0].result()
                raise StartupError("the web server stopped while starting", 1)
            await asyncio.sleep(0.01)
        self.web.start()
        self._tasks.append(asyncio.create_task(self.posted.run(), name="posted calls"))
        await self.outputs.start()
        for line in starting:
            self._run_line(line)
        retention = keep_pruned(self.store, lambda: self.config.store.retention_days)
        self._tasks.append(asyncio.create_task(retention, name="retention"))
        self._tasks.append(asyncio.create_task(keep_flushed(self.store), name="flush"))
        if self.lines:
            waits = [asyncio.create_task(line.first_attempt_done.wait()) for line in self.lines]
            await asyncio.wait(waits, timeout=LINE_START_WAIT)
            for wait in waits:
                wait.cancel()
        # What start-up loaded (modules, every country's number metadata) lives as long as
        # the process: kept out of the collector's full passes (11 ms each without this),
        # which otherwise land on a call's way to the browsers now and then.
        gc.freeze()
        log.info("cidbridge listening on %s with %d line(s)", self.url, len(self.lines))
        if self.on_ready is not None:
            self.on_ready(self.url)
        self._tell_systemd_ready()

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

    def _tell_systemd_ready(self) -> None:
        """READY=1 with the lines' state, then STATUS= updates and watchdog pings."""
        if not self.notifier.enabled:
            return
        self.notifier.ready(self.status_line())
        self.hub.sinks.append(service.StatusSink(self.notifier, self.status_line))
        interval = service.watchdog_interval()
        if interval is None:
            # No watchdog asked for: only refresh STATUS (the client count) now and then.
            keep = service.keep_status(self.notifier, STATUS_REFRESH, self.status_line)
        else:
            keep = service.keep_alive(self.notifier, interval, self.status_line)
        self._tasks.append(asyncio.create_task(keep, name="systemd"))

    def status_line(self) -> str:
        """``systemctl status``'s Status: line, e.g. ``2/2 lines up; 3 clients``."""
        status = self.status()
        return service.describe(status["lines"], status["clients"])

    # -- lines -------------------------------------------------------------------

    def _start_line(self, line_config: LineConfig) -> None:
        self._run_line(self._add_line(line_config))

    def _add_line(self, line_config: LineConfig) -> Line:
        """Make the line (state ``starting``, listed in /healthz) without opening its port yet."""
        if self.capture is not None:
            line_config = with_capture(line_config, self.capture, several=len(self.config.lines) > 1)
        calls = self.config.calls
        line = Line(line_config, self.hub, ring_gap=calls.ring_gap, ringless_timeout=calls.ringless_timeout)
        self.lines.append(line)
        return line

    def _run_line(self, line: Line) -> None:
        task = asyncio.create_task(line.run(), name=f"line {line.name}")
        self._tasks.append(task)
        self._line_tasks[line.name] = task

    def _add_udp_source(self) -> Line:
        """Whozz Calling Ethernet units ([udp] listen): a source shown and timed like a line."""
        calls = self.config.calls
        source = UdpSource(
            self.config.udp, self.hub, ring_gap=calls.ring_gap, ringless_timeout=calls.ringless_timeout
        )
        self.lines.append(source)  # type: ignore[arg-type]
        return source  # type: ignore[return-value]

    async def _stop_line(self, name: str, reason: str) -> None:
        task = self._line_tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            self._tasks.remove(task)
        self.lines = [line for line in self.lines if line.name != name]
        await self.hub.line_state(name, "down", reason)

    # -- reload (SIGHUP) -----------------------------------------------------------

    def request_reload(self) -> None:
        """Re-read the config file soon (safe from a signal handler); one reload at a time."""
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.create_task(self.reload(), name="reload")

    async def reload(self) -> ReloadPlan | None:
        """Re-read the config file and apply what can change live, keeping clients connected.

        A file with problems is logged (every problem) and ignored: the daemon keeps
        running on the configuration it has.  What each key does is
        :data:`cidbridge.reload.KEYS`: applied live by ``_apply_<applier>``, or kept at
        its running value until a restart; the log line says which.
        """
        if self.config.source is None:
            log.warning("reload asked for, but this daemon was not started from a config file")
            return None
        self.notifier.reloading()
        try:
            new = load(self.config.source)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: %s", problem)
            log.error("reload failed: still running with the previous configuration")
            self.notifier.ready(self.status_line())
            return None
        old = self.config
        plan = ReloadPlan.between(old, new)
        self.config = plan.keep_running(old)
        self.broadcaster.config = self.config  # it reads tokens and replay_calls per client
        self.web.config = self.config  # [panel] (open_url, the missed list) is read per request
        not_applied: dict[str, str] = {}
        for name in plan.appliers():
            try:
                not_applied.update(await getattr(self, f"_apply_{name}")(old, self.config, plan) or {})
            except Exception as exc:
                log.exception("reload: applying %s failed", name)
                not_applied.update(dict.fromkeys(plan.keys_of(name), f"failed: {exc}"))
        for hook in self.reload_hooks:
            try:
                result = hook(self.config)
                if result is not None:
                    await result
            except Exception:
                log.exception("reload: %s failed", getattr(hook, "__qualname__", hook))
        log.info("reloaded %s: %s", self.config.source, plan.summary(not_applied))
        self.notifier.ready(self.status_line())
        return plan

    # One applier per row group of cidbridge.reload.KEYS: (old, new, plan) -> {key not applied: why}.

    async def _apply_log_level(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        logging.getLogger().setLevel(new.log_level.upper())

    async def _apply_region(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self.hub.region = new.calls.region  # the phonebook follows in its reload hook

    async def _apply_event_name(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self.broadcaster.event_name = new.server.event_name

    async def _apply_cors(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        cors: list[str] | str | None = list(new.server.cors_origins) or None
        self.broadcaster.sio.eio.cors_allowed_origins = "*" if cors == ["*"] else cors
        self.http.cors.allow(new.server.cors_origins)

    async def _apply_call_timing(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        for source in (*self.lines, self.posted):
            source.set_timing(new.calls.ring_gap, new.calls.ringless_timeout)

    async def _apply_replay_calls(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self.http.replay_calls = new.calls.replay_calls

    async def _apply_connect_limits(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self.broadcaster.set_connect_limits(new.server.connect_burst, new.server.connect_rate)

    async def _apply_allowed_hosts(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self.web.host_check.allow(allowed_hosts(new.server.host, new.server.allowed_hosts))

    async def _apply_connection_limits(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self.web.connections.set_limits(*self.web.connection_limits(new))
        # uvicorn's backstop, read by each new connection's protocol (see WebServer.uvicorn_options).
        self.server.config.limit_concurrency = self.web.connections.max_connections + 1

    async def _apply_tokens(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        self.http.tokens = new.server.tokens
        if plan.tokens_revoked:
            await self._disconnect_revoked(new.server.tokens)

    async def _apply_tls(self, old: Config, new: Config, plan: ReloadPlan) -> dict[str, str]:
        """Load a renewed certificate into the running server: new connections get it."""
        cert, key = new.server.tls_cert, new.server.tls_key
        context = self.server.config.ssl  # the SSLContext uvicorn serves with (None without TLS)
        why = ""
        if context is None or cert is None or key is None:
            why = "turning TLS on or off takes a restart"
        else:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)  # check before swapping
            except (OSError, ssl.SSLError) as exc:
                why = f"cannot load {cert} with {key}: {exc}; still serving the previous certificate"
                log.error("reload: %s", why)
        if why:
            server = replace(self.config.server, tls_cert=old.server.tls_cert, tls_key=old.server.tls_key)
            self.config = replace(self.config, server=server)
            return dict.fromkeys(plan.keys_of("tls"), why)
        context.load_cert_chain(cert, key)
        return {}

    async def _apply_lines(self, old: Config, new: Config, plan: ReloadPlan) -> None:
        for name in plan.lines_removed:
            await self._stop_line(name, "removed from the configuration")
        for line_config in plan.lines_changed:
            await self._stop_line(line_config.name, "restarting with its new configuration")
        for line_config in (*plan.lines_added, *plan.lines_changed):
            self._start_line(line_config)

    async def _disconnect_revoked(self, tokens: dict[str, str]) -> None:
        """Disconnect the clients whose token is no longer valid; the others stay connected.

        A server-side disconnect is final for socket.io-client (it does not retry), which
        is what a revoked token should get.
        """
        offered = dict(self.broadcaster.client_tokens)
        sessions = dict(self.broadcaster.client_sessions)
        revoked = [
            sid
            for sid, token in offered.items()
            if tokens
            and (
                session_token_name(sessions[sid], tokens) is None
                if sid in sessions
                else check_token(tokens, token) is None
            )
        ]
        if revoked:
            log.info("reload: disconnecting %d client(s) whose token was revoked", len(revoked))
        for sid in revoked:
            with contextlib.suppress(Exception):
                await self.broadcaster.sio.disconnect(sid)

    async def _shutdown(self) -> None:
        if self.url:  # after a failed start, the error is the only line worth printing
            log.info("shutting down")
        self.notifier.stopping()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_BUDGET
        # Stop reading.  A commit in progress finishes first: it is one synchronous call.
        others = self._tasks[1:]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=1.0)
        if hasattr(self, "outputs"):
            await self.outputs.close()
        if hasattr(self, "web"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.web.close(), 1.5)
        if self._tasks:
            self.server.should_exit = True
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._tasks[0], max(0.1, deadline - loop.time()))
        if hasattr(self, "store"):
            self.store.close()
