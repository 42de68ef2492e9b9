"""``[panel] open_url``: a link from a caller card into the clinic's or shop's own system.

A template such as ``https://emr.local/patient?phone={e164}``.  Placeholders:

* ``{e164}`` — the number in E.164 (``+821012345678``);
* ``{number}`` — the number as the network delivered it (``01012345678``);
* ``{display}`` — the number as people write it (``010-1234-5678``);
* ``{name}`` — the name shown (the phonebook's, else the network's).

Every value is percent-encoded (``+`` becomes ``%2B``, a space ``%20``, ``&`` ``%26``),
so a caller's name cannot add parameters or leave the URL.  A card whose caller lacks
a value the template uses (no number, no name) gets no link rather than a broken one.
The template must be an absolute URL, and not a ``javascript:``, ``data:``,
``vbscript:`` or ``file:`` one; ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
import string
from urllib.parse import quote

FIELDS = ("e164", "number", "display", "name")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file"})


class OpenUrlError(ValueError):
    """The template cannot be used; the message says why and what is expected."""


def fields(template: str) -> list[str]:
    """The placeholders ``template`` uses; :class:`OpenUrlError` if it is malformed."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise OpenUrlError(f"{exc}; write a brace as {{{{ or }}}}") from None
    used: list[str] = []
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in FIELDS:
            known = ", ".join("{" + f + "}" for f in FIELDS)
            shown = "{" + field + "}"
            raise OpenUrlError(f"unknown placeholder {shown}; use {known}")
        if spec or conversion:
            raise OpenUrlError(f"write the placeholder as {{{field}}}, without a format or conversion")
        used.append(field)
    return used


def check(template: str) -> None:
    """Raise :class:`OpenUrlError` unless ``template`` is a usable ``open_url``."""
    used = fields(template)
    scheme = _SCHEME.match(template.strip())
    if scheme is None:
        raise OpenUrlError('must be an absolute URL such as "https://emr.local/patient?phone={e164}"')
    if scheme.group(1).lower() in _FORBIDDEN_SCHEMES:
        raise OpenUrlError(f"a {scheme.group(1)}: URL is not allowed; use an http(s) address")
    if not used:
        raise OpenUrlError(
            "uses no placeholder; put {e164}, {number}, {display} or {name} where the caller goes"
        )


def render(template: str | None, values: dict[str, str | None]) -> str | None:
    """The link for one caller, each value percent-encoded; None if a value it needs is missing."""
    if not template:
        return None
    used = fields(template)
    if any(not values.get(field) for field in used):
        return None
    return template.format(**{field: quote(str(values[field]), safe="") for field in used})
