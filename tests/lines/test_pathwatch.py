"""PathWatch: a down line hears its device path come back (inotify), without polling it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cidbridge.lines import pathwatch
from cidbridge.lines.pathwatch import PathWatch


def _replace_link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` the way udev does: a new link renamed over the old."""
    tmp = link.with_name(link.name + ".new")
    tmp.symlink_to(target)
    tmp.replace(link)


async def _changes(watch: PathWatch, *steps) -> bool:
    """Run ``steps`` (callables) one by one while ``watch`` waits; whether it returned."""
    waiting = asyncio.create_task(watch.wait_changed())
    try:
        for step in steps:
            await asyncio.sleep(0.05)  # the watches are in place before the change
            assert not waiting.done(), "returned before anything changed"
            step()
        await asyncio.wait_for(waiting, 5)
        return True
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)


def test_a_path_whose_folders_are_missing_is_heard_when_they_and_it_appear(tmp_path):
    # /dev/serial/by-id goes away with the last USB serial device, and comes back with one.
    by_id = tmp_path / "serial" / "by-id"
    link = by_id / "usb-Modem-if00"
    tty = tmp_path / "ttyACM0"
    tty.write_bytes(b"")
    watch = PathWatch(str(link))
    assert not watch.exists
    steps = (
        lambda: (tmp_path / "unrelated").write_bytes(b""),  # an event, but not our path
        lambda: by_id.mkdir(parents=True),
        lambda: link.symlink_to(tty),
    )
    assert asyncio.run(_changes(watch, *steps))
    assert watch.changed()


def test_a_symlink_pointed_at_another_device_or_a_node_recreated_in_place(tmp_path):
    first, second, link = tmp_path / "tty0", tmp_path / "tty1", tmp_path / "by-id-link"
    first.write_bytes(b"")
    second.write_bytes(b"")
    link.symlink_to(first)
    assert asyncio.run(_changes(PathWatch(str(link)), lambda: _replace_link(link, second)))

    def recreate() -> None:
        second.unlink()
        second.write_bytes(b"")

    assert asyncio.run(_changes(PathWatch(str(link)), recreate))


def test_without_inotify_it_looks_now_and_then(tmp_path, monkeypatch):
    def no_inotify() -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(pathwatch, "_inotify", no_inotify)
    monkeypatch.setattr(pathwatch, "FALLBACK_POLL", 0.05)
    path = tmp_path / "ttyUSB0"
    assert asyncio.run(_changes(PathWatch(str(path)), lambda: path.write_bytes(b"")))


def test_a_url_has_no_path_to_watch():
    async def scenario() -> bool:
        waiting = asyncio.create_task(PathWatch("socket://127.0.0.1:4001").wait_changed())
        await asyncio.sleep(0.1)
        done = waiting.done()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        return done

    assert not asyncio.run(scenario())


@pytest.mark.skipif(not os.path.isdir("/dev"), reason="needs /dev")
def test_a_missing_device_under_dev_is_watched_through_its_deepest_folder():
    assert pathwatch._deepest_directory(Path("/dev/serial/by-id/usb-None-if00")) in (
        Path("/dev/serial/by-id"),
        Path("/dev/serial"),
        Path("/dev"),
    )
