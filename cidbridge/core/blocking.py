"""The block list's rules and matching, without I/O.

Three kinds of rule:

* ``number`` — one number, however it is written: the rule's value is the number's
  key (:func:`cidbridge.numbers.match_key`: E.164, else its digits), compared with
  the caller's key.
* ``prefix`` — numbers that start with these digits (``070``, ``1588``, or ``+8270``
  for the E.164 form).  Compared with every form of the caller's number: the digits as
  delivered, the national form's digits, and E.164.
* ``withheld`` — calls without a number, by the reason the network gave:
  ``private`` (the caller withheld it), ``unavailable`` (out of area, or no caller ID
  at all), ``payphone``.

A number in the phonebook is never blocked by a ``prefix`` or ``withheld`` rule
(a known caller is not spam), only by a ``number`` rule naming it.

The owner builds a :class:`BlockList` from the stored rules when they change and asks
:meth:`BlockList.match` once per call, when the caller is first known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

NUMBER = "number"
PREFIX = "prefix"
WITHHELD = "withheld"
KINDS = (NUMBER, PREFIX, WITHHELD)
#: ``number_absence`` values a ``withheld`` rule may name.
WITHHELD_REASONS = ("private", "unavailable", "payphone")

_PREFIX = re.compile(r"\+?[0-9]{1,15}")
_SEPARATORS = str.maketrans("", "", " -().\u00a0/")


class BadRule(ValueError):
    """A rule that cannot be kept; the message says what is wrong and what is expected."""


@dataclass(frozen=True, slots=True)
class BlockRule:
    """One stored rule.  ``value`` is normalised (see :func:`normalise`)."""

    id: int
    kind: str
    value: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CallerView:
    """What a rule is matched against: one caller, as the hub knows it."""

    #: The number's key (E.164, else its digits), or None without a number.
    key: str | None
    #: Every way the number is written, as digit strings (E.164 with its ``+``).
    forms: tuple[str, ...] = ()
    #: Why there is no number (``private``, ``unavailable``, ...).
    absence: str | None = None
    #: The number is in the phonebook.
    known: bool = False


def normalise(kind: str, value: str) -> str:
    """A ``prefix`` or ``withheld`` rule's value as stored; :class:`BadRule` if invalid.

    ``number`` rules are normalised by the owner (it needs the region's numbering).
    """
    if kind not in KINDS:
        raise BadRule(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    text = value.strip() if isinstance(value, str) else ""
    if kind == PREFIX:
        digits = text.translate(_SEPARATORS)
        if not _PREFIX.fullmatch(digits):
            raise BadRule(f"a prefix is 1-15 digits, optionally after '+' (e.g. 070 or +8270), not {value!r}")
        return digits
    if kind == WITHHELD:
        reason = text.lower()
        if reason not in WITHHELD_REASONS:
            raise BadRule(f"withheld must be one of {', '.join(WITHHELD_REASONS)}, not {value!r}")
        return reason
    if not text:
        raise BadRule("a number is needed")
    return text


class BlockList:
    """The rules in force; :meth:`match` says which one blocks a caller, if any."""

    def __init__(self, rules: Iterable[BlockRule] = ()) -> None:
        self.rules = tuple(rules)
        self._numbers = {rule.value: rule for rule in self.rules if rule.kind == NUMBER}
        # Longest first: the most specific prefix is the one reported.
        self._prefixes = sorted(
            (rule for rule in self.rules if rule.kind == PREFIX), key=lambda r: len(r.value), reverse=True
        )
        self._withheld = {rule.value: rule for rule in self.rules if rule.kind == WITHHELD}

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, caller: CallerView) -> BlockRule | None:
        """The rule that blocks ``caller``, or None."""
        if caller.key is not None:
            exact = self._numbers.get(caller.key)
            if exact is not None:
                return exact
            if caller.known:
                return None
            for rule in self._prefixes:
                if any(form.startswith(rule.value) for form in caller.forms):
                    return rule
            return None
        if caller.absence is not None and not caller.known:
            return self._withheld.get(caller.absence)
        return None
