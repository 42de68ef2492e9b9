"""The config keys the broadcaster adds: [server] TLS and connect limits, [broadcast]."""

from __future__ import annotations

import pytest

from cidbridge.config import BroadcastConfig, ConfigError, parse


def test_defaults_are_one_process_plain_http():
    config = parse("")
    assert config.broadcast == BroadcastConfig(redis_url="", node="", channel="cidbridge")
    assert (config.server.tls_cert, config.server.tls_key) == (None, None)
    assert (config.server.connect_burst, config.server.connect_rate) == (100, 10.0)


def test_valid_values_are_read(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    config = parse(
        f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\nconnect_burst = 5\nconnect_rate = 1\n'
        '[broadcast]\nredis_url = "redis://127.0.0.1:6380/1"\nnode = "desk-2"\nchannel = "site-a"\n'
    )
    assert (config.server.tls_cert, config.server.tls_key) == (cert, key)
    assert (config.server.connect_burst, config.server.connect_rate) == (5, 1.0)
    assert config.broadcast == BroadcastConfig("redis://127.0.0.1:6380/1", "desk-2", "site-a")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[server]\ntls_cert = "/no/such.pem"\ntls_key = "/no/such.pem"\n', "server.tls_cert"),
        ("[server]\nconnect_burst = 0\n", "server.connect_burst"),
        ('[broadcast]\nredis_url = "localhost:6379"\n', "broadcast.redis_url"),
        ('[broadcast]\nredis_url = "http://localhost"\n', "broadcast.redis_url"),
        ('[broadcast]\nnode = "two words"\n', "broadcast.node"),
        ('[broadcast]\nchanel = "x"\n', "broadcast.chanel"),
    ],
)
def test_mistakes_name_the_key(text, key):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert key in {problem.key for problem in caught.value.problems}
