"""The reliability suite's figures: each test records what it measured.

Figures are printed at the end of the run (``reliability figures``) and, when
``CIDBRIDGE_FIGURES`` names a file, written there as JSON for the README.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

_FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``record(key=value, ...)``: keep figures under this test's name."""

    def add(**figures: Any) -> None:
        entry = _FIGURES.setdefault(request.node.name, {})
        entry.update(figures)
        print(f"{request.node.name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

    return add


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for test, figures in _FIGURES.items():
        terminalreporter.write_line(f"{test}:")
        for key, value in figures.items():
            terminalreporter.write_line(f"    {key}: {value}")
    target = os.environ.get("CIDBRIDGE_FIGURES")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            json.dump(_FIGURES, out, indent=2, sort_keys=True)
