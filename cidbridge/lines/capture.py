"""Raw capture: every byte a line reads, exactly as read, in a file that rotates by size.

A capture replays through ``cidbridge decode FILE`` into the same frames the daemon
saw, which is how a user's odd device becomes a test vector.  Only bytes *read*
are captured (not the AT commands written), so the file is the device's output.

Rotation keeps disk use bounded on a daemon that runs for months: when the file
would pass ``max_bytes`` it becomes ``FILE.1`` (``FILE.1`` becomes ``FILE.2``, …,
up to :data:`BACKUPS`) and a new ``FILE`` starts.  A capture that cannot be written
(disk full, folder gone) logs once and stops capturing; it never takes a line down.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path
from typing import BinaryIO

from cidbridge.config import LineConfig

log = logging.getLogger(__name__)

#: Rotated files kept besides the current one.
BACKUPS = 3
DEFAULT_MAX_BYTES = 10_000_000


class RawCapture:
    """Appends bytes to ``path``, rotating at ``max_bytes``.  Close it when done."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max(1, max_bytes)
        self._file: BinaryIO | None = None
        self._size = 0
        self.failed = False

    def write(self, data: bytes) -> None:
        if self.failed or not data:
            return
        try:
            if self._file is None:
                self._open()
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            assert self._file is not None
            self._file.write(data)
            # Flushed per chunk: a capture is read while the daemon runs, and a
            # modem's few bytes a second cost nothing to flush.
            self._file.flush()
            self._size += len(data)
        except OSError as exc:
            self.failed = True
            log.error("capture to %s stopped: %s", self.path, exc.strerror or exc)
            self.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open across writes
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self.close()
        for n in range(BACKUPS - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def with_capture(line: LineConfig, path: str | os.PathLike[str], *, several: bool) -> LineConfig:
    """``serve --capture FILE``: ``line`` with its ``capture`` set.

    With one line the capture is FILE itself; with several, each line's name goes
    before the suffix (``raw.bin`` → ``raw.front.bin``, ``raw.back.bin``).
    """
    base = Path(path)
    if several:
        base = base.with_name(f"{base.stem}.{line.name}{base.suffix}")
    return dataclasses.replace(line, capture=base)
