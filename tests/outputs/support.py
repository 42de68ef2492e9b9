"""Real peers for the output tests: a mosquitto broker, MQTT subscribers, an HTTP receiver process."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.broadcast.support import free_port, post_call, wait_until

HERE = Path(__file__).resolve().parent
TOKEN = "outputs-test-token-0123456789"

__all__ = [
    "TOKEN",
    "Mosquitto",
    "Receiver",
    "Subscriber",
    "free_port",
    "post_call",
    "retained",
    "wait_until",
]


def _tool_or_skip(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return path


class Mosquitto:
    """A real mosquitto on a free loopback port, its own config and persistence in ``workdir``.

    With ``persistence`` a subscriber's session (and the messages queued for it)
    survives :meth:`stop` / :meth:`start`; without it a restart forgets everything,
    retained messages included.  ``extra``: config lines for the listener instead of
    ``allow_anonymous true`` (TLS, a password file).
    """

    def __init__(self, workdir: Path, *, persistence: bool = True, extra: str = "") -> None:
        self.binary = _tool_or_skip("mosquitto", "mosquitto")
        self.port = free_port()
        self.workdir = workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            # Run as us: as root mosquitto would switch to its own user, which cannot
            # write the persistence file or read the test's certificates here.
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            f"{extra or 'allow_anonymous true'}\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {workdir / 'data'}/\n"
            "max_queued_messages 100000\n"
            "log_dest stderr\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        wait_until(self._listening, 10, "mosquitto listening")

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its sessions and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, nothing is read or answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def crash(self) -> None:
        """SIGKILL: what it had not processed is gone; it saves nothing."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None


class Subscriber:
    """A paho-mqtt subscriber with a persistent session (QoS 1): it gets what was published
    while it was away, across broker restarts.  :attr:`messages` holds (topic, payload, retain)."""

    def __init__(self, port: int, topics: list[str], client_id: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda client, *_: client.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("subscriber not subscribed")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def json(self, topic: str) -> list[Any]:
        return [json.loads(p) for p in self.payloads(topic)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def retained(port: int, *topics: str) -> dict[str, bytes]:
    """The retained messages on ``topics`` (filters), as a fresh ``mosquitto_sub`` sees them."""
    binary = _tool_or_skip("mosquitto_sub", "mosquitto-clients")
    args = [binary, "-h", "127.0.0.1", "-p", str(port), "--retained-only", "-W", "1", "-F", "%t\t%p"]
    for topic in topics:
        args += ["-t", topic]
    done = subprocess.run(args, capture_output=True, timeout=20)
    found: dict[str, bytes] = {}
    for line in done.stdout.splitlines():
        topic, _, payload = line.partition(b"\t")
        found[topic.decode()] = payload
    return found


class Receiver:
    """The webhook receiver script (``webhook_receiver.py``) as a real process on a fixed port."""

    def __init__(self, workdir: Path, *, port: int | None = None, mode: str = "ok") -> None:
        self.port = port or free_port()
        self.record = workdir / "received.jsonl"
        self.mode = mode
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "webhook_receiver.py"), str(self.port), str(self.record), self.mode],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "listening" once bound
        if b"listening" not in line:
            raise RuntimeError(f"receiver did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def received(self) -> list[dict[str, Any]]:
        """Every request recorded so far: {"headers": {...}, "body": "..."}, in arrival order."""
        if not self.record.exists():
            return []
        text = self.record.read_text(encoding="utf-8")
        # The receiver may be writing a record right now: read only the complete lines.
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]
