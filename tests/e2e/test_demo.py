"""``cidbridge demo`` starts, serves the panel, and delivers simulated calls."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from tests.support.node import NodeClient, node_or_skip


def test_demo_serves_panel_and_delivers_a_call():
    node_or_skip()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cidbridge", "demo", "--port", "0", "--interval", "0.5", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    client = None
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            match = re.search(r"open (http://\S+)", line)
            if match:
                url = match.group(1)
        assert url, "the demo did not print its URL"

        with urllib.request.urlopen(url, timeout=5) as response:
            page = response.read().decode()
        assert response.status == 200
        assert "cidbridge" in page and "panel/panel.js" in page

        client = NodeClient(url)
        assert client.wait_connected()["ev"] == "connect"
        call = client.wait_event(lambda e: e["type"] == "call", timeout=30)
        assert call["line"] == "demo"
        assert call["number"] or call["number_absence"] in ("private", "unavailable")
    finally:
        if client is not None:
            client.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0


def test_demo_for_a_panel_developed_elsewhere_cors_and_token():
    """`cidbridge demo --cors ORIGIN --token TOKEN`: a Next.js panel on ORIGIN connects with TOKEN."""
    node_or_skip()
    origin, token = "http://localhost:3000", "dev-token-0123456789"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cidbridge",
            "demo",
            "--port",
            "0",
            "--interval",
            "0.5",
            "--seed",
            "3",
            "--cors",
            origin,
            "--token",
            token,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        url = None
        while url is None and time.monotonic() < deadline:
            match = re.search(r"open (http://\S+)", proc.stdout.readline())
            if match:
                url = match.group(1)
        assert url and url.endswith(f"?token={token}"), url
        base = url.split("?")[0]

        good = NodeClient(base, token=token, origin=origin, transports=["polling", "websocket"])
        clients.append(good)
        assert good.wait_connected()["ev"] == "connect"
        call = good.wait_event(lambda e: e["type"] == "call", timeout=30)
        assert call["line"] == "demo"

        no_token = NodeClient(base, origin=origin, reconnection=False)
        clients.append(no_token)
        refused = no_token.wait_connected()
        assert refused["ev"] == "connect_error" and "token" in refused["message"]

        other = NodeClient(base, token=token, origin="http://evil.example", reconnection=False)
        clients.append(other)
        assert other.wait_connected()["ev"] == "connect_error"  # another origin is refused

        # The HTTP API answers that origin with CORS headers, and wants the token too.
        request = urllib.request.Request(base + "api/panel-config", headers={"Origin": origin})
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["access-control-allow-origin"] == origin
    finally:
        for client in clients:
            client.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0


def test_demo_refuses_a_bad_cors_origin():
    result = subprocess.run(
        [sys.executable, "-m", "cidbridge", "demo", "--port", "0", "--cors", "localhost:3000/app"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--cors 'localhost:3000/app' is not an origin" in result.stderr
