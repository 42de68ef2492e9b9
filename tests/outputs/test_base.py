"""The contract every output relies on: a bounded queue that never blocks the hub."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from cidbridge.core.tracker import CALL, CallEvent
from cidbridge.hub import Hub
from cidbridge.outputs import EventQueue, Output, Outputs
from cidbridge.store import CallLog


def test_queue_drops_the_oldest_when_full_and_counts_it() -> None:
    queue = EventQueue(3)
    for i in range(5):
        queue.put({"id": i})
    assert queue.dropped == 2
    assert [queue.get_nowait()["id"] for _ in range(3)] == [2, 3, 4]  # type: ignore[index]
    assert queue.get_nowait() is None


def test_unget_keeps_order_and_the_bound() -> None:
    queue = EventQueue(2)
    queue.put({"id": 1})
    queue.put({"id": 2})
    first = queue.get_nowait()
    assert first is not None
    queue.put({"id": 3})
    queue.unget(first)  # a failed send is retried first; the newest gives way
    assert queue.dropped == 1
    assert [queue.get_nowait()["id"] for _ in range(2)] == [1, 2]  # type: ignore[index]


def test_get_waits_for_a_put() -> None:
    async def scenario() -> dict[str, Any]:
        queue = EventQueue()
        waiter = asyncio.create_task(queue.get())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        queue.put({"id": 7})
        return await asyncio.wait_for(waiter, 1)

    assert asyncio.run(scenario()) == {"id": 7}


class _Stuck(Output):
    """A consumer that never returns from its first send."""

    async def run(self) -> None:
        await self.queue.get()
        self.set_state("up")
        await asyncio.Event().wait()


class _Broken(Output):
    def deliver(self, event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    async def run(self) -> None:
        raise RuntimeError("crashed at start")


def test_a_stuck_or_broken_output_costs_only_its_own_queue(tmp_path: Path) -> None:
    """The hub commits and delivers every event although one output hangs and one raises."""

    async def scenario() -> tuple[list[int], Output, Output]:
        store = CallLog(tmp_path / "calls.sqlite").open()
        hub = Hub(store)
        seen: list[int] = []

        class Recorder:
            async def deliver(self, event: dict[str, Any]) -> None:
                seen.append(event["id"])

        stuck, broken = _Stuck("stuck", queue_limit=10), _Broken("broken")
        outputs = Outputs([stuck, broken])
        hub.sinks.extend([outputs, Recorder()])
        await outputs.start()
        for i in range(25):
            await asyncio.wait_for(hub.publish(CallEvent(CALL, f"c{i}", "front", number="0101234567")), 1)
        await asyncio.sleep(0.05)
        await outputs.close()
        store.close()
        return seen, stuck, broken

    seen, stuck, broken = asyncio.run(scenario())
    assert seen == list(range(1, 26))
    assert stuck.status() == {"state": "up", "reason": None, "queued": 10, "delivered": 0, "dropped": 14}
    assert broken.status()["state"] == "down"
    assert "crashed at start" in broken.status()["reason"]


def test_queue_needs_room_for_one_event() -> None:
    with pytest.raises(ValueError):
        EventQueue(0)
