"""What a changed config file means for a running daemon (the SIGHUP reload plan)."""

from __future__ import annotations

from cidbridge.config import parse
from cidbridge.service import ReloadPlan

BASE = """
[server]
token = "old-token-0123456789"
[[lines]]
name = "front"
port = "/dev/ttyACM0"
[[lines]]
name = "back"
port = "/dev/ttyACM1"
"""


def test_lines_added_removed_and_changed() -> None:
    new = BASE.replace('name = "back"', 'name = "side"').replace("ttyACM0", "ttyACM9")
    plan = ReloadPlan.between(parse(BASE), parse(new))
    assert [line.name for line in plan.lines_added] == ["side"]
    assert plan.lines_removed == ("back",)
    assert [line.name for line in plan.lines_changed] == ["front"]
    assert plan.needs_restart == ()
    assert "lines added: side" in plan.summary()


def test_added_token_keeps_clients_a_revoked_one_does_not() -> None:
    added = ReloadPlan.between(
        parse(BASE),
        parse(
            BASE.replace(
                'token = "old-token-0123456789"',
                'tokens = {a = "x-token-0123456789ab", default = "old-token-0123456789"}',
            )
        ),
    )
    assert not added.tokens_revoked
    assert "server.tokens" in added.changed
    revoked = ReloadPlan.between(
        parse(BASE), parse(BASE.replace('"old-token-0123456789"', '"new-token-0123456789"'))
    )
    assert revoked.tokens_revoked
    no_token = BASE.replace('token = "old-token-0123456789"', "")
    assert ReloadPlan.between(parse(no_token), parse(BASE)).tokens_revoked


def test_listening_address_and_store_need_a_restart() -> None:
    new = BASE.replace("[server]", "[server]\nport = 9999")
    new += '\n[store]\npath = "/tmp/x.sqlite"\n[log]\nlevel = "debug"\n'

    plan = ReloadPlan.between(parse(BASE), parse(new))
    assert plan.needs_restart == ("server.port", "store.path")
    assert "log.level" in plan.changed
    assert "needs a restart: server.port, store.path" in plan.summary()


def test_nothing_changed() -> None:
    plan = ReloadPlan.between(parse(BASE), parse(BASE))
    assert plan.summary() == "nothing changed"


def test_ncid_and_udp_changes_wait_for_a_restart() -> None:
    new = BASE + "\n[ncid]\nenabled = true\n[udp]\nsend = true\n"
    plan = ReloadPlan.between(parse(BASE), parse(new))
    assert plan.needs_restart == ("ncid.enabled", "udp.send")
    assert "needs a restart: ncid.enabled, udp.send" in plan.summary()
