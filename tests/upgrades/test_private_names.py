"""Every private library name cidbridge uses is still there, with the shape it relies on.

One test per row of :data:`cidbridge.internals.INTERNALS`: an upgrade of
python-engineio, python-socketio, uvicorn or Python that removes or reshapes one fails
here with the library, its version, the name and the file that uses it.  The
behaviour behind the names is tested elsewhere (tests/broadcast/test_fanout.py: the
direct path is taken by a real WebSocket client; tests/service/test_idle.py: the idle
server does not wake up).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from cidbridge import internals
from cidbridge.config import parse
from tests.broadcast.support import InProcessDaemon
from tests.support.node import NodeClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("internal", internals.INTERNALS, ids=lambda i: f"{i.library}: {i.name}")
def test_private_name_is_still_there(internal):
    problem = internals.run(internal)
    if problem is not None:
        pytest.fail(f"LIBRARY UPGRADE BROKE A PRIVATE NAME: {problem}", pytrace=False)


@pytest.mark.parametrize("internal", internals.INTERNALS, ids=lambda i: f"{i.library}: {i.name}")
def test_the_file_named_as_user_exists(internal):
    assert (ROOT / internal.used_by).is_file(), internal


def test_a_missing_name_is_reported_with_library_name_file_and_consequence():
    broken = internals.Internal(
        "python-engineio", "AsyncSocket.nothing", "cidbridge/server/fanout.py", "slower", lambda: {}["x"]
    )
    problem = internals.run(broken)
    assert problem is not None
    where = r"python-engineio \S+: AsyncSocket.nothing \(used by cidbridge/server/fanout.py\)"
    assert re.match(where, problem)
    assert "slower" in problem


def test_when_a_name_is_gone_the_daemon_warns_and_events_take_the_queue_path(monkeypatch, caplog, tmp_path):
    """Production behaviour when a check fails: one warning at start, correct but slower fan-out."""
    gone = internals.Internal(
        "python-engineio", "AsyncSocket.queue", "cidbridge/server/fanout.py", "slower", lambda: None, "fanout"
    )
    sentence = "python-engineio 9.9: AsyncSocket.queue (used by cidbridge/server/fanout.py) is missing"
    monkeypatch.setattr(internals, "problems", lambda: ((gone, sentence),))
    config = parse(f'[server]\nport = 0\n[store]\npath = "{tmp_path / "calls.sqlite"}"\n')
    with caplog.at_level(logging.WARNING, logger="cidbridge.daemon"):
        running = InProcessDaemon(config)
    try:
        out = running.daemon.broadcaster.fanout
        assert out.direct is False
        client = NodeClient(running.url)
        try:
            client.wait_connected()
            [event_id] = running.publish_calls(1)
            assert client.wait_event(lambda e: e["id"] == event_id)
        finally:
            client.close()
        assert (out.stats.direct, out.stats.queued) == (0, 1)
    finally:
        running.stop()
    assert [r.getMessage() for r in caplog.records if r.name == "cidbridge.daemon"].count(sentence) == 1


@pytest.mark.parametrize(
    "pattern",
    [r"\._async\b", r"_handle_emit", r"_redis_listen_with_retries", r"\._getters", r"default_headers"],
)
def test_every_private_name_in_the_code_is_in_the_table(pattern):
    """A new use of a known private name must come with a row (grep the package)."""
    users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "cidbridge").rglob("*.py")
        if path.name != "internals.py" and re.search(pattern, path.read_text())
    }
    listed = {internal.used_by for internal in internals.INTERNALS}
    assert users <= listed, f"{pattern} is used in {users - listed}, with no row in cidbridge/internals.py"
