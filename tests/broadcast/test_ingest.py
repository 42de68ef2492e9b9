"""``POST /api/cti/incoming-call``: validation, and calls through tracker → log → broadcast."""

from __future__ import annotations

import pytest

from cidbridge.core.frames import CidFrame, HookFrame, RingFrame
from cidbridge.server.ingest import IngestError, parse_call
from tests.broadcast.support import http, post_call
from tests.support.node import NodeClient

TOKEN = "ingest-token-0123456789"


def test_parse_maps_reports_onto_tracker_frames():
    assert parse_call({"number": " 01012345678 ", "name": "KIM"}) == (
        "api",
        CidFrame("api", number="01012345678", name="KIM"),
    )
    assert parse_call({"line": "pbx", "event": "ring"}) == ("pbx", RingFrame("api"))
    assert parse_call({"event": "answered"})[1] == HookFrame("api", "off")
    assert parse_call({"event": "ended"})[1] == HookFrame("api", "on")
    assert parse_call({})[1] == CidFrame("api", number_absence="unavailable")
    assert parse_call({"number_absence": "private"})[1] == CidFrame("api", number_absence="private")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ([], None),
        ({"numbr": "010"}, {"numbr"}),
        ({"number": 1012345678}, {"number"}),
        ({"number": "010-CALL-ME"}, {"number"}),
        ({"number": "0" * 33}, {"number"}),
        ({"name": "x" * 65, "event": "hangup", "line": ""}, {"name", "event", "line"}),
        ({"number_absence": "secret"}, {"number_absence"}),
    ],
)
def test_parse_rejects_bad_input_naming_every_field(body, fields):
    with pytest.raises(IngestError) as caught:
        parse_call(body)
    assert caught.value.status == 422
    assert (set(caught.value.problems) if caught.value.problems else None) == fields


@pytest.fixture
def daemon(start_daemon, tmp_path):
    # A serial line that is down (no such port): its name is still taken.
    return start_daemon([{"name": "desk", "port": str(tmp_path / "no-such-tty")}], server={"token": TOKEN})


def test_http_errors_are_clear(daemon):
    url = daemon.url
    assert post_call(url, {"number": "0212345678"}, None)[0] == 401
    assert post_call(url, {"number": "0212345678"}, "wrong")[0] == 401
    status, answer = post_call(url, b"{not json", TOKEN)
    assert status == 400 and "not valid JSON" in answer["error"]
    status, answer = post_call(url, {"name": "x" * 20_000}, TOKEN)
    assert status == 413
    status, answer = post_call(url, b"number=0212345678", TOKEN, **{"Content-Type": "text/plain"})
    assert status == 415
    status, answer = post_call(url, {"number": "abc", "extra": 1}, TOKEN)
    assert status == 422 and set(answer["problems"]) == {"number", "extra"}
    status, answer = post_call(url, {"number": "0212345678", "line": "desk"}, TOKEN)
    assert status == 409 and "serial line" in answer["error"]
    assert http(url, "/api/cti/incoming-call")[0] == 405


def test_ingest_needs_a_configured_token(start_daemon):
    daemon = start_daemon([])
    status, answer = post_call(daemon.url, {"number": "0212345678"}, None)
    assert status == 403
    assert "token" in answer["error"]


def test_a_posted_call_is_tracked_logged_and_broadcast(daemon):
    client = NodeClient(daemon.url, token=TOKEN)
    try:
        client.wait_connected()
        status, rang = post_call(daemon.url, {"number": "01098765432", "name": "PARK", "line": "pbx"}, TOKEN)
        assert status == 200
        assert [e["type"] for e in rang["events"]] == ["call"]
        call = client.wait_event(lambda e: e["type"] == "call")
        assert (call["line"], call["number"], call["call_id"]) == ("pbx", "01098765432", rang["call_id"])

        # The same caller again within the call: an update at most, never a second call.
        status, again = post_call(daemon.url, {"number": "01098765432", "line": "pbx"}, TOKEN)
        assert status == 200 and again["call_id"] in (None, rang["call_id"])

        post_call(daemon.url, {"event": "answered", "line": "pbx"}, TOKEN)
        status, ended = post_call(daemon.url, {"event": "ended", "line": "pbx"}, TOKEN)
        assert status == 200 and ended["call_id"] == rang["call_id"]
        end = client.wait_event(lambda e: e["type"] == "end")
        assert end["outcome"] == "answered"
        assert end["duration_s"] is not None
    finally:
        client.close()
    status, answer = daemon.get("/api/calls", token=TOKEN)
    assert status == 200
    calls = answer["calls"]
    assert calls[0]["call_id"] == rang["call_id"]
    assert calls[0]["outcome"] == "answered"
