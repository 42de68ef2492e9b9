"""Issue 11, item 2: the connection limits and the request-head deadline, one at a time.

(The whole attack, at 1024 descriptors, is tests/reliability/test_exhaustion.py.)
"""

from __future__ import annotations

import socket
import time

from tests.security.support import host_port, log_lines, wait_log


def _open(url: str, source: str, count: int) -> list[socket.socket]:
    host, port = host_port(url)
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        sockets.append(sock)
    return sockets


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends before closing, waiting up to ``timeout`` (b"" if it stays silent and open)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        return data
    return data or b"<closed>"


def test_one_address_cannot_take_every_connection(start_daemon):
    daemon = start_daemon([], server={"max_connections": 12, "max_connections_per_address": 5})
    first = _open(daemon.url, "127.0.0.5", 8)
    try:
        answers = [_answer(sock, 0.5) for sock in first]
        kept = [a for a in answers if a == b""]
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(kept) == 5 and len(refused) == 3, answers
        assert b"retry-after: 5" in refused[0].lower()
        # Other addresses still get in, up to the total: 12.
        others = _open(daemon.url, "127.0.0.6", 5) + _open(daemon.url, "127.0.0.7", 3)
        first += others
        answers = [_answer(sock, 0.5) for sock in others]
        assert answers.count(b"") == 7 and answers[-1].startswith(b"HTTP/1.1 503"), answers
        wait_log(daemon, "12 connections are open ([server] max_connections)")
        assert len(log_lines(daemon, "connections from this address are open")) == 1  # once a minute
    finally:
        for sock in first:
            sock.close()


def test_a_request_head_must_arrive_within_10_seconds_even_one_byte_at_a_time(start_daemon):
    daemon = start_daemon([])
    host, port = host_port(daemon.url)
    silent = socket.create_connection((host, port), timeout=30)
    trickle = socket.create_connection((host, port), timeout=30)
    # A keep-alive connection that got an answer, then sends line ends forever (no request begins).
    after = socket.create_connection((host, port), timeout=30)
    try:
        after.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert after.recv(4096).startswith(b"HTTP/1.1 200")
        trickle.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        closed: dict[str, float] = {}
        peers = (("silent", silent, b""), ("trickle", trickle, b"X: y\r\n"), ("after", after, b"\r\n"))
        while len(closed) < 3 and time.monotonic() - started < 40:
            for name, sock, drip in peers:
                if name in closed:
                    continue
                try:
                    if drip:
                        sock.sendall(drip)
                    sock.settimeout(0.3)
                    data = sock.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    data = b""
                if not data or data.startswith(b"HTTP/1.1 408"):
                    closed[name] = time.monotonic() - started
        assert set(closed) == {"silent", "trickle", "after"}, closed
    finally:
        for sock in (silent, trickle, after):
            sock.close()
    wait_log(daemon, "no complete request within 10 s")
