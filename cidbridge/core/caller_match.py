"""Telling whether two caller-ID reports are the same caller, and merging them.

A call can be reported more than once (a box's start and end records, a repeated
packet, a name that arrives after the number).  These rules let the call tracker
merge such reports into one call while still telling a second caller apart.
"""

from __future__ import annotations

from cidbridge.core.frames import CidFrame


def _digits(number: str | None) -> str:
    return "".join(ch for ch in number or "" if ch.isdigit())


def same_number(old: CidFrame, new: CidFrame) -> bool:
    """Both frames give a number, and it is the same one (national or local form)."""
    a, b = _digits(old.number), _digits(new.number)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 7 and long_.endswith(short)


def same_caller(old: CidFrame | None, new: CidFrame) -> bool:
    """Could ``new`` be another report of the caller in ``old``?  Only a contradiction says no."""
    if old is None:
        return True
    if old.number is not None and new.number is not None:
        return same_number(old, new)
    # A number against an explicit absence ("private") is two different callers.
    if old.number is not None:
        return new.number_absence is None
    if new.number is not None:
        return old.number_absence is None
    return old.number_absence is None or new.number_absence in (None, old.number_absence)


def merge_reports(old: CidFrame, new: CidFrame) -> CidFrame:
    """A second report within one call adds what was missing; it never erases."""
    number, number_absence = _keep(old.number, old.number_absence, new.number, new.number_absence)
    name, name_absence = _keep(old.name, old.name_absence, new.name, new.name_absence)
    return old._replace(number=number, number_absence=number_absence, name=name, name_absence=name_absence)


def _keep(
    value: str | None, absence: str | None, new_value: str | None, new_absence: str | None
) -> tuple[str | None, str | None]:
    if value is not None:
        return value, None
    if new_value is not None:
        return new_value, None
    return None, absence or new_absence
