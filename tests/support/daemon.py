"""Start ``cidbridge serve`` as a real process, the way production does, and stop it."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

READY = re.compile(r"panel at (https?://\S+)")


def write_config(
    path: Path, *, lines: list[dict[str, Any]], db: Path, **sections: dict[str, Any] | list[dict[str, Any]]
) -> Path:
    """Write a TOML config: ``lines`` are [[lines]] tables, ``sections`` other tables (a list of
    tables is an array of tables, like ``webhooks=[{...}, {...}]``)."""
    # Defaults first; a test's own [server] keys (a fixed port for a restart) replace them.
    server = {"host": "127.0.0.1", "port": 0, **sections.pop("server", {})}  # type: ignore[dict-item]
    out = ["[server]"] + [f"{key} = {_toml(value)}" for key, value in server.items()]
    out += ["", "[store]", f"path = {json.dumps(str(db))}"]
    for name, tables in sections.items():
        for table in tables if isinstance(tables, list) else [tables]:
            header = f"[[{name}]]" if isinstance(tables, list) else f"[{name}]"
            out += ["", header] + [f"{k} = {_toml(v)}" for k, v in table.items()]
    for line in lines:
        out += ["", "[[lines]]"] + [f"{k} = {_toml(v)}" for k, v in line.items()]
    path.write_text("\n".join(out) + "\n")
    return path


def _toml(value: Any) -> str:
    """A TOML value: JSON's form for strings, numbers, booleans and lists; tables inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


class DaemonProcess:
    """``python -m cidbridge serve --config FILE`` in a subprocess; ``url`` once ready."""

    def __init__(
        self,
        config: Path,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        preexec_fn: Any = None,
    ):
        """``preexec_fn`` runs in the child before ``exec`` (e.g. to set its RLIMIT_NOFILE)."""
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cidbridge", "serve", "--config", str(config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,
        )
        self.url = ""
        self.stderr_lines: list[str] = []
        self._stdout: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._stdout.put), daemon=True).start()
        threading.Thread(
            target=self._pump, args=(self.proc.stderr, self.stderr_lines.append), daemon=True
        ).start()

    @staticmethod
    def _pump(stream: Any, put: Any) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def wait_ready(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._stdout.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"daemon exited {self.proc.returncode}: {self.stderr()}") from None
                continue
            match = READY.search(line)
            if match:
                self.url = match.group(1)
                return self.url
        raise TimeoutError(f"daemon not ready after {timeout}s: {self.stderr()}")

    def stderr(self) -> str:
        return "\n".join(self.stderr_lines[-40:])

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.url.rstrip("/") + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        content_type: str | None = "application/json",
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """Any method; ``body`` sent as JSON (or ``raw`` bytes); the answer decoded as JSON if it is."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)
        if content_type and data is not None:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        try:
            return status, json.loads(payload or b"null")
        except ValueError:
            return status, payload

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
