"""The on-hook FSK message layer (Bellcore SDMF/MDMF, ETSI, BT): bytes of one message → a frame.

Shared by :mod:`~cidbridge.core.formats.xdmf` (raw bytes and hex lines) and
:mod:`~cidbridge.core.formats.modem_text` (hex lines, ``MESG = <hex>``).  No buffering
here: callers hand over exactly one message, ``type len payload checksum``
(docs/formats.md), and get one frame back.

Message types: 0x04 SDMF call (``MMDDHHMM`` then the number or ``O``/``P``), 0x06 SDMF
message waiting, 0x80 MDMF call setup, 0x82 MDMF message waiting.  MDMF parameters
(§1.5, §2.2): 0x01 date/time, 0x02 number, 0x03 dialable directory number (Bell
Canada sends the caller's number here), 0x04/0x08 number/name absence, 0x06 call
qualifier, 0x07 name, 0x0B message waiting, 0x11 call type, 0x13 message count,
0x1A redirecting number.
"""

from __future__ import annotations

from typing import Any

from cidbridge.core.formats.base import text
from cidbridge.core.frames import ABSENCE_CODES, CidFrame, Frame, InvalidFrame, MwiFrame

SDMF_CID = 0x04
SDMF_MWI = 0x06
MDMF_CID = 0x80
MDMF_MWI = 0x82
#: The message types a receiver locks onto (Asterisk's set, docs/formats.md).
MESSAGE_TYPES = frozenset({SDMF_CID, SDMF_MWI, MDMF_CID, MDMF_MWI})

P_DATETIME = 0x01
P_NUMBER = 0x02
P_DDN = 0x03
P_NUMBER_ABSENCE = 0x04
P_REDIRECT_REASON = 0x05
P_QUALIFIER = 0x06
P_NAME = 0x07
P_NAME_ABSENCE = 0x08
P_MWI = 0x0B
P_CALL_TYPE = 0x11
P_MESSAGE_COUNT = 0x13
P_REDIRECTING_NUMBER = 0x1A

_new_record = tuple.__new__

_PRINTABLE = bytes(range(0x20, 0x7F))
#: Bytes that pad names and numbers on the wire.
_PADDING = b" \x00\t"


def checksum(body: bytes) -> int:
    """The byte that makes ``sum(body + checksum) % 256 == 0`` (two's complement of the sum)."""
    return -sum(body) & 0xFF


def two_digits(raw: bytes, i: int, lo: int, hi: int) -> int | None:
    """The two ASCII digits at ``raw[i:i + 2]`` as an int in ``lo..hi``, else None."""
    a, b = raw[i] - 48, raw[i + 1] - 48
    if 0 <= a <= 9 and 0 <= b <= 9:
        value = a * 10 + b
        if lo <= value <= hi:
            return value
    return None


def parse_datetime(raw: bytes) -> tuple[int | None, int | None, int | None, int | None]:
    """``MMDDHHMM`` → (month, day, hour, minute); the date and the time pairs are
    checked separately, and a malformed pair is (None, None), never a guess."""
    if len(raw) != 8:
        return None, None, None, None
    month, day = two_digits(raw, 0, 1, 12), two_digits(raw, 2, 1, 31)
    if month is None or day is None:
        month = day = None
    hour, minute = two_digits(raw, 4, 0, 23), two_digits(raw, 6, 0, 59)
    if hour is None or minute is None:
        hour = minute = None
    return month, day, hour, minute


def value_or_absence(raw: bytes | None) -> tuple[str | None, str | None]:
    """A number or name as delivered → (text, None), or (None, absence) for ``O``/``P``/…"""
    if raw is None:
        return None, None
    raw = raw.strip(_PADDING)
    if not raw:
        return None, None
    if len(raw) == 1:
        absence = ABSENCE_CODES.get(chr(raw[0]))
        if absence is not None:
            return None, absence
    return text(raw), None


def _absence(raw: bytes) -> str | None:
    """An absence parameter's value (``O``, ``P``, …) → the absence, None if unknown."""
    raw = raw.strip(_PADDING)
    return ABSENCE_CODES.get(chr(raw[0])) if len(raw) == 1 else None


def decode_message(msg: bytes, fmt: str = "xdmf", *, verified: bool = False) -> Frame:
    """Decode one whole message ``type len payload checksum`` into a frame.

    The caller has cut ``msg`` to ``msg[1] + 3`` bytes (and may pass ``verified`` when
    it has already checked the sum).  A bad checksum, parameters that overrun the
    payload, or an unknown message-waiting value give an :class:`InvalidFrame`;
    nothing here raises.
    """
    if not verified and sum(msg) & 0xFF:
        return InvalidFrame(fmt, "checksum", msg)
    kind = msg[0]
    if kind == MDMF_CID:
        return mdmf_call(msg, fmt) or InvalidFrame(fmt, "param", msg)
    if kind == SDMF_CID:
        payload = msg[2:-1]
        if len(payload) < 8:
            return InvalidFrame(fmt, "length", msg)
        if payload[8:].translate(None, _PRINTABLE):
            return InvalidFrame(fmt, "param", msg)  # a number is printable text
        month, day, hour, minute = parse_datetime(payload[:8])
        number, absence = value_or_absence(payload[8:])
        return CidFrame(fmt, number, absence, None, None, month, day, hour, minute)
    if kind == MDMF_MWI:
        return _mdmf_mwi(msg, fmt)
    if kind == SDMF_MWI:
        flag = msg[2:3]
        if flag == b"B":
            return MwiFrame(fmt, True)
        if flag == b"o":
            return MwiFrame(fmt, False)
        return InvalidFrame(fmt, "param", msg)
    return InvalidFrame(fmt, "type", msg)


