"""``cidbridge config check`` and ``cidbridge config init``: a config file you can trust.

``check`` prints every problem in a file, one per line, in the form compilers use
(``file:line: key: what is wrong, what is expected``), so an editor or a person can
go straight to it.  ``init`` writes a starting file: ``config.example.toml`` (every
key documented) with one ``[[lines]]`` table per serial port found on this machine,
and a new random token (:func:`secrets.token_urlsafe`, 32 characters): the file is
written readable by its owner and the ``cidbridge`` group only.
"""

from __future__ import annotations

import contextlib
import grp
import os
import re
import secrets
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from cidbridge import config as config_module
from cidbridge.cli.errors import FAILURE, USAGE, fail
from cidbridge.cli.help import Command, Group

app = typer.Typer(
    name="config",
    cls=Group,
    help="Check a configuration file, or write a starting one.",
    no_args_is_help=True,
    add_completion=False,
)

BY_ID = Path("/dev/serial/by-id")


# -- check ---------------------------------------------------------------------------


@app.command("check", cls=Command)
def check(
    file: Annotated[Path, typer.Argument(readable=False, help="The TOML configuration file to check.")],
) -> None:
    """Print every problem in FILE (exit 2), or a summary of what it configures (exit 0)."""
    try:
        text = config_module.read_text(file)
    except config_module.ConfigError as exc:
        fail(str(exc), USAGE)
    config, problems = config_module.check(text, file=str(file))
    if problems:
        for problem in problems:
            print(problem)
        count = len(problems)
        print(f"{file}: {count} problem{'s' if count != 1 else ''}; cidbridge will not start with it")
        raise typer.Exit(USAGE)
    assert config is not None
    for warning in _warnings(config):
        print(f"{file}: warning: {warning}")
    names = ", ".join(f"{line.name} ({line.port})" for line in config.lines) or "none"
    print(f"{file}: OK; listens on {config.server.host}:{config.server.port}; lines: {names}")
    # MQTT and webhooks: where events go besides the panels (never a password or a URL's query).
    outputs = [f"MQTT to {config.mqtt.host}:{config.mqtt.port}"] if config.mqtt.enabled else []
    outputs += [f"webhook {hook.name}" for hook in config.webhooks]
    if outputs:
        print(f"{file}: events also go out by {', '.join(outputs)}")


def _warnings(config: config_module.Config) -> list[str]:
    """Things that are valid but probably not what was meant."""
    warnings = []
    for i, line in enumerate(config.lines):
        if "://" not in line.port and not os.path.exists(line.port):
            warnings.append(
                f"lines[{i}].port: {line.port} does not exist on this machine now "
                "(cidbridge waits for it; `cidbridge ports` lists the ports there are)"
            )
        elif re.fullmatch(r"/dev/tty(ACM|USB)\d+", line.port):
            warnings.append(
                f"lines[{i}].port: {line.port} can change after a replug or a reboot; "
                "prefer its /dev/serial/by-id/… name"
            )
    if not config.lines:
        warnings.append("no [[lines]]: cidbridge will serve the panel but see no calls")
    if config.server.host in ("0.0.0.0", "::", "") and not config.server.allowed_hosts:
        warnings.append(
            f"server.allowed_hosts: host is {config.server.host!r} but no names are listed, so only "
            "browsers on this PC (127.0.0.1, localhost) are answered; list the names or addresses "
            'the other PCs use, e.g. allowed_hosts = ["frontdesk-pc", "192.168.1.20"]'
        )
    return warnings


# -- init ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundPort:
    """A serial port on this machine, as ``config init`` offers it."""

    path: str  # the stable /dev/serial/by-id name when there is one
    description: str
    usb: bool
    modem: bool


def find_ports() -> list[FoundPort]:
    """The serial ports pyserial sees, USB ones first, named by their stable path."""
    from serial.tools import list_ports

    stable: dict[str, str] = {}
    if BY_ID.is_dir():
        for link in sorted(BY_ID.iterdir()):
            stable[os.path.realpath(link)] = str(link)
    found = []
    for port in list_ports.comports():
        usb = port.vid is not None
        text = " ".join(filter(None, [port.description, port.manufacturer, port.product])).strip()
        if usb:
            text = f"{text} [{port.vid:04x}:{port.pid:04x}]"
        elif not text or text == "n/a":
            text = "built-in serial port (often unused)"
        modem = "modem" in text.lower() or "ttyACM" in port.device
        path = stable.get(os.path.realpath(port.device), port.device)
        found.append(FoundPort(path, text, usb, modem))
    return sorted(found, key=lambda p: (not p.usb, p.path))


