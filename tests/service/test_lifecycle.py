"""The daemon as systemd runs it: READY/STATUS/WATCHDOG, SIGHUP reload, SIGTERM in < 5 s.

Real processes throughout: ``cidbridge serve`` with ``$NOTIFY_SOCKET`` pointing at a
datagram socket this test holds (as systemd would), simulated modems on ptys, and
socket.io-client under Node.
"""

from __future__ import annotations

import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cidbridge.sim.modem import Caller, SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.support.daemon import DaemonProcess, write_config
from tests.support.node import NodeClient, node_or_skip
from tests.support.sse import SseReader

#: The longest a SIGTERM'd daemon may take to exit (the issue's bar; TimeoutStopSec is 15).
STOP_BUDGET = 5.0


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield path, sock
    finally:
        sock.close()


def receive_until(sock: socket.socket, predicate, timeout: float = 20.0) -> list[str]:
    """Every notify message until one satisfies ``predicate`` (which is last)."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            break
        messages.append(message)
        if predicate(message):
            return messages
    raise TimeoutError(f"no matching notify message in {timeout}s; got {messages}")


def write_reloadable(
    path: Path, lines: list[dict[str, str]], db: Path, tokens: dict[str, str], cors: tuple[str, ...] = ()
) -> None:
    """A config with named tokens (an inline table, which ``write_config`` does not write)."""
    table = ", ".join(f'{name} = "{value}"' for name, value in tokens.items())
    origins = ", ".join(f'"{origin}"' for origin in cors)
    text = (
        f'[server]\nhost = "127.0.0.1"\nport = 0\ntokens = {{ {table} }}\ncors_origins = [{origins}]\n\n'
        f'[store]\npath = "{db}"\n'
    )
    for line in lines:
        text += "\n[[lines]]\n" + "".join(f'{key} = "{value}"\n' for key, value in line.items())
    path.write_text(text)


def second_modem(tmp_path: Path, name: str) -> tuple[SimulatedModem, PtyDevice]:
    model = SimulatedModem()
    return model, PtyDevice(model.receive, link=tmp_path / name)


def test_ready_only_when_lines_tried_and_server_listens(modem, notify, tmp_path: Path) -> None:
    model, device = modem
    path, sock = notify
    config = write_config(
        tmp_path / "c.toml",
        lines=[
            {"name": "desk", "port": device.path},
            {"name": "back", "port": str(tmp_path / "not-plugged-in")},
        ],
        db=tmp_path / "calls.sqlite",
    )
    daemon = DaemonProcess(config, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"})
    try:
        messages = receive_until(sock, lambda m: "READY=1" in m)
        ready = messages[-1].split("\n")
        # Nothing but READY first: no watchdog ping or status before the daemon works.
        assert len(messages) == 1
        # By READY the modem has been initialised and the server answers.
        assert model.cid_enabled
        daemon.wait_ready()
        _, health = daemon.get("/healthz")
        assert health["lines"]["desk"]["state"] == "up"
        assert ready[1].startswith("STATUS=1/2 lines up; 0 clients; back down: ")
        assert "does not exist" in ready[1]
        # The watchdog is pinged from the event loop, every WATCHDOG_USEC / 2.
        later: list[str] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            sock.settimeout(0.5)
            try:
                later.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
        pings = later.count("WATCHDOG=1")
        assert pings >= 3, later
        # A line going down updates STATUS at once.
        device.unplug()
        receive_until(sock, lambda m: m.startswith("STATUS=0/2 lines up"), timeout=10)
    finally:
        assert daemon.stop() == 0
    assert any(m.startswith("STOPPING=1") for m in receive_until(sock, lambda m: "STOPPING=1" in m, 5))


def test_reload_keeps_clients_and_applies_lines_and_tokens(modem, tmp_path: Path) -> None:
    node_or_skip()
    _, device = modem
    model_b, device_b = second_modem(tmp_path, "ttyCID-b")
    config = tmp_path / "c.toml"
    db = tmp_path / "calls.sqlite"
    desk = {"name": "desk", "port": device.path}
    write_reloadable(config, [desk], db, {"default": "first-token-0123456789"})
    daemon = DaemonProcess(config)
    client = second = stream = None
    try:
        daemon.wait_ready()
        client = NodeClient(daemon.url, token="first-token-0123456789")
        assert client.wait_connected()["ev"] == "connect"

        assert _cors_origin(daemon, PANEL) is None  # same origin only, so far

        # Add a line, a second token and a CORS origin: SIGHUP, no restart, the client stays.
        write_reloadable(
            config,
            [desk, {"name": "side", "port": device_b.path}],
            db,
            {"default": "first-token-0123456789", "panel": "second-token-0123456789"},
            cors=(PANEL,),
        )
        daemon.proc.send_signal(signal.SIGHUP)
        client.wait_event(lambda e: e["type"] == "line" and e["line"] == "side" and e["state"] == "up")
        assert _cors_origin(daemon, PANEL) == PANEL
        assert model_b.cid_enabled
        device_b.play(model_b.call_script(Caller("0212345678"), rings=1), speed=20)
        call = client.wait_event(lambda e: e["type"] == "call" and e["line"] == "side")
        assert call["number"] == "0212345678"
        second = NodeClient(daemon.url, token="second-token-0123456789")
        assert second.wait_connected()["ev"] == "connect"
        stream = SseReader(daemon.url.rstrip("/") + "/api/stream?token=second-token-0123456789")
        stream.wait_event(lambda e: e["type"] == "call" and e["line"] == "side")

        # A broken file is reported and ignored: the daemon keeps its configuration.
        config.write_text(config.read_text() + "\n[server]\nport = 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        _wait_for_log(daemon, "reload failed")
        assert daemon.proc.poll() is None
        assert any("reload: " in line and "server" in line for line in daemon.stderr_lines)

        # Remove the line and the second token: the line is reported down with the reason,
        # the client of the revoked token is cut off, the other one stays.
        write_reloadable(config, [desk], db, {"default": "first-token-0123456789"})
        daemon.proc.send_signal(signal.SIGHUP)
        gone = client.wait_event(
            lambda e: e["type"] == "line" and e["line"] == "side" and e["state"] == "down"
        )
        assert gone["reason"] == "removed from the configuration"
        _wait_for_log(daemon, "reloaded")
        assert "side" not in daemon.get("/healthz", token="first-token-0123456789")[1]["lines"]
        assert second.wait_for(lambda m: m["ev"] == "disconnect")["reason"] == "io server disconnect"
        # The panel's stream with the revoked token ends before it is sent anything more.
        assert stream.ended.wait(10)
        assert not any(e["type"] == "line" and e["state"] == "down" for e in stream.events)
        assert [m for m in client.seen if m["ev"] in ("disconnect", "connect_error")] == []
        assert sum(m["ev"] == "connect" for m in client.seen) == 1
    finally:
        for peer in (client, second, stream):
            if peer is not None:
                peer.close()
        daemon.stop()
        device_b.close()


PANEL = "https://panel.example"


def _cors_origin(daemon: DaemonProcess, origin: str) -> str | None:
    """The ``Access-Control-Allow-Origin`` the HTTP API answers a page from ``origin``."""
    request = urllib.request.Request(
        daemon.url.rstrip("/") + "/api/calls?limit=1",
        headers={"Origin": origin, "Authorization": "Bearer first-token-0123456789"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers.get("access-control-allow-origin")


def _wait_for_log(daemon: DaemonProcess, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(daemon.stderr_lines):
            if text in line:
                return line
        time.sleep(0.05)
    raise TimeoutError(f"{text!r} not logged within {timeout}s:\n{daemon.stderr()}")


def test_sigterm_with_clients_and_calls_exits_0_within_5_s(modem, start_daemon, tmp_path: Path) -> None:
    node_or_skip()
    model, device = modem
    daemon = start_daemon([{"name": "desk", "port": device.path}], calls={"ring_gap": 2.0})
    clients = [NodeClient(daemon.url) for _ in range(5)]
    try:
        for client in clients:
            assert client.wait_connected()["ev"] == "connect"
        device.play(model.call_script(Caller("01055556666", "LEE JUNHO"), rings=1), speed=20)
        clients[0].wait_event(lambda e: e["type"] == "call")
        device.write(model.ring())  # a call in flight when the signal comes
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        status = daemon.proc.wait(timeout=15)
        took = time.monotonic() - started
        print(f"SIGTERM to exit with 5 clients connected: {took:.2f} s")
        assert status == 0, daemon.stderr()
        assert took < STOP_BUDGET
        # Clients were told (a clean close, not a timeout) and see the server go.
        for client in clients:
            client.wait_for(lambda m: m["ev"] == "disconnect", timeout=5)
    finally:
        for client in clients:
            client.close()
