"""What the security tests share: raw HTTP on a socket, hostile caller names, log checks."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import time
from typing import Any

from websockets.sync.client import connect

from cidbridge.core.formats.modem_text import encode_block
from tests.support.daemon import DaemonProcess

#: A caller name that tries everything on a terminal: an OSC title, a screen clear,
#: a Rich link, a closing tag that crashed Rich, and a right-to-left override.
HOSTILE_NAME = "\x1b]0;PWNED-TITLE\x07\x1b[2J [link=http://evil.example]x[/link] [/] \u202eKIM"
#: What is left of it once control characters are removed.
CLEAN_NAME = "]0;PWNED-TITLE[2J [link=http://evil.example]x[/link] [/] KIM"


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    return host.strip("[]"), int(port)


def raw_exchange(url: str, request: bytes, *, timeout: float = 10.0, source: str | None = None) -> bytes:
    """Send ``request`` as is and return what the server answers until it closes (or the head ends)."""
    host, port = host_port(url)
    source_address = (source, 0) if source else None
    with socket.create_connection((host, port), timeout=timeout, source_address=source_address) as sock:
        sock.sendall(request)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and b" 101 " in answer.split(b"\r\n", 1)[0]:
                break  # an upgrade was accepted: the connection stays open
    return answer


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 for none)."""
    parts = answer.split(b"\r\n", 1)[0].split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def get(url: str, path: str, host: str, *, headers: dict[str, str] | None = None) -> bytes:
    """A GET for ``path`` naming ``host`` in its Host header."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return raw_exchange(url, ("\r\n".join(lines) + "\r\n\r\n").encode())


def websocket_upgrade(url: str, host: str, origin: str | None = None) -> bytes:
    """A Socket.IO WebSocket upgrade naming ``host``; the raw answer's head."""
    key = base64.b64encode(os.urandom(16)).decode()
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    if origin:
        headers["Origin"] = origin
    lines = ["GET /socket.io/?EIO=4&transport=websocket HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return raw_exchange(url, ("\r\n".join(lines) + "\r\n\r\n").encode(), timeout=5)


def cid_call(number: str, name: str | None) -> bytes:
    """A call as a modem prints it: RING, the caller-ID block, RING."""
    block = encode_block(number, name, month=11, day=26, hour=9, minute=30)
    return b"\r\nRING\r\n\r\n" + block + b"\r\n\r\nRING\r\n"


def log_lines(daemon: DaemonProcess, text: str) -> list[str]:
    return [line for line in daemon.stderr_lines if text in line]


def wait_log(daemon: DaemonProcess, text: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = log_lines(daemon, text)
        if found:
            return found
        time.sleep(0.05)
    raise TimeoutError(f"no log line with {text!r} within {timeout}s: {daemon.stderr()}")


def header(answer: bytes, name: str) -> str | None:
    """A header's value in a raw answer (first occurrence), or None."""
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


# -- a minimal Socket.IO client with headers of our choosing ---------------------------


class ConnectionRefused(Exception):
    pass


class _Socket:
    def __init__(self, ws: Any, context: Any) -> None:
        self.ws = ws
        self._context = context

    def wait_closed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = self.ws.recv(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                continue
            except Exception:
                return True
            if frame == "2":
                self.ws.send("3")
            elif isinstance(frame, str) and frame.startswith("41"):
                return True
        return False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._context.__exit__(None, None, None)


def socketio_connect(url: str, auth: dict[str, Any], headers: dict[str, str] | None = None) -> _Socket:
    """Connect over WebSocket with ``auth`` and extra ``headers``; raise :class:`ConnectionRefused`."""
    ws_url = url.replace("http://", "ws://").rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
    try:
        context = connect(ws_url, compression=None, open_timeout=10, additional_headers=headers or {})
        ws = context.__enter__()
    except Exception as exc:  # the upgrade itself refused (an origin Engine.IO does not accept)
        raise ConnectionRefused(str(exc)) from None
    ws.recv(timeout=10)  # Engine.IO open
    ws.send("40" + json.dumps(auth))
    while True:
        frame = ws.recv(timeout=10)
        if frame == "2":
            ws.send("3")
        elif isinstance(frame, str) and frame.startswith("44"):
            context.__exit__(None, None, None)
            raise ConnectionRefused(json.loads(frame[2:]).get("message", ""))
        elif isinstance(frame, str) and frame.startswith("40"):
            return _Socket(ws, context)