def mdmf_call(msg: bytes, fmt: str) -> CidFrame | None:
    """Decode an MDMF call-setup message whose checksum is already verified; None if
    its parameters do not fit its length (the caller reports it invalid)."""
    # Written flat, with literal parameter codes (see the P_* constants) and no helper
    # calls for the usual values: this is the hot loop of binary decoding.
    end = len(msg) - 1
    i = 2
    number = name = ddn = stamp = None
    number_absence = name_absence = None
    extra: list[tuple[str, Any]] | None = None
    # Most calls open with the date/time then the number (Bellcore order): take those
    # two straight away when they are there and fit; the loop reads everything else.
    if end >= 14 and msg[2] == 1 and msg[3] == 8 and msg[12] == 2 and 14 + msg[13] <= end:
        stamp = msg[4:12]
        i = 14 + msg[13]
        number = msg[14:i]
    while i < end:
        # msg[i + 1] always exists here (at worst it is the checksum byte), and a
        # parameter whose header or value runs into the checksum ends past ``end``.
        param = msg[i]
        j = i + 2 + msg[i + 1]
        if j > end:
            return None
        value = msg[i + 2 : j]
        i = j
        if param == 2:  # P_NUMBER
            if number is None:
                number = value
        elif param == 7:  # P_NAME
            if name is None:
                name = value
        elif param == 1:  # P_DATETIME
            stamp = value
        elif param == 3:  # P_DDN
            ddn = value
        elif param == 4:  # P_NUMBER_ABSENCE
            number_absence = _absence(value)
        elif param == 8:  # P_NAME_ABSENCE
            name_absence = _absence(value)
        else:
            if extra is None:
                extra = []
            _extra_param(param, value, extra)
    month = day = hour = minute = None
    if stamp is not None:
        if len(stamp) == 8 and stamp.isdigit():
            # Two ASCII digits a, b: (a - 48) * 10 + (b - 48) == a * 10 + b - 528.
            month = stamp[0] * 10 + stamp[1] - 528
            day = stamp[2] * 10 + stamp[3] - 528
            if not (1 <= month <= 12 and 1 <= day <= 31):
                month = day = None
            hour = stamp[4] * 10 + stamp[5] - 528
            minute = stamp[6] * 10 + stamp[7] - 528
            if hour > 23 or minute > 59:
                hour = minute = None
        else:
            month, day, hour, minute = parse_datetime(stamp)
    if ddn is not None:
        if number is None:
            number = ddn  # Bell Canada: the caller's number travels as the DDN
        else:
            extra = [*(extra or ()), ("called_number", text(ddn.strip(_PADDING)))]
    if number is not None:
        number = number.strip(_PADDING)
        if len(number) > 1:
            try:
                number = number.decode()
            except UnicodeDecodeError:
                number = number.decode("latin-1")
        else:
            number, absence = value_or_absence(number)
            number_absence = number_absence or absence
    if name is not None:
        name = name.strip(_PADDING)
        if len(name) > 1:
            try:
                name = name.decode()
            except UnicodeDecodeError:
                name = name.decode("latin-1")
        else:
            name, absence = value_or_absence(name)
            name_absence = name_absence or absence
    # tuple.__new__ directly: the same record as CidFrame(...), without the Python-level
    # __new__ wrapper (about 0.2 µs of the ~2 µs a binary message costs).
    return _new_record(
        CidFrame,
        (fmt, number, number_absence, name, name_absence, month, day, hour, minute, None, tuple(extra or ())),
    )


def _extra_param(param: int, value: bytes, extra: list[tuple[str, Any]]) -> None:
    if param == P_CALL_TYPE and len(value) == 1:
        extra.append(("call_type", value[0]))
    elif param == P_QUALIFIER:
        extra.append(("qualifier", text(value)))
    elif param == P_REDIRECTING_NUMBER:
        extra.append(("redirecting_number", text(value.strip(_PADDING))))
    elif param == P_REDIRECT_REASON and len(value) == 1:
        extra.append(("redirect_reason", value[0]))
    elif param == P_MESSAGE_COUNT and len(value) == 1:
        extra.append(("message_count", value[0]))


