"""Simulated caller-ID boxes: the bytes a device of each format sends during one call.

A :class:`Box` has no I/O: :meth:`Box.call_script` returns ``(delay_s, bytes)`` steps
that :meth:`cidbridge.sim.pty.PtyDevice.play` writes to a pseudo-terminal, so every
format cidbridge decodes can be exercised end to end without hardware::

    box = Box("kr-adapter")
    with PtyDevice() as device:
        device.play(box.call_script(caller), speed=10)

Each personality follows its device (docs/formats.md): a Korean adapter
sends the ``I`` frame then, if answered, ``S``/``E``; a Whozz Calling unit sends a
ring detail, the start record and hook details; an FSK module sends noise, the
seizure and the binary message; a modem in hex mode prints RINGs around the hex.
The encoders live with their decoders in :mod:`cidbridge.core.formats`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cidbridge.core.formats import callerid_com, dtmf, fsk, jclip, kr_adapter, netcallerid, tci, xdmf
from cidbridge.core.formats.modem_text import encode_block
from cidbridge.sim.modem import Caller

#: Every format a simulated device can speak (the decoder names of docs/formats.md, "Decoded frames").
BOX_FORMATS = (
    "modem-text",
    "xdmf",
    "xdmf-hex",
    "kr-adapter",
    "callerid-com",
    "tci",
    "netcallerid",
    "dtmf",
    "jclip",
)
Steps = list[tuple[float, bytes]]


@dataclass
class Box:
    """A caller-ID device of one format.  ``answered`` adds the hook changes it can report."""

    format: str
    line: int = 1
    answered: bool = False
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.format not in BOX_FORMATS:
            raise ValueError(f"unknown box format {self.format!r}; expected one of: {', '.join(BOX_FORMATS)}")

    def call_script(self, caller: Caller, rings: int = 2) -> Steps:
        """What the device sends for one incoming call, as ``(delay_s, bytes)`` steps."""
        return getattr(self, "_" + self.format.replace("-", "_"))(caller, rings)

    # -- one method per personality -------------------------------------------------

    def _modem_text(self, c: Caller, rings: int) -> Steps:
        block = encode_block(
            c.number,
            c.name,
            month=c.month,
            day=c.day,
            hour=c.hour,
            minute=c.minute,
            number_absence=c.number_absence,
            name_absence=c.name_absence,
        )
        return [
            (0.0, b"\r\nRING\r\n"),
            (0.5, b"\r\n" + block),
            *((1.0, b"\r\nRING\r\n") for _ in range(rings - 1)),
        ]

    def _message(self, c: Caller) -> bytes:
        return fsk.encode_mdmf(
            c.number,
            c.name,
            number_absence=c.number_absence,
            name_absence=c.name_absence,
            month=c.month,
            day=c.day,
            hour=c.hour,
            minute=c.minute,
        )

    def _xdmf(self, c: Caller, rings: int) -> Steps:
        noise = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 6)))
        random_byte = bytes((self.rng.randrange(256),))
        burst = xdmf.binary_burst(self._message(c), seizure=28, random_byte=random_byte, noise=noise)
        return [(0.5, burst)]

    def _xdmf_hex(self, c: Caller, rings: int) -> Steps:
        lines = xdmf.hex_lines(self._message(c))
        return [
            (0.0, b"\r\nRING\r\n"),
            (0.5, b"\r\n" + lines),
            *((1.0, b"\r\nRING\r\n") for _ in range(rings - 1)),
        ]

    def _kr_adapter(self, c: Caller, rings: int) -> Steps:
        frame = kr_adapter.encode_frame(str(self.line), "I", c.number or _mask(c))
        steps: Steps = [(0.5, frame)]
        if self.answered:
            steps += [
                (2.0, kr_adapter.encode_frame(str(self.line), "S")),
                (5.0, kr_adapter.encode_frame(str(self.line), "E")),
            ]
        return steps

    def _callerid_com(self, c: Caller, rings: int) -> Steps:
        when = {"month": c.month, "day": c.day, "hour": c.hour}
        record = callerid_com.encode_call_record(
            c.number, c.name, line=self.line, minute=c.minute, absence=c.number_absence, **when
        )
        steps: Steps = [(0.0, callerid_com.encode_detail("R", line=self.line, **when)), (0.5, record)]
        if self.answered:
            steps += [
                (2.0, callerid_com.encode_detail("F", line=self.line, **when)),
                (5.0, callerid_com.encode_detail("N", line=self.line, **when)),
            ]
        return steps

    def _tci(self, c: Caller, rings: int) -> Steps:
        record = tci.encode_record(
            c.number, c.name, line=self.line, month=c.month, day=c.day, hour=c.hour, minute=c.minute,
            absence=c.number_absence,
        )  # fmt: skip
        return [(0.5, record)]

    def _netcallerid(self, c: Caller, rings: int) -> Steps:
        record = netcallerid.encode_record(
            c.number, c.name, month=c.month, day=c.day, hour=c.hour, minute=c.minute, absence=c.number_absence
        )
        return [(0.5, record)]

    def _dtmf(self, c: Caller, rings: int) -> Steps:
        return [(0.0, dtmf.encode_message(c.number, absence=c.number_absence, variant=1))]

    def _jclip(self, c: Caller, rings: int) -> Steps:
        return [(0.5, jclip.encode_frame(c.number, absence=c.number_absence))]


def _mask(c: Caller) -> str:
    return {"private": "P", "payphone": "C"}.get(c.number_absence or "", "O")


def main(argv: list[str] | None = None) -> None:
    """``python -m cidbridge.sim.boxes --format kr-adapter``: a box on a pty, calling now and then."""
    import argparse
    import time

    from cidbridge.sim.callers import random_caller
    from cidbridge.sim.pty import PtyDevice

    parser = argparse.ArgumentParser(description="A simulated caller-ID device on a pseudo-terminal.")
    parser.add_argument("--format", default="kr-adapter", choices=BOX_FORMATS)
    parser.add_argument("--link", help="also make this symlink to the pty (like /dev/serial/by-id/...)")
    parser.add_argument("--interval", type=float, default=8.0, help="seconds between calls")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    box = Box(args.format, answered=True, rng=rng)
    with PtyDevice(link=args.link) as device:
        print(f"{args.format} device on {device.path}; Ctrl-C stops it", flush=True)
        try:
            while True:
                device.play(box.call_script(random_caller(rng)))
                time.sleep(args.interval)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
