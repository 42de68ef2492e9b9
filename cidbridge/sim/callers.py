"""Realistic random callers for the demo and the tests' soak streams."""

from __future__ import annotations

import random
from datetime import datetime

from cidbridge.core.frames import PRIVATE, UNAVAILABLE
from cidbridge.sim.modem import Caller

_NAMES = [
    "KIM MINJI",
    "LEE JUNHO",
    "PARK SEOYEON",
    "CHOI WOOJIN",
    "JUNG HAEUN",
    "KANG DOYUN",
    "CHO YERIN",
    "YOON SIWOO",
    "JANG SUAH",
    "LIM JIHO",
]
_AREAS = ["02", "031", "032", "042", "051", "053", "062", "064"]


def korean_number(rng: random.Random) -> str:
    """A plausible Korean number: mostly mobiles, then landlines, VoIP and business lines."""
    roll = rng.random()
    if roll < 0.6:
        return f"010{rng.randrange(10**8):08d}"
    if roll < 0.85:
        area = rng.choice(_AREAS)
        digits = 8 if area == "02" and rng.random() < 0.7 else 7
        return f"{area}{rng.randrange(2 * 10 ** (digits - 1), 10**digits)}"
    if roll < 0.93:
        return f"070{rng.randrange(10**8):08d}"
    return f"{rng.choice(['1588', '1577', '1661', '1644'])}{rng.randrange(10**4):04d}"


def random_caller(rng: random.Random, when: datetime | None = None) -> Caller:
    """One caller: a number (sometimes withheld or unavailable), a name about half the time."""
    when = when or datetime.now()
    roll = rng.random()
    number: str | None = korean_number(rng)
    number_absence = None
    if roll < 0.06:
        number, number_absence = None, PRIVATE
    elif roll < 0.1:
        number, number_absence = None, UNAVAILABLE
    name = rng.choice(_NAMES) if number and rng.random() < 0.5 else None
    name_absence = number_absence if number is None else None
    return Caller(number, name, number_absence, name_absence, when.month, when.day, when.hour, when.minute)
