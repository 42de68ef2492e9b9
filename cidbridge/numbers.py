"""Phone numbers for people: formatting with libphonenumber (the ``phonenumbers`` package).

The decoder passes numbers through as delivered; this is where ``01012345678``
becomes ``010-1234-5678`` for a Korean front desk, ``(212) 555-1234`` for an American
one.  A number from the configured region is shown the national way; a foreign one
the international way (``+1 415-555-0100``).  A number libphonenumber cannot parse (a
mask like ``0207####123``, ``Restricted``) is shown as delivered.

:func:`match_key` is how the phonebook matches ``010-1234-5678`` in its CSV with the
``01012345678`` the network sends: both become E.164.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata


def preload() -> None:
    """Load every country's numbering metadata now, so no call ever opens a file for it.

    phonenumbers loads a country's metadata (a module file) the first time a number
    from there is seen, under a module-wide lock that it does not release if the load
    fails.  A load failing on a call's path (``EMFILE`` when the process is out of
    file descriptors) would leave that lock held and freeze every later call and the
    event loop with it.  Loaded here at start-up (about 50 ms and 2 MB), no lock is
    ever taken again.  ``PhoneMetadata.load_all`` and the ``_*_available`` tables are
    phonenumbers internals (checked in cidbridge/internals.py; pyproject bounds the version).
    """
    PhoneMetadata.load_all()
    left = [
        code
        for table in (PhoneMetadata._region_available, PhoneMetadata._country_code_available)
        for code, loader in table.items()
        if loader is not None
    ]
    if left:  # a phonenumbers release that loads differently: fail at start, not on a call
        raise RuntimeError(f"phonenumbers metadata still unloaded after preload: {left[:5]}")


#: Characters people put between digits; anything else (letters, ``#``, ``*``) is no number.
_SEPARATORS = frozenset(" -().\u00a0/")


@lru_cache(maxsize=4096)
def _parse(number: str, region: str) -> phonenumbers.PhoneNumber | None:
    kept = [ch for ch in number.strip() if ch not in _SEPARATORS]
    digits = "".join(kept)
    if len(digits.lstrip("+")) < 3 or not digits.lstrip("+").isdigit() or digits.count("+") > 1:
        return None
    try:
        parsed = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_possible_number(parsed) else None


def _is_domestic(parsed: phonenumbers.PhoneNumber, region: str) -> bool:
    # Compare country codes, not regions: a number in a range libphonenumber does not
    # place (UK 07700 900xxx, reserved for drama) still belongs to the country.
    return parsed.country_code == phonenumbers.country_code_for_region(region)


# display() and e164() run for every event of a call, and again when the block list
# sees the caller: cached, a call formats its number once (libphonenumber's formatting
# is most of the hub's time before the commit).
@lru_cache(maxsize=4096)
def display(number: str | None, region: str) -> str | None:
    """The number formatted the way people in ``region`` write it, or as delivered."""
    if not number:
        return number
    parsed = _parse(number, region)
    if parsed is None:
        return number
    if _is_domestic(parsed, region):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@lru_cache(maxsize=4096)
def e164(number: str | None, region: str) -> str | None:
    """The number in E.164 (``+821012345678``), or None when it is not a phone number."""
    if not number:
        return None
    parsed = _parse(number, region)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def match_key(number: str | None, region: str) -> str | None:
    """What two spellings of one number have in common: E.164, else its bare digits."""
    if not number:
        return None
    full = e164(number, region)
    if full is not None:
        return full
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits or None
