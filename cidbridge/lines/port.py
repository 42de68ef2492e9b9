"""Opening any pyserial URL as an asyncio stream pair, and noticing when a device comes back.

:func:`open_port` gives ``(StreamReader, StreamWriter)`` for

* a device path (``/dev/serial/by-id/…``, ``/dev/ttyACM0``) and any URL whose port
  has a file descriptor: pyserial-asyncio-fast's transport, which watches the fd;
* ``socket://host:port`` (a box behind ser2net): a plain asyncio TCP connection,
  with TCP keep-alive so a vanished peer is noticed;
* ports with no file descriptor (``loop://``, ``rfc2217://``): a transport whose
  thread does pyserial's blocking reads, since there is nothing to select on.

Device paths are opened exclusively (``flock``), so two programs cannot share a
modem.  Failures raise :class:`serial.SerialException`, :class:`OSError` or
:class:`ValueError` (a malformed URL); :func:`cidbridge.lines.diagnose.describe_open_error`
turns them into a sentence.

Noticing that a device path appeared again is :mod:`cidbridge.lines.pathwatch`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import serial
import serial_asyncio_fast

log = logging.getLogger(__name__)

#: Seconds a TCP connection (``socket://``) may take to open.
CONNECT_TIMEOUT = 5.0
#: How long the reading thread of an fd-less port blocks per read, and so how fast it stops.
POLL_READ_TIMEOUT = 0.05

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def is_url(port: str) -> bool:
    """``socket://…``, ``loop://`` and friends, as opposed to a device path."""
    return "://" in port


async def open_port(url: str, baudrate: int) -> Streams:
    """Open ``url`` (any pyserial URL) exclusively as an asyncio stream pair.  See the module doc."""
    loop = asyncio.get_running_loop()
    if urlsplit(url).scheme == "socket":
        return await _open_tcp(url)
    opener = functools.partial(serial.serial_for_url, url, baudrate=baudrate, exclusive=True)
    port = await loop.run_in_executor(None, opener)
    reader = asyncio.StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    if _has_fileno(port):
        transport, _ = await serial_asyncio_fast.connection_for_serial(loop, lambda: protocol, port)
    else:
        transport = _ThreadReadTransport(loop, protocol, port)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def close_port(writer: asyncio.StreamWriter, *tasks: asyncio.Task[Any], timeout: float = 2.0) -> None:
    """Cancel ``tasks`` (the port's readers), close the port and wait until it is closed.

    Waiting matters: the file descriptor and its lock must be released before the same
    path is opened again.  So the port is aborted, not closed gracefully: what was not
    sent yet is dropped, both in the transport and in the tty's output queue, since a
    device that stopped reading (a hung modem, a flow-control line held) would keep a
    graceful close draining, and the port locked by this very process, for as long as
    it stays that way.  A port that will not close within ``timeout`` is left to the
    transport; a failure to close is not an error worth raising here.
    """
    for task in tasks:
        task.cancel()
    port = writer.transport.get_extra_info("serial")
    if port is not None and hasattr(port, "reset_output_buffer"):
        with contextlib.suppress(Exception):
            port.reset_output_buffer()  # tcflush(TCOFLUSH): nothing left for close() to wait on
    writer.transport.abort()
    # gather, not a suppress(BaseException): the caller's own cancellation must go through.
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await writer.wait_closed()


def _has_fileno(port: serial.SerialBase) -> bool:
    try:
        port.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        return False
    return True


async def _open_tcp(url: str) -> Streams:
    parts = urlsplit(url)
    if not parts.hostname or parts.port is None:
        raise ValueError(f"{url} needs a host and a port, like socket://192.168.1.20:4001")
    async with asyncio.timeout(CONNECT_TIMEOUT):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # A box on the network can vanish without a FIN (power cut, cable): let the
        # kernel probe an idle connection after 30 s and give up after 3 misses.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    return reader, writer


class _ThreadReadTransport(asyncio.Transport):
    """A transport for a pyserial port with no file descriptor (``loop://``, ``rfc2217://``).

    A daemon thread blocks in ``port.read`` (at most :data:`POLL_READ_TIMEOUT` s at a
    time) and hands data to the loop; writes go straight to the port, which for
    these URLs is a memory queue or a socket send of a few bytes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, port: Any) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._port = port
        self._closing = False
        self._lost = False
        port.timeout = POLL_READ_TIMEOUT
        self._thread = threading.Thread(target=self._read_forever, name=f"read {port.port}", daemon=True)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._thread.start)

    def _read_forever(self) -> None:
        error: BaseException | None = None
        while not self._closing:
            try:
                data = self._port.read(max(1, self._port.in_waiting))
            except Exception as exc:  # any failure of the port ends the connection
                error = exc
                break
            if data:
                self._call(self._protocol.data_received, data)
        with contextlib.suppress(Exception):
            self._port.close()
        self._call(self._connection_lost, error)

    def _call(self, callback: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(callback, *args)

    def _connection_lost(self, exc: BaseException | None) -> None:
        if not self._lost:
            self._lost = True
            self._protocol.connection_lost(exc)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        try:
            self._port.write(bytes(data))
        except Exception as exc:
            self._closing = True
            self._connection_lost(exc)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        # The thread notices within POLL_READ_TIMEOUT, closes the port, reports the loss.
        self._closing = True

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._port if name == "serial" else default

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0
