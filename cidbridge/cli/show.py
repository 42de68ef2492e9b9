"""Caller text on a terminal: what the network sent, shown, never obeyed.

Anyone can give a call any name, ``ESC]0;…`` (which retitles a terminal), ``ESC[2J``
(which clears it), or Rich markup such as ``[link=…]``.  The call log never holds
control characters (the daemon removes them, see :func:`cidbridge.core.frames.clean_frame`),
but a capture replayed by ``decode``, a port watched by ``monitor`` or ``probe``, or
a log written by an older version may.  So every command prints caller text through
one of these.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.markup import escape
from rich.text import Text

from cidbridge.core.frames import visible_text

#: What ``json.dumps`` leaves raw in strings although a terminal may act on it (it
#: escapes C0 controls itself; raw C0 in its output is the indentation's newlines).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def markup_safe(text: object) -> str:
    """``text`` for a Rich string (a table cell, ``console.print``): escapes shown, markup inert."""
    return escape(visible_text(str(text)))


def plain(value: object) -> Text:
    """``value`` as a Rich ``Text`` (a table cell, ``console.print``): never markup, escapes shown.

    Rich prints a ``Text`` as it is (``[/]`` stays ``[/]``) but would pass ESC through;
    control characters are written as escapes, like :func:`markup_safe` does.
    """
    return Text(visible_text("" if value is None else str(value)))


def json_safe(value: Any, **options: Any) -> str:
    """JSON like ``json.dumps(value, ensure_ascii=False)``, every control character ``\\\\u``-escaped.

    The JSON decodes to exactly the same value; only the terminal sees escapes
    (``json.dumps`` already escapes C0 controls, not DEL, C1 or bidirectional marks).
    """
    text = json.dumps(value, ensure_ascii=False, **options)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
