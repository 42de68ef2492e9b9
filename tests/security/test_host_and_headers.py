"""Issue 11, items 1, 3 and 12: the Host check, CORS without credentials, no JSONP, security headers.

Against a real ``cidbridge serve`` on loopback with the shipped defaults (no token).
A DNS-rebinding page sends its own name as ``Host``; before the check, that was
enough to read the whole call log over HTTP, SSE and Socket.IO.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from html.parser import HTMLParser
from importlib import resources

from tests.broadcast.support import http, post_call
from tests.security.support import get, header, log_lines, status_of, wait_log, websocket_upgrade
from tests.support.daemon import write_config

TOKEN = "hosts-token-0123456789"
EVIL = "rebind.evil.example"
PATHS = ("/", "/api/calls", "/api/events", "/api/stream", "/healthz", "/panel/panel.js", "/metrics")
POLLING = "/socket.io/?EIO=4&transport=polling"


def test_a_foreign_host_is_refused_on_every_route_and_logged_once_a_minute(start_daemon):
    daemon = start_daemon([])
    port = daemon.url.rstrip("/").rsplit(":", 1)[1]
    foreign = f"{EVIL}:{port}"
    rebinding = {"Origin": f"http://{foreign}"}
    for path in (*PATHS, POLLING):
        answer = get(daemon.url, path, foreign, headers=rebinding)
        assert status_of(answer) == 400, (path, answer[:300])
        assert header(answer, "access-control-allow-origin") is None
        assert b'"calls"' not in answer and b"cti-event" not in answer
    upgrade = websocket_upgrade(daemon.url, foreign, origin=f"http://{foreign}")
    assert status_of(upgrade) == 400, upgrade[:300]
    # Loopback names, with or without the port, and IPv6 in brackets, are served.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}", f"LOCALHOST:{port}"):
        assert status_of(get(daemon.url, "/healthz", host)) == 200, host
    assert status_of(websocket_upgrade(daemon.url, f"127.0.0.1:{port}")) == 101
    # One log line for all those refusals of one host; another host gets its own.
    wait_log(daemon, "refused a request for host")
    get(daemon.url, "/healthz", f"other.evil.example:{port}")
    wait_log(daemon, "other.evil.example")
    refusals = log_lines(daemon, "refused a request for host")
    assert len([r for r in refusals if EVIL in r]) == 1, refusals
    assert len(refusals) == 2, refusals


def test_allowed_hosts_and_the_configured_host_are_served(start_daemon):
    daemon = start_daemon([], server={"allowed_hosts": ["frontdesk.example", "*.clinic.example"]})
    port = daemon.url.rstrip("/").rsplit(":", 1)[1]
    for host in (f"frontdesk.example:{port}", f"pc1.clinic.example:{port}", "frontdesk.example"):
        assert status_of(get(daemon.url, "/api/calls", host)) == 200, host
    assert status_of(get(daemon.url, "/api/calls", f"clinic.example.evil:{port}")) == 400


def test_every_response_carries_the_security_headers(start_daemon):
    daemon = start_daemon([])
    port = daemon.url.rstrip("/").rsplit(":", 1)[1]
    for path in (*PATHS, POLLING, "/nowhere", "/api/session"):
        answer = get(daemon.url, path, f"127.0.0.1:{port}")
        assert status_of(answer) in (200, 404), (path, answer[:200])
        _assert_headers(answer, path)
    _assert_headers(get(daemon.url, "/", f"{EVIL}:{port}"), "refused host")
    _assert_headers(get(daemon.url, POLLING + "&j=0", f"127.0.0.1:{port}"), "jsonp")


def _assert_headers(answer: bytes, what: str) -> None:
    csp = header(answer, "content-security-policy") or ""
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (what, csp)
    assert "'unsafe-inline'" not in csp
    assert re.search(r"script-src 'self'(;|$)", csp), csp
    assert header(answer, "x-content-type-options") == "nosniff", what
    assert header(answer, "x-frame-options") == "DENY", what
    assert header(answer, "referrer-policy") == "no-referrer", what


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.inline.append("<script> without src")
        self.inline += [f"{tag} {name}=" for name in names if name.startswith("on")]
        if tag == "style" or "style" in names:
            self.inline.append(f"inline style on {tag}")


def test_the_panel_page_has_no_inline_script_or_style():
    """The CSP allows scripts and styles from the daemon's files only: the page must not need more."""
    page = (resources.files("cidbridge.server") / "panel" / "index.html").read_text(encoding="utf-8")
    scripts = _Scripts()
    scripts.feed(page)
    assert scripts.inline == []


