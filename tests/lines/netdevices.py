"""Devices on the network for tests: a box behind a TCP port (ser2net style), an RFC 2217 server."""

from __future__ import annotations

import contextlib
import socket
import threading

import serial
from serial import rfc2217


class TcpBox:
    """A caller-ID box behind a raw TCP port, like ser2net: one client at a time.

    ``send`` writes to the connected client; ``drop`` closes the connection (the
    network went away); the listener stays, so the client can come back.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._client: socket.socket | None = None
        self._connected = threading.Condition()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._connected:
                self._client = client
                self.connections += 1
                self._connected.notify_all()

    def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        with self._connected:
            if not self._connected.wait_for(lambda: self.connections >= count, timeout):
                raise TimeoutError(f"{self.connections} connection(s), wanted {count}")

    def send(self, data: bytes) -> None:
        assert self._client is not None
        self._client.sendall(data)

    def drop(self) -> None:
        if self._client is not None:
            self._client.close()

    def close(self) -> None:
        self.drop()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()


class Rfc2217Server:
    """Serves one serial device over RFC 2217 (pyserial's PortManager), on a free port."""

    def __init__(self, device_path: str) -> None:
        self.port = _PtySerial(device_path, timeout=0.05)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"rfc2217://127.0.0.1:{self.listener.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        manager = rfc2217.PortManager(self.port, _Sender(client))
        threading.Thread(target=self._to_network, args=(client, manager), daemon=True).start()
        while not self._stop.is_set():
            try:
                data = client.recv(1024)
            except OSError:
                break
            if not data:
                break
            self.port.write(b"".join(manager.filter(data)))
        client.close()

    def _to_network(self, client: socket.socket, manager: rfc2217.PortManager) -> None:
        while not self._stop.is_set():
            try:
                data = self.port.read(1024)
                if data:
                    client.sendall(b"".join(manager.escape(data)))
            except Exception:  # the port closed under us at shutdown
                return

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with contextlib.suppress(Exception):
            self.port.close()


class _PtySerial(serial.Serial):
    """A pty has no modem control lines: report them idle and ignore DTR/RTS changes."""

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    cts = dsr = ri = cd = property(lambda self: False)


class _Sender:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock, contextlib.suppress(OSError):
            self.sock.sendall(data)
