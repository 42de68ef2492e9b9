"""The one-line description of the machine every benchmark prints next to its figures.

    from machine import machine          # a script in bench/ (bench/fanout/ adds bench/ to sys.path)
    print(f"machine: {machine(node=True, extra=f'SQLite {sqlite3.sqlite_version}')}")

The figures are only comparable with the CPU, the versions and how busy the machine
was: the line ends with the load average, so a script that prints it before and
after its run shows whether other work shared the CPUs meanwhile.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def node_version() -> str:
    """``node --version``, or "none" when Node is not installed."""
    node = shutil.which("node")
    if node is None:
        return "none"
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def machine(*, node: bool = False, extra: str = "") -> str:
    """CPU, CPU count, kernel, Python (and Node, and ``extra``), then the load average now."""
    parts = [f"Python {platform.python_version()}"]
    if node:
        parts.append(f"Node {node_version()}")
    if extra:
        parts.append(extra)
    load = os.getloadavg()
    return (
        f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
        f"{', '.join(parts)}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
