"""The NCID project's own client (``ncid``, Tcl) as a test peer, run with ``tclsh --no-gui``.

It lives outside the repository (``shared/peers/ncid/ncid`` next to the checkout or one
of its parents, or ``$CIDBRIDGE_NCID_CLIENT``) and is never copied in.  Tcl buffers
stdout fully when it is a pipe, so the client runs on a pseudo-terminal and every
line it prints is read as it comes.
"""

from __future__ import annotations

import os
import pty
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ncid_client_script() -> Path | None:
    env = os.environ.get("CIDBRIDGE_NCID_CLIENT")
    if env:
        return Path(env)
    for parent in (ROOT, *ROOT.parents):
        candidate = parent / "shared" / "peers" / "ncid" / "ncid"
        if candidate.is_file():
            return candidate
    return None


class NcidTclClient:
    """``tclsh ncid --no-gui HOST PORT``; :meth:`wait_line` for what it prints."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        tclsh = shutil.which("tclsh")
        if tclsh is None:
            pytest.skip("tclsh is not installed (apt-get install tcl): the NCID client needs it")
        script = ncid_client_script()
        if script is None:
            pytest.skip("the NCID client (shared/peers/ncid/ncid) is not here; set CIDBRIDGE_NCID_CLIENT")
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [tclsh, str(script), "--no-gui", host, str(port)],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self._master = master
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                data = os.read(self._master, 4096)
            except OSError:
                break
            if not data:
                break
            pending += data
            *done, pending = pending.split(b"\n")
            for raw in done:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                self.lines.append(line)
                self._queue.put(line)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if predicate(line):
                return line
        raise TimeoutError(f"the NCID client printed no such line in {timeout}s; it printed {self.lines}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self._master)
