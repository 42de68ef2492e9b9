"""Issue 11, items 4 and 5: token rules, one parser, slow guessing, and the panel's session cookie.

Against a real ``cidbridge serve`` on loopback.  Before: a 1-character token was
accepted, 390 requests found a 2-character one in 0.1 s with no trace in the log,
``Bearer  <token>`` (two spaces) worked on one route and not another, and the panel
carried the token in every URL it opened.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.broadcast.support import INGEST, http, post_call
from tests.security.support import (
    ConnectionRefused,
    get,
    header,
    log_lines,
    raw_exchange,
    socketio_connect,
    status_of,
    wait_log,
)
from tests.support.daemon import write_config
from tests.support.sse import SseReader

TOKEN = "sessions-token-0123456789"
NEW_TOKEN = "sessions-token-abcdefghij"
ROUTES = ("/api/calls", "/api/events", "/api/calls.csv", "/metrics")


def cidbridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cidbridge", *args], capture_output=True, text=True, timeout=60
    )


# -- token rules ---------------------------------------------------------------------


def test_short_tokens_are_refused_naming_the_key_and_the_fix(tmp_path):
    config = tmp_path / "weak.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\ntoken = "a"\ntokens = { office = "short-secret" }\n')
    result = cidbridge("config", "check", str(config))
    assert result.returncode == 2
    assert f"{config}:3: server.token: is 1 characters; use at least 16 random characters" in result.stdout
    assert "server.tokens.office: is 12 characters" in result.stdout
    assert "cidbridge config init" in result.stdout and "secrets.token_urlsafe" in result.stdout
    assert cidbridge("serve", "--config", str(config)).returncode == 2


def test_config_init_writes_a_strong_token_in_a_private_file(tmp_path):
    tokens = []
    for name in ("a.toml", "b.toml"):
        output = tmp_path / name
        result = cidbridge("config", "init", "--output", str(output), "--port", "loop://")
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(output.stat().st_mode) == 0o640
        match = re.search(r'(?m)^token = "([A-Za-z0-9_-]+)"$', output.read_text())
        assert match is not None and len(match.group(1)) >= 32
        tokens.append(match.group(1))
        assert cidbridge("config", "check", str(output)).returncode == 0
    assert tokens[0] != tokens[1]


# -- one parser ----------------------------------------------------------------------


def _stream_status(url: str, headers: dict[str, str], query: str = "") -> int:
    port = url.rstrip("/").rsplit(":", 1)[1]
    lines = [f"GET /api/stream{query} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return status_of(raw_exchange(url, ("\r\n".join(lines) + "\r\n\r\n").encode(), timeout=2))


def test_every_route_reads_the_token_the_same_way(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    accepted = (f"Bearer {TOKEN}", f"Bearer  {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN} ")
    refused = ("Bearer", f"Basic {TOKEN}", f"Token {TOKEN}", f"Bearer{TOKEN}")
    for route in ROUTES:
        for value in accepted:
            assert http(daemon.url, route, headers={"Authorization": value})[0] == 200, (route, value)
        for value in refused:
            assert http(daemon.url, route, headers={"Authorization": value})[0] == 401, (route, value)
    for value in accepted:
        assert _stream_status(daemon.url, {"Authorization": value}) == 200, value
        assert post_call(daemon.url, {"number": "0212340001"}, None, Authorization=value)[0] == 200
    # ?token= only where a header is impossible (EventSource): not on the JSON API, not on the ingest.
    assert _stream_status(daemon.url, {}, f"?token={TOKEN}") == 200
    assert http(daemon.url, f"/api/calls?token={TOKEN}")[0] == 401
    assert post_call(daemon.url, {"number": "0212340002"}, None, **{"X-Ignored": "1"})[0] == 401
    status, _, _ = http(
        daemon.url,
        f"{INGEST}?token={TOKEN}",
        method="POST",
        body=b'{"number": "0212340003"}',
        headers={"Content-Type": "application/json"},
    )
    assert status == 401


# -- guessing ------------------------------------------------------------------------


def test_http_guessing_is_throttled_per_address_and_logged_once(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    guesses = [f"guess-{n:02d}-0123456789" for n in range(10)]
    for guess in guesses:
        assert http(daemon.url, "/api/calls", headers={"Authorization": f"Bearer {guess}"})[0] == 401
    status, headers, _ = http(daemon.url, "/api/calls", headers={"Authorization": "Bearer one-more-guess-xx"})
    assert status == 429 and int(headers["retry-after"]) >= 1
    # Throttled means every token: a right guess looks like a wrong one.
    status, headers, _ = http(daemon.url, "/api/calls", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 429
    assert post_call(daemon.url, {"number": "0212340004"}, TOKEN)[0] == 429
    # Socket.IO shares the count: guessing cannot move over there.
    with pytest.raises(ConnectionRefused, match="too many wrong tokens"):
        socketio_connect(daemon.url, {"token": TOKEN})
    wait_log(daemon, "wrong token from 127.0.0.1")
    lines = log_lines(daemon, "wrong token from")
    assert len(lines) == 1, lines
    assert not any(guess in line for guess in guesses for line in daemon.stderr_lines)
    # The allowance refills: one more try after Retry-After seconds.
    time.sleep(int(headers["retry-after"]))
    assert http(daemon.url, "/api/calls", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


def test_socketio_guessing_is_throttled_too(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    for n in range(10):
        with pytest.raises(ConnectionRefused, match="invalid or missing token"):
            socketio_connect(daemon.url, {"token": f"socket-guess-{n:02d}-0123"})
    with pytest.raises(ConnectionRefused, match="too many wrong tokens"):
        socketio_connect(daemon.url, {"token": TOKEN})
    assert http(daemon.url, "/api/calls", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 429


# -- the panel's session -------------------------------------------------------------


def _session(url: str, body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http(
        url, "/api/session", method="POST", body=data, headers={"Content-Type": "application/json", **headers}
    )


def _cookie(headers: dict[str, str]) -> str:
    match = re.match(r"cidbridge_session=([^;]+)", headers["set-cookie"])
    assert match is not None, headers["set-cookie"]
    return match.group(1)


def test_sign_in_gives_an_httponly_strict_cookie_that_works_only_from_the_same_origin(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    own = daemon.url.rstrip("/")
    assert json.loads(http(daemon.url, "/api/session")[2]) == {"signed_in": False, "token_required": True}
    assert _session(daemon.url, {"token": "wrong-token-0123456789"})[0] == 401
    assert _session(daemon.url, b'{"token": "x"}', **{"Content-Type": "text/plain"})[0] == 415
    assert _session(daemon.url, {"token": TOKEN}, Origin="http://evil.example")[0] == 403

    status, headers, _ = _session(daemon.url, {"token": TOKEN, "remember": False})
    assert status == 204
    attributes = headers["set-cookie"].lower()
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
    assert "max-age" not in attributes and "secure" not in attributes  # plain HTTP: a session cookie
    cookie = _cookie(headers)
    assert TOKEN not in cookie
    status, headers, _ = _session(daemon.url, {"token": TOKEN, "remember": True})
    assert "max-age=15552000" in headers["set-cookie"].lower()
    assert _cookie(headers) == cookie  # the same token always makes the same cookie (restarts too)

    jar = {"Cookie": f"cidbridge_session={cookie}"}
    assert json.loads(http(daemon.url, "/api/session", headers=jar)[2]) == {
        "signed_in": True,
        "token_required": True,
    }
    assert http(daemon.url, "/api/calls", headers=jar)[0] == 200
    assert _stream_status(daemon.url, {**jar, "Sec-Fetch-Site": "same-origin"}) == 200
    assert post_call(daemon.url, {"number": "0212340005"}, None, **jar, Origin=own)[0] == 200
    # Another page, even on this host, cannot use it: no cross-site request forgery.
    other_port = f"http://127.0.0.1:{int(own.rsplit(':', 1)[1]) + 1}"
    assert post_call(daemon.url, {"number": "0212340006"}, None, **jar, Origin=other_port)[0] == 403
    assert (
        post_call(daemon.url, {"number": "0212340007"}, None, **jar, **{"Sec-Fetch-Site": "same-site"})[0]
        == 403
    )
    assert http(daemon.url, "/api/calls", headers={**jar, "Origin": other_port})[0] == 403
    calls = json.loads(http(daemon.url, "/api/calls", headers=jar)[2])["calls"]
    assert [c["number"] for c in calls] == ["0212340005"]
    # A forged or tampered cookie is refused.
    forged = {"Cookie": f"cidbridge_session={cookie[:-2]}xx"}
    assert http(daemon.url, "/api/calls", headers=forged)[0] == 401
    # Signing out clears it.
    status, headers, _ = http(daemon.url, "/api/session", method="DELETE", headers={**jar, "Origin": own})
    assert status == 204 and "max-age=0" in headers["set-cookie"].lower()


def test_an_old_bookmark_with_the_token_sets_the_cookie_and_drops_the_token(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    port = daemon.url.rstrip("/").rsplit(":", 1)[1]
    answer = get(daemon.url, f"/?token={TOKEN}", f"127.0.0.1:{port}")
    assert status_of(answer) == 303 and header(answer, "location") == "/"
    cookie = (header(answer, "set-cookie") or "").split(";")[0]
    assert cookie.startswith("cidbridge_session=") and TOKEN not in cookie
    assert http(daemon.url, "/api/calls", headers={"Cookie": cookie})[0] == 200
    wrong = get(daemon.url, "/?token=not-the-token-0123", f"127.0.0.1:{port}")
    assert status_of(wrong) == 303 and header(wrong, "set-cookie") is None
    assert status_of(get(daemon.url, "/", f"127.0.0.1:{port}")) == 200  # the panel itself


def test_a_reload_that_changes_the_token_ends_its_sessions(start_daemon, tmp_path):
    daemon = start_daemon([], server={"token": TOKEN})
    _, headers, _ = _session(daemon.url, {"token": TOKEN})
    jar = {"Cookie": f"cidbridge_session={_cookie(headers)}"}
    own = daemon.url.rstrip("/")
    socket = socketio_connect(daemon.url, {}, headers={**jar, "Origin": own})
    request = urllib.request.Request(daemon.url.rstrip("/") + "/api/stream", headers=jar)
    stream = SseReader(request)  # type: ignore[arg-type]
    try:
        port = int(own.rsplit(":", 1)[1])
        write_config(
            Path(daemon.config),
            lines=[],
            db=tmp_path / "calls.sqlite",
            server={"token": NEW_TOKEN, "port": port},
        )
        daemon.proc.send_signal(signal.SIGHUP)
        wait_log(daemon, "reloaded")
        assert http(daemon.url, "/api/calls", headers=jar)[0] == 401
        assert stream.ended.wait(20)
        assert socket.wait_closed(20)
    finally:
        stream.close()
        socket.close()


def test_socketio_takes_the_cookie_from_its_own_origin_only(start_daemon):
    panel = "http://panel.example:3000"  # allowed by CORS: it may connect, with its own token
    daemon = start_daemon([], server={"token": TOKEN, "cors_origins": [panel]})
    _, headers, _ = _session(daemon.url, {"token": TOKEN})
    jar = {"Cookie": f"cidbridge_session={_cookie(headers)}"}
    # (With cors_origins set, Engine.IO accepts only the listed origins, so "same
    # origin" is shown here by a request without Origin: not a browser, no forgery.)
    socketio_connect(daemon.url, {}, headers=jar).close()
    socketio_connect(daemon.url, {"token": TOKEN}, headers={"Origin": panel}).close()
    with pytest.raises(ConnectionRefused, match="own pages"):
        socketio_connect(daemon.url, {}, headers={**jar, "Origin": panel})
    with pytest.raises(ConnectionRefused, match="invalid or missing token"):
        socketio_connect(daemon.url, {}, headers={"Origin": panel})
