"""``kr-adapter``: the Korean USB caller-ID adapters front desks plug in (CP210x, 19200 8N1).

Each frame is ``STX`` + a body of 20 ASCII characters (21 on older units) + ``ETX``
(docs/formats.md).  The body is the channel (one character: the phone
line of a multi-line adapter), the opcode, and a payload padded with spaces:

* ``I`` incoming call; the payload is the number, or a mask: ``P`` withheld
  (private), ``C`` payphone, ``O`` not collected (unavailable) → a ``cid`` frame;
* ``S`` handset off hook → ``hook`` ``off``; ``E`` handset on hook → ``hook`` ``on``;
* ``K`` dial complete (an outgoing call) and ``P`` device information: understood,
  no frame (they are not caller ID).

There is no checksum.  A body that is not 20/21 characters, or whose opcode is
unknown, is an ``invalid`` frame (``length`` / ``opcode``).  Bytes outside STX…ETX
are noise; an STX with no ETX within 21 characters is dropped as noise, and the
decoder resumes at the next STX, so it holds at most one frame's bytes.
"""

from __future__ import annotations

from cidbridge.core.formats.base import Decoder, text
from cidbridge.core.frames import PAYPHONE, PRIVATE, UNAVAILABLE, CidFrame, Frame, HookFrame, InvalidFrame

FORMAT = "kr-adapter"

STX = 0x02
ETX = 0x03
BODY_LENGTHS = (20, 21)
_MAX_BODY = max(BODY_LENGTHS)

#: Payload masks of an ``I`` frame.
MASKS = {"P": PRIVATE, "C": PAYPHONE, "O": UNAVAILABLE}
#: Opcodes a device sends that carry no caller ID.
_QUIET_OPCODES = frozenset(b"KPOF")


class KrAdapterDecoder(Decoder):
    """Incremental decoder for the STX/ETX frames of Korean caller-ID adapters."""

    format = FORMAT

    def __init__(self) -> None:
        super().__init__()
        self._buf = b""

    def feed(self, data: bytes, now: float) -> list[Frame]:
        self.stats.bytes_in += len(data)
        buf = self._buf + data if self._buf else data
        out: list[Frame] = []
        pos = 0
        n = len(buf)
        while pos < n:
            stx = buf.find(b"\x02", pos)
            if stx < 0:
                self.stats.skipped += n - pos
                pos = n
                break
            self.stats.skipped += stx - pos
            etx = buf.find(b"\x03", stx + 1, stx + _MAX_BODY + 2)
            if etx < 0:
                if n - stx > _MAX_BODY + 1:
                    self.stats.skipped += 1  # an STX no ETX follows: noise
                    pos = stx + 1
                    continue
                pos = stx
                break
            # A second STX inside means the first was noise (a frame cut short).
            inner = buf.rfind(b"\x02", stx + 1, etx)
            if inner >= 0:
                self.stats.skipped += inner - stx
                stx = inner
            self._frame(buf[stx + 1 : etx], out)
            pos = etx + 1
        self._buf = buf[pos:]
        return out

    def flush(self, now: float) -> list[Frame]:
        self.stats.skipped += len(self._buf)
        self._buf = b""
        return []

    def _frame(self, body: bytes, out: list[Frame]) -> None:
        raw = b"\x02" + body + b"\x03"
        if len(body) not in BODY_LENGTHS:
            self._invalid("length", raw, out)
            return
        channel = text(body[:1])
        opcode = body[1]
        payload = body[2:].strip(b" \x00")
        if opcode == 0x49:  # I
            number = text(payload) if payload else None
            absence = MASKS.get(number or "")
            frame: Frame = CidFrame(
                FORMAT, None if absence else number, absence, None, None, None, None, None, None, channel
            )
        elif opcode == 0x53:  # S
            frame = HookFrame(FORMAT, "off", channel)
        elif opcode == 0x45:  # E
            frame = HookFrame(FORMAT, "on", channel)
        elif opcode in _QUIET_OPCODES:
            return
        else:
            self._invalid("opcode", raw, out)
            return
        self.stats.frames += 1
        out.append(frame)

    def _invalid(self, reason: str, raw: bytes, out: list[Frame]) -> None:
        self.stats.frames += 1
        self.stats.invalid += 1
        out.append(InvalidFrame(FORMAT, reason, raw))


def encode_frame(channel: str, opcode: str, payload: str = "", *, body: int = 20) -> bytes:
    """One adapter frame: STX, channel, opcode, payload padded to ``body`` characters, ETX."""
    content = (channel + opcode + payload).encode()
    return b"\x02" + content.ljust(body, b" ")[:body] + b"\x03"


def encode_call(
    number: str | None, *, absence: str | None = None, channel: str = "1", answered: bool = False
) -> bytes:
    """What an adapter sends for one incoming call (and, if answered, the hook changes)."""
    codes = {v: k for k, v in MASKS.items()}
    payload = number if number is not None else codes.get(absence or "", "O")
    out = encode_frame(channel, "I", payload)
    if answered:
        out += encode_frame(channel, "S") + encode_frame(channel, "E")
    return out
