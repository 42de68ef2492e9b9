"""Finding serial ports: what is plugged in, its stable path, and whether it is a known caller-ID device.

:func:`list_serial_ports` joins pyserial's :func:`serial.tools.list_ports.comports`
(USB vendor/product ids, manufacturer, serial number, from sysfs) with the stable
symlinks udev makes: ``/dev/callerid/…`` from cidbridge's own rule
(``udev/70-cidbridge.rules``) and ``/dev/serial/by-id/…``.  A stable path is what a
config should name: it stays the same when the device is replugged or re-enumerates
as another ``ttyACM``.  A link whose tty pyserial does not list still appears, with
the little that is known about it.

:data:`KNOWN_DEVICES` is the hint table ``cidbridge ports`` prints from.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serial.tools import list_ports

BY_ID_DIR = Path("/dev/serial/by-id")
#: Where udev/70-cidbridge.rules puts its names (preferred over by-id when both exist).
CALLERID_DIR = Path("/dev/callerid")

#: (vendor id, product id or None for any product of the vendor) → what it is for cidbridge.
#: Devices caller-ID users report (docs/formats.md for the Korean adapters); vendor ids from the USB ID list.
_MODEM = '(device = "modem")'
_BOX = '(device = "box")'
KNOWN_DEVICES: dict[tuple[int, int | None], str] = {
    (0x0572, 0x1340): f"Conexant USB modem: caller ID with AT+VCID=1, re-sent after every reset {_MODEM}",
    (0x0572, None): f"Conexant USB modem: usually AT+VCID=1 {_MODEM}",
    (0x0803, 0x3095): f"Zoom 3095 USB modem: caller ID with AT+VCID=1 {_MODEM}",
    (
        0x0BAF,
        0x0303,
    ): f"USRobotics 5637 USB modem: AT+VCID=1 or AT#CID=1; UK lines need country = B4 {_MODEM}",
    (0x0BAF, None): f"USRobotics modem: try AT#CID=1 {_MODEM}",
    (0x10C4, 0xEA60): f"CP210x USB-serial: used by Korean caller-ID boxes, baudrate = 19200 {_BOX}",
    (0x10C4, None): f"Silicon Labs USB-serial: may be a Korean caller-ID box, baudrate = 19200 {_BOX}",
    (0x067B, 0x2303): f"Prolific PL2303 USB-serial adapter: a caller-ID box behind it? {_BOX}",
    (0x0403, 0x6001): f"FTDI USB-serial adapter: a caller-ID box behind it? {_BOX}",
    (0x1A86, 0x7523): f"CH340 USB-serial adapter: often on FSK decoder modules {_BOX}",
}


@dataclass(frozen=True, slots=True)
class SerialPort:
    """One serial port.  Every field but ``device`` may be None (not known)."""

    device: str
    #: ``/dev/callerid/…`` and ``/dev/serial/by-id/…`` links to this device (stable across replugs).
    by_id: tuple[str, ...] = ()
    vid: int | None = None
    pid: int | None = None
    manufacturer: str | None = None
    product: str | None = None
    serial_number: str | None = None
    description: str | None = None
    hint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stable_path(self) -> str:
        """The path to put in the config: the first by-id link, else the device."""
        return self.by_id[0] if self.by_id else self.device

    @property
    def usb_id(self) -> str | None:
        """``0572:1340`` for a USB device."""
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        out["by_id"] = list(self.by_id)
        out["usb_id"] = self.usb_id
        out["stable_path"] = self.stable_path
        return out


def known_device_hint(vid: int | None, pid: int | None) -> str | None:
    """What cidbridge knows about a USB device, or None."""
    if vid is None:
        return None
    return KNOWN_DEVICES.get((vid, pid)) or KNOWN_DEVICES.get((vid, None))


def by_id_links(by_id_dir: Path = BY_ID_DIR) -> dict[str, list[str]]:
    """Real device path → the stable links pointing at it, cidbridge's own names first."""
    links: dict[str, list[str]] = {}
    for folder in (CALLERID_DIR, by_id_dir):
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue  # no such devices (udev makes the folder on the first one)
        for entry in entries:
            links.setdefault(os.path.realpath(entry), []).append(str(entry))
    return links


def list_serial_ports(by_id_dir: Path = BY_ID_DIR) -> list[SerialPort]:
    """Every serial port pyserial finds, plus every by-id link's device, sorted by path."""
    links = by_id_links(by_id_dir)
    ports: dict[str, SerialPort] = {}
    for info in list_ports.comports():
        real = os.path.realpath(info.device)
        ports[real] = SerialPort(
            device=info.device,
            by_id=tuple(links.get(real, ())),
            vid=info.vid,
            pid=info.pid,
            manufacturer=info.manufacturer,
            product=info.product,
            serial_number=info.serial_number,
            description=None if info.description in (None, "n/a") else info.description,
            hint=known_device_hint(info.vid, info.pid),
        )
    for real, paths in links.items():
        if real not in ports:
            ports[real] = SerialPort(device=real, by_id=tuple(paths))
    return sorted(ports.values(), key=lambda port: (not port.by_id and port.vid is None, port.device))


def find_port(path: str, by_id_dir: Path = BY_ID_DIR) -> SerialPort | None:
    """The port ``path`` (a device or a link to one) is, if it is listed."""
    real = os.path.realpath(path)
    for port in list_serial_ports(by_id_dir):
        if os.path.realpath(port.device) == real:
            return port
    return None
