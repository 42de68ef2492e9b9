"""Tokens, CORS, size caps, abusive clients and TLS, against a real ``cidbridge serve``."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from websockets.exceptions import ConnectionClosed

from tests.broadcast.support import RawSocketIO, http, post_call
from tests.support.node import NodeClient

TOKEN = "security-token-0123456789"
PANEL = "http://panel.example:3000"


@pytest.fixture
def daemon(start_daemon):
    return start_daemon([], server={"token": TOKEN, "cors_origins": [PANEL]})


def test_socketio_cors_allows_listed_origins_only(daemon):
    allowed = NodeClient(daemon.url, token=TOKEN, origin=PANEL)
    other = NodeClient(daemon.url, token=TOKEN, origin="http://evil.example", reconnection=False)
    try:
        assert allowed.wait_connected()["ev"] == "connect"
        assert other.wait_connected()["ev"] == "connect_error"
    finally:
        allowed.close()
        other.close()


def test_socketio_default_is_same_origin_only(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    same = NodeClient(daemon.url, token=TOKEN, origin=daemon.url.rstrip("/"))
    other = NodeClient(daemon.url, token=TOKEN, origin="http://localhost:3000", reconnection=False)
    try:
        assert same.wait_connected()["ev"] == "connect"
        assert other.wait_connected()["ev"] == "connect_error"
    finally:
        same.close()
        other.close()


def test_http_cors_allow_list(daemon):
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    status, headers, _ = http(
        daemon.url, "/api/calls", method="OPTIONS", headers={"Origin": PANEL, **preflight}
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == PANEL
    status, headers, _ = http(
        daemon.url, "/api/calls", method="OPTIONS", headers={"Origin": "http://evil.example", **preflight}
    )
    assert status == 400
    assert "access-control-allow-origin" not in headers
    auth = {"Authorization": f"Bearer {TOKEN}"}
    _, headers, _ = http(daemon.url, "/api/calls", headers={"Origin": PANEL, **auth})
    assert headers["access-control-allow-origin"] == PANEL


def test_http_default_sends_no_cors_headers(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    status, headers, _ = http(
        daemon.url,
        "/api/calls",
        headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"},
    )
    assert status == 200
    assert not any(name.startswith("access-control-") for name in headers)


def test_http_api_requires_the_token(daemon):
    for path in ("/api/calls", "/api/events", "/metrics"):
        assert http(daemon.url, path)[0] == 401
        assert http(daemon.url, path, headers={"Authorization": "Bearer nope"})[0] == 401
        assert http(daemon.url, path, headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_oversized_client_message_closes_only_that_client(daemon):
    listener = NodeClient(daemon.url, token=TOKEN)
    raw = RawSocketIO(daemon.url)
    try:
        listener.wait_connected()
        raw.connect({"token": TOKEN})
        raw.receive_until(lambda f: f.startswith("40"))
        raw.send("42" + json.dumps(["note", "x" * 20_000]))
        with pytest.raises(ConnectionClosed):
            raw.receive_until(lambda f: False, timeout=10)
        post_call(daemon.url, {"number": "0212340000"}, TOKEN)
        listener.wait_event(lambda e: e["number"] == "0212340000")
    finally:
        raw.close()
        listener.close()


def test_flooding_client_is_disconnected_and_others_are_served(daemon):
    flooder = NodeClient(daemon.url, token=TOKEN, reconnection=False)
    other = NodeClient(daemon.url, token=TOKEN)
    try:
        flooder.wait_connected()
        other.wait_connected()
        flooder.send("flood 2000")
        assert flooder.wait_for(lambda m: m["ev"] == "disconnect")["reason"] == "io server disconnect"
        post_call(daemon.url, {"number": "0212341111"}, TOKEN)
        other.wait_event(lambda e: e["number"] == "0212341111")
    finally:
        flooder.close()
        other.close()
    assert not any(m["ev"] == "disconnect" for m in other.seen)


def test_reconnect_loop_is_refused_while_connected_clients_carry_on(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN, "connect_burst": 10, "connect_rate": 1})
    connected = NodeClient(daemon.url, token=TOKEN)
    try:
        connected.wait_connected()
        refusal = None
        for _ in range(50):  # bounded: the limit is 10 in a burst
            raw = RawSocketIO(daemon.url)
            try:
                raw.connect({"token": TOKEN})
                answer = raw.receive_until(lambda f: f.startswith(("40", "44")))
            finally:
                raw.close()
            if answer.startswith("44"):
                refusal = json.loads(answer[2:])
                break
        assert refusal == {"message": "too many connection attempts; retry later"}
        for _ in range(5):  # the loop goes on: refused again, but not logged again
            raw = RawSocketIO(daemon.url)
            try:
                raw.connect({"token": TOKEN})
                assert raw.receive_until(lambda f: f.startswith(("40", "44"))).startswith("44")
            finally:
                raw.close()
        post_call(daemon.url, {"number": "0212342222"}, TOKEN)
        connected.wait_event(lambda e: e["number"] == "0212342222")
    finally:
        connected.close()
    assert not any(m["ev"] == "disconnect" for m in connected.seen)
    daemon.stop()
    refusals = [line for line in daemon.stderr_lines if "too many attempts" in line]
    assert len(refusals) == 1, refusals


def test_tokens_never_reach_the_log(start_daemon):
    guess = "wrong-guess-9876543210"
    daemon = start_daemon([], server={"token": TOKEN}, log={"level": "debug"})
    good = NodeClient(daemon.url, token=TOKEN)
    bad = NodeClient(daemon.url, token=guess, reconnection=False)
    try:
        good.wait_connected()
        bad.wait_connected()
        post_call(daemon.url, {"number": "0212343333"}, TOKEN)
        post_call(daemon.url, {"number": "0212343333"}, guess)
        http(daemon.url, f"/api/calls?token={TOKEN}")
        good.wait_event(lambda e: e["number"] == "0212343333")
    finally:
        good.close()
        bad.close()
    daemon.stop()
    log = "\n".join(daemon.stderr_lines)
    assert "connected" in log  # debug logging was on
    assert TOKEN not in log
    assert guess not in log


def test_tls_serves_wss_and_https(start_daemon, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    daemon = start_daemon([], server={"token": TOKEN, "tls_cert": str(cert), "tls_key": str(key)})
    assert daemon.url.startswith("https://")
    client = NodeClient(daemon.url, token=TOKEN, insecure=True)
    try:
        assert client.wait_connected()["ev"] == "connect"
        status, _, body = http(
            daemon.url,
            "/api/cti/incoming-call",
            method="POST",
            body=b'{"number": "0212344444"}',
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            insecure=True,
        )
        assert status == 200, body
        client.wait_event(lambda e: e["number"] == "0212344444")
    finally:
        client.close()


def test_a_refused_origin_is_logged_once_a_minute_naming_the_key(daemon):
    """Browsers hide why a cross-origin request failed (``xhr poll error``): the log says it."""
    from tests.security.support import log_lines, wait_log

    evil = "http://evil.example:3000"
    handshake = "/socket.io/?EIO=4&transport=polling"
    assert http(daemon.url, handshake, headers={"Origin": evil})[0] == 400  # Engine.IO refuses it
    for _ in range(3):
        http(daemon.url, "/api/calls", headers={"Origin": evil, "Authorization": f"Bearer {TOKEN}"})
    # Allowed and same-origin pages are not reported.
    http(daemon.url, handshake, headers={"Origin": PANEL})
    http(
        daemon.url,
        "/api/calls",
        headers={"Origin": daemon.url.rstrip("/"), "Authorization": f"Bearer {TOKEN}"},
    )
    [line] = wait_log(daemon, "cors_origins")
    assert "'http://evil.example:3000'" in line and "[server] cors_origins" in line, line
    http(daemon.url, "/api/calls", headers={"Origin": "null"})
    wait_log(daemon, "origin 'null'")
    reports = log_lines(daemon, "cors_origins")
    assert len(reports) == 2, reports
    assert not any(PANEL in line or daemon.url.rstrip("/") in line for line in reports), reports
