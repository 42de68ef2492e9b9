"""Why a port cannot be used, in one sentence with the fix.

The problems users of caller-ID software hit again and again (the README's "Finding
the port" and "Exit statuses"): the device is not there or moved, the user is not in the
group that owns it, another program holds it (very often ModemManager, which probes
every new ``ttyACM``), or a network box is off.  :func:`describe_open_error` names
which one it is and what to do; the CLI prints it and exits with status 5, the
daemon logs it and shows it as the line's ``reason``.
"""

from __future__ import annotations

import errno
import grp
import os
import socket
from pathlib import Path

from cidbridge.lines.port import is_url

UDEV_HINT = 'see "ModemManager" in the README for the udev rule that keeps it away'


def describe_open_error(port: str, exc: BaseException) -> str:
    """One sentence saying why ``port`` cannot be used and what to do about it."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if isinstance(exc, socket.gaierror):
        return f"cannot find the host of {port} ({exc.strerror}); check the address"
    if isinstance(exc, TimeoutError) and is_url(port):
        return f"{port} did not answer the connection in time; is the device on and reachable?"
    if code == errno.ECONNREFUSED:
        return f"nothing is listening at {port}; is ser2net (or the network box) running on that port?"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT):
        return f"cannot reach {port} ({os.strerror(code)}); check the network and the address"
    if code == errno.ENOENT or "No such file" in text:
        return f"{port} does not exist; plug the device in, or run `cidbridge ports` to find its path"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        group = owning_group(port) or "dialout"
        return (
            f"permission denied on {port}; add this user to the {group} group "
            f"(sudo usermod -aG {group} $USER, then log in again)"
        )
    if code in (errno.EAGAIN, errno.EBUSY) or "exclusively lock" in text:
        return describe_busy(port)
    if code in (errno.ENXIO, errno.ENODEV, errno.EIO):
        return f"{port} exists but no device answers behind it; unplug it and plug it in again"
    return f"cannot use {port}: {text}"


def describe_busy(port: str) -> str:
    """``port`` is held by another program: name it when we can see it.

    The process holding the port's lock is named (a process that only has the port
    open, like a terminal, is not the one in the way), else every process with it open.
    """
    holders = port_holders(port)
    if any(pid == os.getpid() for pid, _, locked in holders if locked):
        return f"{port} is still held by this cidbridge (its previous attempt is closing it); retrying"
    others = [(pid, name, locked) for pid, name, locked in holders if pid != os.getpid()]
    named = [(pid, name) for pid, name, locked in others if locked] or [(p, n) for p, n, _ in others]
    if any(name == "ModemManager" for _, name in named):
        return f"ModemManager is holding {port}; {UDEV_HINT}"
    if named:
        who = ", ".join(f"{name} (pid {pid})" for pid, name in named)
        return f"{port} is in use by {who}; stop it first"
    hint = f"; ModemManager is running: {UDEV_HINT}" if modemmanager_running() else ""
    return f"{port} is in use by another program (find it with: sudo fuser -v {_real(port)}){hint}"


def port_holders(port: str) -> list[tuple[int, str, bool]]:
    """Processes (pid, name, holds its lock) with ``port`` open, among those this user may see.

    "Holds its lock": the open file has a lock (``lock:`` in ``/proc/PID/fdinfo/FD``,
    the flock pyserial's ``exclusive`` takes), wherever it was inherited.
    """
    target = _real(port)
    found: list[tuple[int, str, bool]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue  # gone, or not ours to see
        opened = locked = False
        for fd in fds:
            try:
                if os.readlink(fd) != target:
                    continue
                opened = True
                info = (proc / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            locked = locked or "\nlock:" in info
        if opened:
            found.append((int(proc.name), _process_name(proc), locked))
    return found


def modemmanager_running() -> bool:
    """Whether a ModemManager process exists (it probes new modems with AT commands)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and _process_name(proc) == "ModemManager":
            return True
    return False


def owning_group(port: str) -> str | None:
    """Name of the group that owns the device node (``dialout`` on Debian, ``uucp`` on Arch)."""
    if is_url(port):
        return None
    try:
        return grp.getgrgid(os.stat(port).st_gid).gr_name
    except (OSError, KeyError):
        return None


def _process_name(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return "?"


def _real(port: str) -> str:
    return port if is_url(port) else os.path.realpath(port)