def test_engineio_jsonp_is_refused(start_daemon):
    daemon = start_daemon([])
    status, _, body = http(daemon.url, POLLING + "&j=0")
    assert status == 400
    assert b"___eio" not in body
    assert http(daemon.url, POLLING)[0] == 200


def test_socketio_never_allows_credentials_cross_origin(start_daemon):
    panel = "http://panel.example:3000"
    daemon = start_daemon([], server={"token": TOKEN, "cors_origins": [panel]})
    status, headers, _ = http(daemon.url, POLLING, headers={"Origin": panel})
    assert status == 200
    assert headers.get("access-control-allow-origin") == panel
    assert "access-control-allow-credentials" not in headers
    status, headers, _ = http(daemon.url, POLLING, headers={"Origin": "http://evil.example"})
    assert status == 400
    assert "access-control-allow-origin" not in headers


def test_cors_star_without_a_token_is_refused(tmp_path):
    config = tmp_path / "star.toml"
    config.write_text('[server]\ncors_origins = ["*"]\n')
    check = subprocess.run(
        [sys.executable, "-m", "cidbridge", "config", "check", str(config)], capture_output=True, text=True
    )
    assert check.returncode == 2
    assert f"{config}:2: server.cors_origins:" in check.stdout and "needs a token" in check.stdout
    serve = subprocess.run(
        [sys.executable, "-m", "cidbridge", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert serve.returncode == 2
    assert "server.cors_origins" in serve.stderr and "Traceback" not in serve.stderr


def test_cors_star_with_a_token_still_needs_the_token(start_daemon):
    daemon = start_daemon([], server={"token": TOKEN, "cors_origins": ["*"]})
    post_call(daemon.url, {"number": "0212345678"}, TOKEN)
    status, headers, body = http(daemon.url, "/api/calls", headers={"Origin": "http://any.example"})
    assert status == 401 and b"0212345678" not in body
    status, headers, _ = http(daemon.url, POLLING, headers={"Origin": "http://any.example"})
    assert "access-control-allow-credentials" not in headers


def test_allowed_hosts_apply_on_reload_and_config_check_warns_about_a_wildcard_host(start_daemon, tmp_path):
    daemon = start_daemon([])
    port = int(daemon.url.rstrip("/").rsplit(":", 1)[1])
    assert status_of(get(daemon.url, "/healthz", f"frontdesk-pc:{port}")) == 400
    write_config(
        daemon.config,
        lines=[],
        db=tmp_path / "calls.sqlite",
        server={"port": port, "allowed_hosts": ["frontdesk-pc"]},
    )
    daemon.proc.send_signal(signal.SIGHUP)
    wait_log(daemon, "reloaded")
    assert status_of(get(daemon.url, "/healthz", f"frontdesk-pc:{port}")) == 200

    wide = tmp_path / "wide.toml"
    wide.write_text(f'[server]\nhost = "0.0.0.0"\ntoken = "{TOKEN}"\n')
    check = subprocess.run(
        [sys.executable, "-m", "cidbridge", "config", "check", str(wide)], capture_output=True, text=True
    )
    assert check.returncode == 0 and "warning: server.allowed_hosts" in check.stdout
