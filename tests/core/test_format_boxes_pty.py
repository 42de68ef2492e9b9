"""Every simulated box, played on a real pseudo-terminal and read back through the decoders."""

from __future__ import annotations

import os
import random
import select
import time

import pytest

from cidbridge.core.formats import make_decoder
from cidbridge.sim.boxes import BOX_FORMATS, Box
from cidbridge.sim.modem import Caller
from cidbridge.sim.pty import PtyDevice


def read_for(fd: int, seconds: float) -> bytes:
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            data += os.read(fd, 4096)
        elif data:
            break
    return data


@pytest.mark.parametrize("fmt", BOX_FORMATS)
def test_a_box_on_a_pty_decodes_to_its_caller(fmt):
    caller = Caller("01012345678", "KIM MINJI", month=3, day=4, hour=15, minute=6)
    box = Box(fmt, answered=True, rng=random.Random(1))
    with PtyDevice() as device:
        fd = os.open(device.tty_path, os.O_RDWR | os.O_NOCTTY)
        try:
            device.play(box.call_script(caller), speed=100)
            data = read_for(fd, 2.0)
        finally:
            os.close(fd)
    decoder = make_decoder("auto")
    frames = [f.to_json() for f in decoder.feed(data, 0.0) + decoder.flush(0.0)]
    (cid,) = [f for f in frames if f["kind"] == "cid"]
    assert cid["number"] == "01012345678"
    assert cid["format"] == {"xdmf-hex": "xdmf"}.get(fmt, fmt)
