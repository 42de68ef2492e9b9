"""``netcallerid``: NetCallerID (Ugotcall) records, one per CR-terminated line (4800 8N1).

``###DATE<MMDDhhmm>...NMBR<number>...NAME<name>+++`` (docs/formats.md); any
field may be empty.  The box writes its own notices in the name field between
dashes: ``-UNKNOWN CALLER-`` / ``-OUT OF AREA-`` (unavailable), ``-PRIVATE CALLER-``
(private), ``-MSG ON-`` / ``-MSG OFF-`` (message waiting → an ``mwi`` frame).  Any
other name, dashed or not, is passed through.  Frames: ``cid``, ``mwi``.
"""

from __future__ import annotations

import re

from cidbridge.core.formats.base import LineDecoder, text
from cidbridge.core.formats.fsk import parse_datetime
from cidbridge.core.frames import PRIVATE, UNAVAILABLE, CidFrame, Frame, MwiFrame

FORMAT = "netcallerid"

_RECORD = re.compile(rb"###DATE(.*?)\.\.\.NMBR(.*?)\.\.\.NAME(.*?)\+\+\+")
#: The box's notices in the name field, and what they mean for number and name.
NOTICES = {
    "-UNKNOWN CALLER-": UNAVAILABLE,
    "-OUT OF AREA-": UNAVAILABLE,
    "-OUT-OF-AREA-": UNAVAILABLE,
    "-PRIVATE CALLER-": PRIVATE,
    "-PRIVATE-": PRIVATE,
    "-BLOCKED-": PRIVATE,
}
_MWI = {"-MSG ON-": True, "-MSG OFF-": False}


class NetCallerIdDecoder(LineDecoder):
    """Line decoder for NetCallerID records.  See the module doc."""

    format = FORMAT

    def line(self, raw: bytes, out: list[Frame]) -> None:
        match = _RECORD.search(raw)
        if match is None:
            if raw.strip():
                self.stats.skipped += len(raw)
            return
        stamp, number_raw, name_raw = match.groups()
        name = text(name_raw.strip()) or None
        self.stats.frames += 1
        if name is not None and name.upper() in _MWI:
            out.append(MwiFrame(FORMAT, _MWI[name.upper()]))
            return
        month, day, hour, minute = parse_datetime(stamp.strip())
        number = text(number_raw.strip()) or None
        number_absence = name_absence = None
        notice = NOTICES.get(name.upper()) if name else None
        if notice is not None:
            name, name_absence = None, notice
            if number is None:
                number_absence = notice
        out.append(CidFrame(FORMAT, number, number_absence, name, name_absence, month, day, hour, minute))


def encode_record(
    number: str | None,
    name: str | None = None,
    *,
    month: int | None = 1,
    day: int = 1,
    hour: int = 0,
    minute: int = 0,
    absence: str | None = None,
) -> bytes:
    """One NetCallerID record, CR-terminated like the box's (an absence as the box's notice)."""
    stamp = f"{month:02d}{day:02d}{hour:02d}{minute:02d}" if month is not None else ""
    if number is None and name is None and absence is not None:
        name = "-PRIVATE CALLER-" if absence == PRIVATE else "-UNKNOWN CALLER-"
    return f"###DATE{stamp}...NMBR{number or ''}...NAME{name or ''}+++\r".encode()
