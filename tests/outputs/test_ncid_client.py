"""The NCID project's own client shows cidbridge's calls: pty modem → daemon → ``ncid --no-gui``."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

from cidbridge.sim.modem import Caller
from tests.support.daemon import DaemonProcess
from tests.support.ncid_client import NcidTclClient

#: What ``ncid --no-gui`` prints per call: ``TYPE: mm/dd/yyyy  hh:mm LINE NUMBER NAME``.
PRINTED = re.compile(r"(?P<type>[A-Z]+): (?P<date>\d\d/\d\d/\d{4})  (?P<time>\d\d:\d\d) (?P<rest>.*)")


def ncid_port(daemon: DaemonProcess) -> int:
    _, health = daemon.get("/healthz")
    return int(health["outputs"]["ncid"]["listen"].rsplit(":", 1)[1])


def printed_call(line: str, label: str = "CID") -> dict[str, Any] | None:
    """The fields of a call line the client printed (it formats the number its own way)."""
    match = PRINTED.fullmatch(line)
    if match is None or match["type"] != label:
        return None
    line_name, number, name = match["rest"].split(" ", 2)
    return {"line": line_name, "digits": re.sub(r"\D", "", number), "number": number, "name": name}


def test_the_ncid_client_prints_every_call(modem, start_daemon) -> None:
    model, device = modem
    daemon = start_daemon(
        [{"name": "front-desk", "port": device.path, "device": "modem"}],
        calls={"ring_gap": 1.0, "region": "KR"},
        ncid={"enabled": True, "port": 0},
    )
    client = NcidTclClient(ncid_port(daemon))
    try:
        client.wait_line(lambda line: line.startswith("Server: cidbridge (NCID)"))
        callers = [
            (Caller("01012345678", "KIM MINJI"), "01012345678", "KIM MINJI"),
            (Caller(None, None, number_absence="private", name_absence="private"), "", "PRIVATE"),
            # A hostile name: stars and an escape sequence must not shift or add fields
            # (the escape is already gone: control characters never leave the decoders).
            (
                Caller("0212345678", "EVIL*NMBR*666*\x1b[2J"),
                "0212345678",
                "EVIL\u2217NMBR\u2217666\u2217[2J",
            ),
        ]
        for caller, digits, name in callers:
            device.play(model.call_script(caller, rings=2), speed=10)
            line = client.wait_line(lambda line, name=name: (printed_call(line) or {}).get("name") == name)
            shown = printed_call(line)
            assert shown is not None
            assert shown["line"] == "front-desk"
            assert shown["digits"] == digits
            if not digits:
                assert shown["number"] == "PRIVATE"
        calls = [line for line in client.lines if printed_call(line)]
        assert len(calls) == len(callers), calls  # one line per call, nothing injected

        _, health = daemon.get("/healthz")
        assert health["outputs"]["ncid"]["state"] == "up"
        assert health["outputs"]["ncid"]["clients"] == 1
        with urllib.request.urlopen(daemon.url + "metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert 'cidbridge_output_clients{output="ncid"} 1.0' in metrics
        assert 'cidbridge_output_delivered_total{output="ncid"}' in metrics
    finally:
        client.close()
