"""The webhook's outbox is the call log: its cursor, the backlog bound and retention, in-process.

A real call log file and a real receiver process; only the daemon around them is left out.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from cidbridge.config import WebhookConfig
from cidbridge.core.tracker import CALL, CallEvent
from cidbridge.hub import Hub
from cidbridge.outputs import Outputs
from cidbridge.outputs.webhooks import WebhookOutput
from cidbridge.store import CallLog
from cidbridge.store.retention import prune_expired
from tests.outputs.support import Receiver

OLD = "2020-01-01T09:00:00.000+00:00"


async def publish(hub: Hub, count: int, start: int = 0) -> list[int]:
    ids = []
    for n in range(start, start + count):
        event = await hub.publish(CallEvent(CALL, f"c{n}", "desk", number=f"0101234{n:04d}"))
        ids.append(event["id"])
    return ids


async def received_ids(
    receiver: Receiver, hook: WebhookOutput, count: int, timeout: float = 20.0
) -> list[int]:
    """The ids the receiver got, once it has ``count`` and the hook has recorded the last answer."""
    deadline = time.monotonic() + timeout
    while len(receiver.received()) < count or hook.backlog:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(receiver.received())} of {count} requests, backlog {hook.backlog}")
        await asyncio.sleep(0.05)
    return [json.loads(r["body"])["id"] for r in receiver.received()]


def test_a_webhook_far_behind_skips_the_oldest_and_counts_them(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)
    receiver.start()

    async def scenario() -> tuple[list[int], list[int], dict[str, object]]:
        store = CallLog(tmp_path / "calls.sqlite").open()
        hub = Hub(store)
        hook = WebhookOutput(WebhookConfig(name="b", url=receiver.url, max_backlog=5), store, "n1")
        hub.sinks.append(Outputs([hook]))
        ids = await publish(hub, 12)  # before the sender runs: 12 behind, 5 allowed
        await hook.start()
        got = await received_ids(receiver, hook, 5)
        status = hook.status()
        await hook.close()
        assert store.cursor("webhook:b") == ids[-1]
        store.close()
        return ids, got, status

    try:
        ids, got, status = asyncio.run(scenario())
    finally:
        receiver.stop()
    assert got == ids[-5:]
    assert (status["dropped"], status["delivered"], status["gauges"]["backlog"]) == (7, 5, 0)


def test_events_pruned_before_they_were_sent_are_counted_and_the_rest_resume(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)

    async def scenario() -> tuple[list[int], list[int], dict[str, object]]:
        store = CallLog(tmp_path / "calls.sqlite").open()
        clock = iter([OLD] * 4 + [""] * 100)
        hub = Hub(store, clock=lambda: next(clock) or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()))
        hook = WebhookOutput(WebhookConfig(name="r", url=receiver.url), store, "n1")
        assert store.cursor("webhook:r") == 0  # a new webhook starts at the end of the log
        hub.sinks.append(Outputs([hook]))
        ids = await publish(hub, 10)  # 4 of them years old
        assert await prune_expired(store, retention_days=90) > 0
        # The daemon restarts (a new output, the same log): it resumes at the saved cursor.
        restarted = WebhookOutput(WebhookConfig(name="r", url=receiver.url), store, "n1")
        receiver.start()
        await restarted.start()
        got = await received_ids(receiver, restarted, 6)
        status = restarted.status()
        await restarted.close()
        store.close()
        return ids, got, status

    try:
        ids, got, status = asyncio.run(scenario())
    finally:
        receiver.stop()
    assert got == ids[4:]
    assert (status["dropped"], status["delivered"]) == (4, 6)
