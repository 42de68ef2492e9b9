"""Problems in a TOML config file, collected and located: the machinery behind :mod:`cidbridge.config`.

:class:`Reader` checks a parsed document against a schema (section → key → TOML
type), collecting every problem as a :class:`ConfigError` that names the file, the
line (:func:`locate`) and the key, and says what is expected; a misspelt key gets a
"did you mean".  The section modules of :mod:`cidbridge.config` hold the schema and
what each value means.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Schema = dict[str, dict[str, type | tuple[type, ...]]]


class ConfigError(Exception):
    """The configuration is wrong.  ``str()`` is one line: where, which key, what to do.

    ``problems`` holds every problem found in the same file, this one first.
    """

    def __init__(self, key: str, message: str, *, file: str | None = None, line: int | None = None):
        self.key = key
        self.message = message
        self.file = file
        self.line = line
        self.problems: list[ConfigError] = [self]
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "config"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.key}: {self.message}"


class Reader:
    """Checks one parsed TOML document against ``schema``, collecting problems.

    Section readers call :meth:`problem` and carry on with the default, so one run
    finds every mistake.  Code that prefers ``raise reader.error(...)`` still works:
    :meth:`section` records the raised error and uses the section's default.
    """

    def __init__(self, text: str, file: str | None, schema: Schema) -> None:
        self.text = text
        self.file = file
        self.schema = schema
        self.problems: list[ConfigError] = []

    def error(self, key: str, message: str) -> ConfigError:
        # A missing key has no line of its own: point at its table's header instead.
        line, where = locate(self.text, key), key
        while line is None and "." in where:
            where = where.rsplit(".", 1)[0]
            line = locate(self.text, where)
        return ConfigError(key, message, file=self.file, line=line)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(self.error(key, message))

    def within(self, key: str, value: float, low: float, high: float, unit: str = "") -> bool:
        """Whether ``low <= value <= high``; if not, records ``must be low-high unit, not value``."""
        if low <= value <= high:
            return True
        self.problem(key, f"must be {low}-{high}{f' {unit}' if unit else ''}, not {value}")
        return False

    def section(self, read: Callable[[], T], default: Callable[[], T]) -> T:
        """``read()``; if it raises :class:`ConfigError`, record it and return ``default()``."""
        try:
            return read()
        except ConfigError as exc:
            self.problems.append(exc)
            return default()

    def table(self, data: Any, section: str, key: str) -> dict[str, Any]:
        """The valid entries of table ``data``; unknown keys and wrong types are problems."""
        if not isinstance(data, dict):
            self.problem(key, "must be a table")
            return {}
        schema = self.schema[section]
        valid: dict[str, Any] = {}
        for name, value in data.items():
            if name not in schema:
                self.problem(f"{key}.{name}", f"unknown key{did_you_mean(name, schema)}")
                continue
            expected = schema[name]
            if isinstance(value, bool) and bool not in _kinds(expected):
                value = _WRONG
            if value is _WRONG or not isinstance(value, expected):
                want = " or ".join(_TOML_NAMES[k] for k in _kinds(expected))
                self.problem(f"{key}.{name}", f"must be {want}, not {_toml(data[name])}")
                continue
            valid[name] = value
        return valid


_WRONG = object()
_TOML_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def _toml(value: Any) -> str:
    """``value`` the way it is written in TOML (``true``, ``"text"``), for messages."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _kinds(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(choices)}"


def locate(text: str, key: str) -> int | None:
    """Best-effort line number of a dotted key (``lines[1].port``) in TOML ``text``."""
    match = re.fullmatch(r"(\w+)(?:\[(\d+)\])?(?:\.([\w-]+))?(?:\.([\w-]+))?", key)
    if not match:
        return None
    section, index, leaf, subleaf = match.groups()
    want = int(index) if index is not None else None
    current, count = None, {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.fullmatch(r"(\[\[?)\s*([\w.-]+)\s*\]\]?", line)
        if header:
            current = header.group(2)
            if header.group(1) == "[[":
                count[current] = count.get(current, -1) + 1
            in_place = current == section and (want is None or count.get(current) == want)
            if in_place and leaf is None:
                return number
            if current == f"{section}.{leaf}" and subleaf is None:
                return number
            continue
        if current == section and (want is None or count.get(current) == want):
            if leaf and re.match(rf"{re.escape(leaf)}\s*=", line):
                return number
        elif current == f"{section}.{leaf}" and subleaf and re.match(rf"{re.escape(subleaf)}\s*=", line):
            return number
    return None


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text; a missing or unreadable file is a :class:`ConfigError`."""
    file = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file", "not found; create it from config.example.toml", file=file) from None
    except UnicodeDecodeError:
        raise ConfigError("file", "is not UTF-8 text; save it as UTF-8", file=file) from None
    except OSError as exc:
        raise ConfigError("file", f"cannot be read ({exc.strerror})", file=file) from None


def pem_file(reader: Reader, raw: dict[str, Any], key: str) -> Path | None:
    """The PEM file named by ``key`` (dotted; its last part is the key in ``raw``), if set."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf not in raw:
        return None
    path = Path(raw[leaf]).expanduser()
    if not path.is_file():
        reader.problem(key, f"{str(path)!r} is not a readable file (a PEM file)")
    return path
