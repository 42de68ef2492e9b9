"""Phone numbers for people: formatting with libphonenumber (the ``phonenumbers`` package).

The decoder passes numbers through as delivered; this is where ``01012345678``
becomes ``010-1234-5678`` for a Korean front desk.  A number libphonenumber cannot
parse (a mask like ``0207####123``, ``Restricted``) is shown as delivered.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=4096)
def _parse(number: str, region: str) -> phonenumbers.PhoneNumber | None:
    digits = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    if len(digits) < 3 or len(digits) != len(number.replace("-", "").replace(" ", "")):
        return None
    try:
        parsed = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_possible_number(parsed) else None


def display(number: str | None, region: str) -> str | None:
    """The number formatted the way people in ``region`` write it, or as delivered."""
    if not number:
        return number
    parsed = _parse(number, region)
    if parsed is None:
        return number
    if phonenumbers.region_code_for_number(parsed) == region:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def e164(number: str | None, region: str) -> str | None:
    """The number in E.164 (``+821012345678``), or None when it is not a phone number."""
    if not number:
        return None
    parsed = _parse(number, region)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