def example_text() -> str:
    """``config.example.toml``: packaged with cidbridge, or at the top of a checkout."""
    packaged = resources.files("cidbridge") / "config.example.toml"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "config.example.toml"
    return checkout.read_text(encoding="utf-8")


def render(example: str, ports: list[FoundPort]) -> str:
    """The example with its ``[[lines]]`` table repeated for each port (or kept as is)."""
    header = re.search(r"(?m)^\[\[lines\]\]", example)
    start = header.start() if header else -1
    if start < 0 or not ports:
        note = (
            "# No USB serial device was found when this file was written: plug the caller-ID\n"
            "# device in, run `cidbridge ports`, and set `port` below.\n"
        )
        return example[:start] + note + example[start:] if start >= 0 else example
    head, template = example[:start], example[start:]
    tables = []
    for number, port in enumerate(ports, start=1):
        table = template.replace("[[lines]]", f"[[lines]]\n# Found: {port.description}", 1)
        table = _set(table, "name", "front-desk" if len(ports) == 1 else f"line-{number}")
        table = _set(table, "port", port.path)
        if not port.modem:
            table = _set(table, "device", "box")
            table = re.sub(r"(?m)^init = .*\n", "", table)
            table = table.replace(
                "\nbaudrate = ", "\n# A caller-ID box: check its manual for the speed.\nbaudrate = ", 1
            )
        tables.append(table.rstrip("\n"))
    return head + "\n\n".join(tables) + "\n"


def with_token(text: str) -> str:
    """``text`` with a new random token in its ``[server] token = ""`` line."""
    return re.sub(r'(?m)^token = ""', f'token = "{secrets.token_urlsafe(24)}"', text, count=1)


def _write_private(output: Path, text: str) -> None:
    """Write ``text`` readable by the owner and, when it exists, the ``cidbridge`` group only."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(output, 0o640)  # O_CREAT's mode applies to new files only
    if os.geteuid() == 0:
        # The service's user reads it through its group (README, install step 2).
        with contextlib.suppress(KeyError):
            os.chown(output, 0, grp.getgrnam("cidbridge").gr_gid)


def _set(table: str, key: str, value: str) -> str:
    return re.sub(rf'(?m)^{key} = "[^"\n]*"', f'{key} = "{value}"', table, count=1)


@app.command("init", cls=Command)
def init(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the file.")] = Path(
        "cidbridge.toml"
    ),
    port: Annotated[
        list[str] | None,
        typer.Option("--port", "-p", help="A port to configure (repeat for more); skips the question."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Write a starting config file, offering the serial ports found on this machine."""
    if output.exists() and not force:
        fail(f"{output} exists; pass --force to overwrite it, or choose another --output", USAGE)
    chosen = [_describe(p, find_ports()) for p in port] if port else _offer(find_ports())
    text = with_token(render(example_text(), chosen))
    _, problems = config_module.check(text, file=str(output))
    if problems:  # a bug in the template, not the user's doing
        fail(f"the generated file does not pass `config check`: {problems[0]}", FAILURE)
    try:
        _write_private(output, text)
    except OSError as exc:
        fail(f"cannot write {output} ({exc.strerror}); choose another --output or use sudo", USAGE)
    lines = ", ".join(p.path for p in chosen) or "none yet (edit `port`)"
    print(f"wrote {output} with lines on: {lines}, and a new token (keep the file private)")
    print(f"next: edit it if needed, then `cidbridge config check {output}`")


def _describe(path: str, found: list[FoundPort]) -> FoundPort:
    for item in found:
        if path in (item.path, os.path.realpath(item.path)):
            return FoundPort(path, item.description, item.usb, item.modem)
    return FoundPort(path, "given with --port", True, "ttyUSB" not in path)


def _offer(found: list[FoundPort]) -> list[FoundPort]:
    """Show the ports; ask which to use when a person is there, else take the USB ones."""
    if not found:
        print("No serial ports found; the file will have an example line to edit.")
        return []
    print("Serial ports on this machine:")
    for number, item in enumerate(found, start=1):
        print(f"  {number}) {item.path}  {item.description}")
    default = [n for n, item in enumerate(found, start=1) if item.usb]
    if not sys.stdin.isatty():
        return [found[n - 1] for n in default]
    answer = typer.prompt(
        "Which are caller-ID devices? (numbers, comma-separated; 0 for none)",
        default=",".join(map(str, default)) or "0",
    )
    numbers = [int(n) for n in re.findall(r"\d+", answer)]
    if any(n > len(found) for n in numbers):
        fail(f"there is no port {max(numbers)}; choose 1-{len(found)}", USAGE)
    return [found[n - 1] for n in numbers if n > 0]
