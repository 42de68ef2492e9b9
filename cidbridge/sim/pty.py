"""A simulated device on a pseudo-terminal: the real kernel tty, not a mocked port.

:class:`PtyDevice` opens a pty pair and gives cidbridge the slave side's path
(optionally through a stable symlink, like ``/dev/serial/by-id``).  A background
thread answers whatever cidbridge writes (through a model such as
:class:`~cidbridge.sim.modem.SimulatedModem`) and plays scripted output.

It can also be "unplugged" (the pty is closed: the reader sees EIO/hang-up, like a
USB device pulled out) and "replugged" (a new pty appears behind the same symlink).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterable
from pathlib import Path

Responder = Callable[[bytes], bytes]


class PtyDevice:
    """A device on a pty.  Use as a context manager, or call :meth:`close`."""

    def __init__(self, responder: Responder | None = None, *, link: str | os.PathLike[str] | None = None):
        self.responder = responder
        self.link = Path(link) if link is not None else None
        #: Everything cidbridge wrote to the device, in order.
        self.received = bytearray()
        self._lock = threading.Lock()
        self._master = -1
        self._slave = -1
        self._slave_path = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Slave fds of unplugged ptys, held until :meth:`close` (see :meth:`unplug`).
        self.retired: list[int] = []
        self.plug()

    # -- lifecycle ---------------------------------------------------------------

    @property
    def path(self) -> str:
        """The path cidbridge should open: the symlink if there is one, else the tty."""
        return str(self.link) if self.link is not None else self._slave_path

    @property
    def tty_path(self) -> str:
        return self._slave_path

    def plug(self) -> None:
        """Create the pty (and point the symlink at it) and start answering."""
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: a serial device, not a terminal
        tty.setraw(master)
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_path)
            tmp.replace(self.link)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="pty-device", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        """Pull the device out: the symlink disappears and the pty closes under the reader."""
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        # Closing the master hangs up every reader of the slave: the "unplug".  Our own
        # slave fd is kept open (the tty is dead, opening it again fails) so that its
        # /dev/pts number is not handed to the next pty opened on this machine while
        # a daemon may still be retrying that path: tests running side by side would
        # otherwise open each other's devices.
        with contextlib.suppress(OSError):
            os.close(self._master)
        if self._slave >= 0:
            self.retired.append(self._slave)
        self._master = self._slave = -1

    def close(self) -> None:
        """Unplug for good and release every pty this device used."""
        self.unplug()
        for fd in self.retired:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.retired.clear()

    def __enter__(self) -> PtyDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- output ------------------------------------------------------------------

    def write(self, data: bytes, timeout: float = 1.0) -> None:
        """Send bytes to cidbridge now; wait up to ``timeout`` s whenever the pty is full."""
        with self._lock:
            view = memoryview(data)
            while view:
                _, ready, _ = select.select([], [self._master], [], timeout)
                if not ready:
                    raise TimeoutError("the reader is not draining the pty")
                written = os.write(self._master, view)
                view = view[written:]

    def play(self, steps: Iterable[tuple[float, bytes]], speed: float = 1.0) -> None:
        """Write ``(delay_s, bytes)`` steps, sleeping ``delay_s / speed`` before each."""
        for delay, data in steps:
            if delay > 0:
                time.sleep(delay / speed)
            self.write(data)

    def wait_for_input(self, needle: bytes, timeout: float = 10.0) -> bool:
        """Wait until cidbridge has written ``needle`` (e.g. ``b"AT+VCID=1"``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if needle in self.received:
                    return True
            time.sleep(0.01)
        return False

    # -- the answering thread ------------------------------------------------------

    def _serve(self) -> None:
        master = self._master
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except OSError:
                # EIO: nobody has the slave open right now (between reopen attempts).
                time.sleep(0.02)
                continue
            if not data:
                continue
            with self._lock:
                self.received += data
            if self.responder is not None:
                answer = self.responder(data)
                if answer:
                    with contextlib.suppress(OSError, TimeoutError):
                        self.write(answer)
