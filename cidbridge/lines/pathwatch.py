"""Noticing a device coming back: its path appearing, or leading to another device.

A line that is down retries with a backoff that grows to 30 s; a replugged device
should not wait for it.  :class:`PathWatch` remembers which device a path leads to and
:meth:`PathWatch.wait_changed` returns as soon as it leads elsewhere: the path
appeared, vanished, a by-id symlink was re-pointed at another tty, or the node was
recreated (or re-permissioned by udev) in place.

It waits on the kernel's inotify (through asyncinotify), watching the deepest
directory of the path that exists (``/dev/serial/by-id`` goes away with the last USB
serial device, so then ``/dev/serial``, then ``/dev``) and the directory of the node a
symlink leads to; each event there is checked against the remembered identity.  No
timer runs: a down line sleeps until something changes in those directories.  Where
inotify cannot be had (another OS, a container without it, the kernel's watch limit
reached) it looks every :data:`FALLBACK_POLL` seconds instead.  URLs
(``socket://``, ``rfc2217://``) have no path: :meth:`wait_changed` then never returns
and the line's backoff alone decides when to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Seconds between looks at a device path when inotify is not available.
FALLBACK_POLL = 5.0


def _is_url(port: str) -> bool:
    return "://" in port


class PathWatch:
    """Remembers which device a path leads to; see the module doc."""

    def __init__(self, port: str) -> None:
        self.path = None if _is_url(port) else port
        self.identity = self._identity()

    def _identity(self) -> tuple[object, ...] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
            return (os.path.realpath(self.path), st.st_ino, st.st_rdev, st.st_ctime_ns)
        except OSError:
            return None

    @property
    def exists(self) -> bool:
        return self.path is not None and self.identity is not None

    def changed(self) -> bool:
        """Whether the path now leads somewhere else than when this watch was made."""
        return self.path is not None and self._identity() != self.identity

    async def wait_changed(self) -> None:
        """Return once :meth:`changed` is true (for a URL: never; cancel it)."""
        if self.path is None:
            await asyncio.Event().wait()
        try:
            inotify = _inotify()
        except (ImportError, OSError, AttributeError) as exc:
            log.debug("no inotify (%s); looking at %s every %g s", exc, self.path, FALLBACK_POLL)
            await self._poll()
            return
        with inotify:
            watched: dict[Path, Any] = {}
            while True:
                try:
                    self._arm(inotify, watched)
                except OSError as exc:  # the watch limit, a directory that went meanwhile
                    log.debug("cannot watch %s (%s); looking every %g s", self.path, exc, FALLBACK_POLL)
                    await self._poll()
                    return
                if self.changed():  # also what happened before the watches were in place
                    return
                event = await inotify.get()
                if event.mask & _IGNORED:  # its directory went (and may come back): watch anew
                    watched = {d: w for d, w in watched.items() if w is not event.watch}

    async def _poll(self) -> None:
        while not self.changed():
            await asyncio.sleep(FALLBACK_POLL)

    def _arm(self, inotify: Any, watched: dict[Path, Any]) -> None:
        """Watch the directories that matter now, and only those."""
        assert self.path is not None
        wanted = {_deepest_directory(Path(self.path))}
        real = Path(os.path.realpath(self.path))
        if real != Path(self.path) and real.parent.is_dir():
            wanted.add(real.parent)  # the tty node a symlink leads to: recreated in place?
        for directory in set(watched) - wanted:
            with contextlib.suppress(OSError):  # already gone with its directory
                inotify.rm_watch(watched.pop(directory))
        for directory in wanted - set(watched):
            watched[directory] = inotify.add_watch(directory, _mask())


def _mask() -> Any:
    """Entries created, removed, renamed or re-permissioned; the directory itself going."""
    from asyncinotify import Mask

    return (
        Mask.CREATE
        | Mask.DELETE
        | Mask.MOVED_FROM
        | Mask.MOVED_TO
        | Mask.ATTRIB
        | Mask.DELETE_SELF
        | Mask.MOVE_SELF
        | Mask.ONLYDIR
    )


#: The event saying a watch ended (its directory was removed), asyncinotify's Mask.IGNORED.
_IGNORED = 0x8000


def _deepest_directory(path: Path) -> Path:
    """The nearest ancestor of ``path`` that exists as a directory (``/`` at worst)."""
    for parent in path.absolute().parents:
        if parent.is_dir():
            return parent
    return Path("/")


def _inotify() -> Any:
    """A new inotify instance (its descriptor is closed with it)."""
    from asyncinotify import Inotify

    return Inotify()
