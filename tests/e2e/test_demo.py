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
