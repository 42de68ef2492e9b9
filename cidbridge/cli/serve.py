"""``cidbridge serve`` and ``cidbridge demo``: run the daemon, for real or on a simulated modem."""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from cidbridge import config as config_module
from cidbridge.cli.errors import USAGE, fail
from cidbridge.daemon import Daemon, StartupError


def setup_logging(level: str) -> None:
    """Plain lines on stderr, the form journald and a terminal both read well."""
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # The web stack's own chatter is for debugging only.
    for noisy in ("uvicorn", "uvicorn.error", "engineio", "socketio"):
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
    config: Annotated[Path, typer.Option("--config", "-c", help="The TOML configuration file.")],
) -> None:
    """Run the daemon: read the configured lines, log calls, push them to browsers."""
    try:
        cfg = config_module.load(config)
    except config_module.ConfigError as exc:
        fail(str(exc), USAGE)
    setup_logging(cfg.log_level)
    daemon = Daemon(cfg, on_ready=lambda url: print(f"cidbridge: panel at {url}", flush=True))
    run_daemon(daemon)


def demo(
    port: Annotated[int, typer.Option("--port", "-p", help="Port for the panel (0 = any free port).")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only).")] = "127.0.0.1",
    interval: Annotated[float, typer.Option(help="Average seconds between simulated calls.")] = 6.0,
    seed: Annotated[int | None, typer.Option(help="Seed for the random callers.")] = None,
) -> None:
    """Run the whole pipeline on a simulated modem, no hardware needed.  Ctrl-C stops it."""
    from cidbridge.config import is_loopback
    from cidbridge.demo import DemoModem, demo_config

    if not is_loopback(host):
        fail("the demo listens on loopback only (it has no token); use --host 127.0.0.1", USAGE)
    if interval < 0.5:
        fail("--interval must be at least 0.5 seconds", USAGE)
    setup_logging("info")
    with tempfile.TemporaryDirectory(prefix="cidbridge-demo-") as state:
        modem = DemoModem(interval=interval, seed=seed)
        cfg = demo_config(modem.device.path, port=port, host=host, state_dir=Path(state))
        modem.quiet_after = cfg.calls.ring_gap + 0.5

        def ready(url: str) -> None:
            print(
                f"cidbridge demo: open {url} in a browser (a simulated call every ~{interval:g} s; "
                "Ctrl-C to stop)",
                flush=True,
            )
            modem.start()

        try:
            run_daemon(Daemon(cfg, on_ready=ready))
        finally:
            modem.close()