def _mdmf_mwi(msg: bytes, fmt: str) -> Frame:
    params = split_params(msg, 2, len(msg) - 1)
    if params is None:
        return InvalidFrame(fmt, "param", msg)
    active: bool | None = None
    count: int | None = None
    for param, value in params:
        if param == P_MWI and len(value) == 1:
            active = value[0] != 0
        elif param == P_MESSAGE_COUNT and len(value) == 1:
            count = value[0]
    if active is None:
        if count is None:
            return InvalidFrame(fmt, "param", msg)
        active = count > 0
    return MwiFrame(fmt, active, count)


def split_params(data: bytes, start: int, end: int) -> list[tuple[int, bytes]] | None:
    """MDMF ``param len value`` triples in ``data[start:end]``; None if one overruns the end."""
    out = []
    i = start
    while i < end:
        if i + 2 > end:
            return None
        j = i + 2 + data[i + 1]
        if j > end:
            return None
        out.append((data[i], data[i + 2 : j]))
        i = j
    return out


def mesg_fields(values: list[bytes]) -> tuple[bytes | None, list[tuple[str, Any]], bool | None, int | None]:
    """What a modem's ``MESG = <hex>`` lines say: MDMF parameters, each optionally
    followed by its message checksum (``110101``, ``06014C``, ``030735…``).

    Returns (dialable number from parameter 3, extra keys, message waiting on/off or
    None, message count or None).  Hex that does not parse is left alone.
    """
    ddn: bytes | None = None
    extra: list[tuple[str, Any]] = []
    active: bool | None = None
    count: int | None = None
    for value in values:
        digits = value.replace(b" ", b"")
        if not digits or len(digits) % 2 or digits.translate(None, b"0123456789abcdefABCDEF"):
            continue
        data = bytes.fromhex(digits.decode())
        params = split_params(data, 0, len(data))
        if params is None and not sum(data) & 0xFF:
            params = split_params(data, 0, len(data) - 1)
        for param, field in params or ():
            if param == P_DDN and ddn is None:
                ddn = field
            elif param == P_QUALIFIER and field in (b"BBB", b"ooo"):
                active = field == b"BBB"  # a whole SDMF message-waiting message (Askey)
            elif param == P_MWI and len(field) == 1:
                active = field[0] != 0
            elif param == P_MESSAGE_COUNT and len(field) == 1:
                count = field[0]
            else:
                _extra_param(param, field, extra)
    if active is None and count is not None:
        active = count > 0
    return ddn, extra, active, count


# -- encoders (tests, simulator, benchmark) ---------------------------------------


def message(kind: int, payload: bytes) -> bytes:
    """``type len payload checksum`` for any payload (≤ 255 bytes)."""
    body = bytes((kind, len(payload))) + payload
    return body + bytes((checksum(body),))


def _mmddhhmm(month: int | None, day: int | None, hour: int | None, minute: int | None) -> bytes:
    return b"%02d%02d%02d%02d" % (month or 0, day or 0, hour or 0, minute or 0)


_CODES = {"private": b"P", "unavailable": b"O", "payphone": b"C", "conflict": b"S"}


def encode_sdmf(
    number: str | None,
    *,
    number_absence: str | None = None,
    month: int = 1,
    day: int = 1,
    hour: int = 0,
    minute: int = 0,
) -> bytes:
    """An SDMF (0x04) message: date/time then the number, or ``O``/``P`` for an absence."""
    value = number.encode() if number is not None else _CODES.get(number_absence or "", b"O")
    return message(SDMF_CID, _mmddhhmm(month, day, hour, minute) + value)


def encode_mdmf(
    number: str | None = None,
    name: str | None = None,
    *,
    number_absence: str | None = None,
    name_absence: str | None = None,
    month: int | None = None,
    day: int | None = None,
    hour: int | None = None,
    minute: int | None = None,
    call_type: int | None = None,
    number_param: int = P_NUMBER,
) -> bytes:
    """An MDMF call-setup (0x80) message; ``number_param=P_DDN`` sends it Bell Canada's way."""
    payload = b""
    if call_type is not None:
        payload += bytes((P_CALL_TYPE, 1, call_type))
    if month is not None:
        payload += bytes((P_DATETIME, 8)) + _mmddhhmm(month, day, hour, minute)
    if number is not None:
        raw = number.encode()
        payload += bytes((number_param, len(raw))) + raw
    elif number_absence is not None:
        payload += bytes((P_NUMBER_ABSENCE, 1)) + _CODES[number_absence]
    if name is not None:
        raw = name.encode()
        payload += bytes((P_NAME, len(raw))) + raw
    elif name_absence is not None:
        payload += bytes((P_NAME_ABSENCE, 1)) + _CODES[name_absence]
    return message(MDMF_CID, payload)


def encode_mwi(active: bool, count: int | None = None, *, sdmf: bool = False) -> bytes:
    """A message-waiting message: SDMF 0x06 (``BBB``/``ooo``) or MDMF 0x82 (0x0B, 0x13)."""
    if sdmf:
        return message(SDMF_MWI, b"BBB" if active else b"ooo")
    payload = bytes((P_MWI, 1, 0xFF if active else 0x00))
    if count is not None:
        payload += bytes((P_MESSAGE_COUNT, 1, count))
    return message(MDMF_MWI, payload)
