"""``[panel] open_url``: checked when the config is read, every field escaped when used."""

from __future__ import annotations

import pytest

from cidbridge import open_url
from cidbridge.config import ConfigError, parse


def test_fields_are_percent_encoded():
    template = "https://emr.local/p?phone={e164}&n={name}&d={display}&raw={number}"
    link = open_url.render(
        template, {"e164": "+821012345678", "name": "김 & <x>", "display": "010-1234-5678", "number": "#1"}
    )
    assert link == (
        "https://emr.local/p?phone=%2B821012345678&n=%EA%B9%80%20%26%20%3Cx%3E&d=010-1234-5678&raw=%231"
    )


def test_a_missing_value_gives_no_link():
    assert open_url.render("https://x/?p={e164}", {"e164": None, "name": "Kim"}) is None
    assert open_url.render("", {"e164": "+1"}) is None


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://emr.local/?p={phone}", "unknown placeholder {phone}; use {e164}, {number}"),
        ("https://emr.local/?p={e164!r}", "without a format or conversion"),
        ("https://emr.local/?p={e164", "write a brace as"),
        ("javascript:alert({name})", "not allowed"),
        ("emr.local/?p={e164}", "absolute URL"),
        ("https://emr.local/", "uses no placeholder"),
    ],
)
def test_bad_templates_are_refused_at_load_with_the_line(template, message):
    text = f'[server]\nport = 1\n\n[panel]\nopen_url = "{template}"\n'
    with pytest.raises(ConfigError) as caught:
        parse(text, file="c.toml")
    problem = str(caught.value)
    assert problem.startswith("c.toml:5: panel.open_url:") and message in problem, problem


def test_a_good_template_and_a_custom_scheme():
    assert parse('[panel]\nopen_url = "https://emr.local/?p={e164}"\n').panel.open_url
    assert parse('[panel]\nopen_url = "emr://patient/{number}"\n').panel.open_url == "emr://patient/{number}"
