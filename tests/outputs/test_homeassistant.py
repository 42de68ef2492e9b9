"""MQTT topics and Home Assistant discovery messages, sans I/O: hostile line names stay in their place."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from cidbridge.outputs.homeassistant import Topics, discovery_messages, object_id, topic_level


def test_a_line_name_is_one_topic_level_and_a_valid_discovery_id() -> None:
    hostile = ["a/b", "#", "+/+", "unit:3", "접수", "x\x00y", "", "<script>"]
    for name in hostile:
        assert not re.search(r"[/+#\x00]", topic_level(name)) and topic_level(name)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", object_id(name))
    # Names that only differ in characters that had to go stay apart.
    assert len({object_id(n) for n in ("1:2", "1/2", "1_2", "1 2")}) == 4
    assert object_id("front-desk") == "front-desk" and topic_level("front-desk") == "front-desk"


def test_discovery_for_a_hostile_line_name_keeps_every_topic_under_the_node() -> None:
    topics = Topics("cidbridge", "desk/1")
    messages = discovery_messages(topics, "a/#/b", discovery_prefix="homeassistant", connection=True)
    assert len(messages) == 4
    for topic, config in messages:
        assert re.fullmatch(
            r"homeassistant/(sensor|event|binary_sensor)/desk_1_[0-9a-f]{6}/[\w-]+/config", topic
        )
        assert config["state_topic"].startswith("cidbridge/desk_1/line/a___b/")
        assert config["device"]["name"] == "a/#/b"  # shown as it is; only ids and topics are made safe
        json.dumps(config)  # JSON-ready


def test_config_check_names_the_outputs_but_no_secret(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[mqtt]\nhost = "192.168.1.20"\nusername = "u"\npassword = "pw-0123456789"\n'
        '[[webhooks]]\nname = "crm"\nurl = "https://crm.example/?token=tok-0123456789"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "cidbridge", "config", "check", str(config)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "events also go out by MQTT to 192.168.1.20:1883, webhook crm" in done.stdout
    assert "pw-0123456789" not in done.stdout and "tok-0123456789" not in done.stdout
