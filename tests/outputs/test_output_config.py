"""[mqtt] and [[webhooks]]: validation with file:line: key: messages, secrets kept out of logs, reload."""

from __future__ import annotations

import logging

import pytest

from cidbridge.config import MqttConfig, check, parse
from cidbridge.reload import ReloadPlan

GOOD = """
[mqtt]
host = "192.168.1.20"
username = "cidbridge"
password = "mqtt-password-xyz"

[[webhooks]]
name = "crm"
url = "https://crm.example/hook?token=url-token-xyz"
secret = "webhook-secret-xyz-0123"
events = ["call", "missed"]
headers = { Authorization = "Bearer header-token-xyz" }

[[webhooks]]
name = "pos"
url = "http://127.0.0.1:9000/cid"
"""


def test_a_good_file_and_the_defaults() -> None:
    config = parse(GOOD)
    assert config.mqtt.enabled and config.mqtt.port == 1883 and config.mqtt.qos == 1
    assert config.mqtt.topic_prefix == "cidbridge" and config.mqtt.discovery_prefix == "homeassistant"
    crm, pos = config.webhooks
    assert crm.events == ("call", "missed") and crm.headers == {"Authorization": "Bearer header-token-xyz"}
    assert (pos.events, pos.secret, pos.timeout, pos.max_backoff, pos.max_backlog, pos.relayed) == (
        (),
        "",
        10.0,
        300.0,
        10_000,
        False,
    )
    assert parse('[mqtt]\nhost = "b"\ntls = true').mqtt.port == 8883
    assert not parse("").mqtt.enabled and parse("[mqtt]").mqtt == MqttConfig()


def test_secrets_never_show_in_a_logged_config(caplog: pytest.LogCaptureFixture) -> None:
    config = parse(GOOD)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("config: %s %r", config, config)
    for secret in ("mqtt-password-xyz", "url-token-xyz", "webhook-secret-xyz", "header-token-xyz"):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[mqtt]\nhost = "b"\nport = 0', "t.toml:3: mqtt.port: must be 1-65535, not 0"),
        ('[mqtt]\nhost = "b"\npassword = "p"', "t.toml:3: mqtt.password: needs a username too"),
        ('[mqtt]\nhost = "b"\nqos = 3', "t.toml:3: mqtt.qos: must be 0, 1 or 2, not 3"),
        ('[mqtt]\nhost = "b"\ntopic_prefix = "a/#"', "t.toml:3: mqtt.topic_prefix: must be an MQTT topic"),
        (
            '[mqtt]\nhost = "b"\nca_file = "/nonexistent.pem"',
            "t.toml:3: mqtt.ca_file: '/nonexistent.pem' is not",
        ),
        ('[mqtt]\nhots = "b"', "t.toml:2: mqtt.hots: unknown key; did you mean 'host'?"),
        ('[mqtt]\nhost = "b"\ntls = "yes"', "t.toml:3: mqtt.tls: must be true or false"),
        ('[webhooks]\nname = "a"', "t.toml:1: webhooks: must be an array of tables: write [[webhooks]]"),
        ('[[webhooks]]\nurl = "https://x/"', "t.toml:1: webhooks[0].name: is required"),
        (
            '[[webhooks]]\nname = "a"\nurl = "ftp://x/"',
            "t.toml:3: webhooks[0].url: is required: an http:// or",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x/"\nevents = ["cal"]',
            "webhooks[0].events: unknown event 'cal'; did",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x/"\nevents = []',
            "t.toml:4: webhooks[0].events: must not be",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x/"\nsecret = "short"',
            "webhooks[0].secret: must be at least 16",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x/"\ntimeout = 0',
            "t.toml:4: webhooks[0].timeout: must be 1-120",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x/"\nheaders = { "X-Cidbridge-Event-Id" = "1" }',
            "webhooks[0].headers: 'X-Cidbridge-Event-Id' is set by cidbridge itself",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x/"\n[[webhooks]]\nname = "a"\nurl = "https://y/"',
            "t.toml:5: webhooks[1].name: 'a' is used by two webhooks",
        ),
    ],
)
def test_each_mistake_is_one_clear_line(text: str, message: str) -> None:
    config, problems = check(text, file="t.toml")
    assert config is None
    assert any(message in str(problem) for problem in problems), [str(p) for p in problems]


def test_a_reload_reports_mqtt_and_webhook_changes_as_needing_a_restart() -> None:
    old = parse(GOOD)
    new = parse(GOOD.replace("192.168.1.20", "192.168.1.21").replace('name = "pos"', 'name = "till"'))
    plan = ReloadPlan.between(old, new)
    assert plan.needs_restart == ("mqtt.host", "webhooks.name")
    assert "needs a restart: mqtt.host, webhooks.name" in plan.summary()
    # Until the restart the daemon keeps running with the outputs it started with.
    kept = plan.keep_running(old)
    assert kept.mqtt == old.mqtt and kept.webhooks == old.webhooks
    assert ReloadPlan.between(old, parse(GOOD)).needs_restart == ()
