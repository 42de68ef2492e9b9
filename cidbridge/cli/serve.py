"""``cidbridge serve`` and ``cidbridge demo``: run the daemon, for real or on a simulated modem."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from cidbridge import config as config_module
from cidbridge.cli.errors import USAGE, fail
from cidbridge.daemon import Daemon, StartupError

#: syslog priorities (sd-daemon(3)): journald reads a leading ``<N>`` as the line's level.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_COLOUR = {logging.DEBUG: "2", logging.WARNING: "33", logging.ERROR: "31", logging.CRITICAL: "1;31"}


class JournalFormatter(logging.Formatter):
    """``<4>cidbridge.lines: line front-desk down: …``: journald stores the level, adds the time."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        # One record, one journal entry: a traceback's lines stay in the same message.
        return f"<{priority}>{record.name}: {super().format(record)}"


class ConsoleFormatter(logging.Formatter):
    """``12:00:01 WARNING cidbridge.lines: …``, the level in colour on a terminal only."""

    def __init__(self, colour: bool) -> None:
        super().__init__("%(message)s")
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname
        code = _COLOUR.get(record.levelno)
        if self.colour and code:
            level = f"\033[{code}m{level}\033[0m"
        when = self.formatTime(record, "%Y-%m-%d %H:%M:%S")
        return f"{when} {level} {record.name}: {super().format(record)}"


class ClientFaultFilter(logging.Filter):
    """Turns the web stack's tracebacks about undecodable client packets into a debug line.

    python-engineio logs a full traceback at ERROR when a client sends a packet it
    cannot decode.  That is the client's fault, not the daemon's, and a hostile client
    could fill the journal with them (tests/reliability/test_bad_clients.py).
    """

    MESSAGES = frozenset({"message async handler error", "Unknown receive error"})

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name.startswith(("engineio", "socketio")) and record.exc_info):
            return True
        if record.msg not in self.MESSAGES:
            return True
        error = record.exc_info[1]
        record.msg = "a client sent a packet that cannot be decoded (%s: %s); ignored"
        record.args = (type(error).__name__, error)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def stream_is_journal(stream: object) -> bool:
    """True when ``stream`` is connected to journald (``$JOURNAL_STREAM`` names it, systemd.exec(5))."""
    try:
        device, inode = (int(part) for part in os.environ["JOURNAL_STREAM"].split(":"))
        info = os.fstat(stream.fileno())  # type: ignore[attr-defined]
    except (KeyError, ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


def setup_logging(level: str) -> None:
    """Log lines on stderr: journald's form under systemd, timestamped lines elsewhere.

    Colour only on a terminal, and never with ``NO_COLOR`` set.  Caller numbers and
    names are logged at debug level only (tests/service/test_logging.py checks it).
    """
    handler = logging.StreamHandler(sys.stderr)
    if stream_is_journal(sys.stderr):
        handler.setFormatter(JournalFormatter())
    else:
        colour = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        handler.setFormatter(ConsoleFormatter(colour))
    handler.addFilter(ClientFaultFilter())
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
    # The web stack's own chatter is for debugging only.
    # (Setting engineio.server and socketio.server explicitly also stops those libraries
    # from adding a handler of their own, which would print every line twice.)
    for noisy in ("uvicorn", "uvicorn.error", "engineio", "engineio.server", "socketio", "socketio.server"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def run_daemon(daemon: Daemon) -> None:
    """Run ``daemon`` on uvloop where installed; turn startup failures into exit statuses."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    try:
        runner(daemon.serve())
    except StartupError as exc:
        fail(str(exc), exc.exit_status)


def serve(
    # readable=False: an unreadable file gets cidbridge's own one-line error, not click's box.
    config: Annotated[
        Path, typer.Option("--config", "-c", readable=False, help="The TOML configuration file.")
    ],
    capture: Annotated[
        Path | None,
        typer.Option(
            help="Write every byte each line reads to FILE (FILE.<line> with several lines), "
            "rotated by size; replay it with `cidbridge decode`."
        ),
    ] = None,
) -> None:
    """Run the daemon: read the configured lines, log calls, push them to browsers."""
    try:
        cfg = config_module.load(config)
    except config_module.ConfigError as exc:
        # Every problem at once (like `cidbridge config check`), so one edit fixes them all.
        for problem in exc.problems[:-1]:
            print(f"cidbridge: error: {problem}", file=sys.stderr)
        fail(str(exc.problems[-1]), USAGE)
    setup_logging(cfg.log_level)
    daemon = Daemon(
        cfg, on_ready=lambda url: print(f"cidbridge: panel at {url}", flush=True), capture=capture
    )
    run_daemon(daemon)


def demo(
    port: Annotated[int, typer.Option("--port", "-p", help="Port for the panel (0 = any free port).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only).")] = "127.0.0.1",
    interval: Annotated[float, typer.Option(help="Average seconds between simulated calls.")] = 6.0,
    seed: Annotated[int | None, typer.Option(help="Seed for the random callers.")] = None,
    cors: Annotated[
        list[str] | None,
        typer.Option(
            "--cors",
            metavar="ORIGIN",
            help="Let a panel served from ORIGIN (e.g. http://localhost:3000) connect; repeatable.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            help="Require this token from every client, like the token key of the server section.",
        ),
    ] = None,
) -> None:
    """Run the whole pipeline on a simulated modem, no hardware needed.  Ctrl-C stops it."""
    from cidbridge.config import MIN_TOKEN_LENGTH, is_loopback
    from cidbridge.demo import DemoModem, demo_config

    if not is_loopback(host):
        fail("the demo listens on loopback only; use --host 127.0.0.1", USAGE)
    if interval < 0.5:
        fail("--interval must be at least 0.5 seconds", USAGE)
    origins = tuple(cors or ())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            fail(f"--cors {origin!r} is not an origin; write it like http://localhost:3000 (no path)", USAGE)
    if token is not None and len(token.strip()) < MIN_TOKEN_LENGTH:
        fail(f"--token must be at least {MIN_TOKEN_LENGTH} characters (as in the config file)", USAGE)
    if "*" in origins and token is None:
        fail('--cors "*" lets every web page read the calls: give a --token too', USAGE)
    setup_logging("info")
    with tempfile.TemporaryDirectory(prefix="cidbridge-demo-") as state:
        modem = DemoModem(interval=interval, seed=seed)
        cfg = demo_config(
            modem.device.path, port=port, host=host, state_dir=Path(state), cors_origins=origins, token=token
        )
        modem.quiet_after = cfg.calls.ring_gap + 0.5

        def ready(url: str) -> None:
            # The built-in panel takes the token from its URL.
            page = f"{url}?token={quote(token, safe='')}" if token else url
            print(
                f"cidbridge demo: open {page} in a browser (a simulated call every ~{interval:g} s; "
                "Ctrl-C to stop)",
                flush=True,
            )
            if origins:
                print(f"cidbridge demo: panels from {', '.join(origins)} may connect", flush=True)
            modem.start()

        try:
            run_daemon(Daemon(cfg, on_ready=ready))
        finally:
            modem.close()
