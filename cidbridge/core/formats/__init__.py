"""One decoder per caller-ID format, and :func:`make_decoder` to pick one by name.

Every decoder follows :class:`~cidbridge.core.formats.base.Decoder`: ``feed(data, now)``
returns frames, ``timeout(now)`` and ``flush(now)`` finish frames that wait for silence
or end of input.  Format names are the contract in docs/formats.md, "Decoded frames".
"""

from __future__ import annotations

from collections.abc import Callable

from cidbridge.core.formats.auto import AutoDecoder
from cidbridge.core.formats.base import Decoder
from cidbridge.core.formats.callerid_com import CallerIdComDecoder
from cidbridge.core.formats.dtmf import DtmfDecoder
from cidbridge.core.formats.jclip import JclipDecoder
from cidbridge.core.formats.kr_adapter import KrAdapterDecoder
from cidbridge.core.formats.modem_text import ModemTextDecoder
from cidbridge.core.formats.netcallerid import NetCallerIdDecoder
from cidbridge.core.formats.tci import TciDecoder
from cidbridge.core.formats.xdmf import XdmfDecoder


class UnknownFormatError(ValueError):
    """The format name is not one cidbridge knows."""


_FACTORIES: dict[str, Callable[[], Decoder]] = {
    "modem-text": ModemTextDecoder,
    "xdmf": XdmfDecoder,
    "kr-adapter": KrAdapterDecoder,
    "callerid-com": CallerIdComDecoder,
    "tci": TciDecoder,
    "netcallerid": NetCallerIdDecoder,
    "dtmf": DtmfDecoder,
    "jclip": JclipDecoder,
}

#: Format names a user may configure, ``auto`` first.
FORMATS: tuple[str, ...] = ("auto", *_FACTORIES)


def make_decoder(name: str = "auto") -> Decoder:
    """Return a fresh decoder for the format ``name`` (``auto`` detects it from the bytes)."""
    if name == "auto":
        return AutoDecoder(_FACTORIES)
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise UnknownFormatError(f"unknown format {name!r}; expected one of: {', '.join(FORMATS)}") from None


__all__ = ["FORMATS", "Decoder", "UnknownFormatError", "make_decoder"]
