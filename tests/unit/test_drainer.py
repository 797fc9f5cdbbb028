"""The one drainer both outboxes use (messages to recipients, events to the audit service): what
lands is recorded as sent, what fails is retried later, a failing store goes to ``on_error``, and
nothing is published before ``ready`` lets it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from services.node.outbox import Drainer


class Table(Drainer[str, int]):
    """A queue of names in memory; publishing one fails while it is in ``refuse``."""

    name = "test_queue"

    def __init__(
        self,
        rows: list[str],
        ready: Callable[[], Awaitable[object]] | None = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        super().__init__(
            batch=8, poll_s=0.05, retry_initial_s=1.0, retry_max_s=2.0, ready=ready,
            on_error=on_error,
        )  # fmt: skip
        self.next_at = dict.fromkeys(rows, 0.0)
        self.tries = dict.fromkeys(rows, 0)
        self.refuse: set[str] = set()
        self.abandon: set[str] = set()  # the client cancels these publishes (connection closed)
        self.hang = False
        self.sent: list[tuple[str, int]] = []
        self.published: list[str] = []
        self.store_fails = False

    def due(self, now: float, limit: int) -> list[str]:
        if self.store_fails:
            raise OSError("disk I/O error")
        return [r for r, at in self.next_at.items() if at <= now][:limit]

    def next_due_at(self) -> float | None:
        return min(self.next_at.values(), default=None)

    def attempts(self, item: str) -> int:
        return self.tries[item]

    async def publish(self, item: str) -> int:
        self.published.append(item)
        if self.hang:
            await asyncio.Event().wait()
        if item in self.abandon:
            raise asyncio.CancelledError
        if item in self.refuse:
            raise ConnectionError(f"no route to {item}")
        return len(self.published)

    def record(self, sent: list[tuple[str, int]], failed: list[tuple[str, str, float]]) -> None:
        for item, ack in sent:
            self.sent.append((item, ack))
            del self.next_at[item]
        for item, _error, at in failed:
            self.tries[item] += 1
            self.next_at[item] = at


async def test_what_lands_is_recorded_sent_and_what_fails_waits_for_its_backoff() -> None:
    table = Table(["a", "b", "c"])
    table.refuse = {"b"}
    before = time.time()
    await table.drain_once()
    assert [item for item, _ in table.sent] == ["a", "c"]
    assert table.tries["b"] == 1
    # first retry after 1 s, with jitter on its upper half: between 0.5 and 1 s from now
    assert before + 0.5 <= table.next_at["b"] <= time.time() + 1.0
    await table.drain_once()  # nothing due yet: waits (the poll interval), publishes nothing
    assert table.published == ["a", "b", "c"]


async def test_a_failing_store_goes_to_on_error_and_the_drain_goes_on() -> None:
    errors: list[tuple[str, str]] = []
    recovered = asyncio.Event()

    def on_error(where: str, exc: Exception) -> None:
        errors.append((where, str(exc)))
        table.store_fails = False  # the disk is back
        recovered.set()

    table = Table(["a"], on_error=on_error)
    table.store_fails = True
    task = asyncio.create_task(table.run())
    try:
        await asyncio.wait_for(recovered.wait(), 5)
        deadline = time.monotonic() + 5
        while not table.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # polling a condition with a deadline
    finally:
        table.stop()
        await asyncio.wait_for(task, 5)
    assert errors == [("test_queue", "disk I/O error")]
    assert [item for item, _ in table.sent] == ["a"]


async def test_nothing_is_published_before_ready_lets_it() -> None:
    gate = asyncio.Event()
    table = Table(["a"], ready=gate.wait)
    task = asyncio.create_task(table.run())
    try:
        for _ in range(10):  # let the drainer run as far as it can: up to the gate
            await asyncio.sleep(0)
        assert table.published == []
        gate.set()
        deadline = time.monotonic() + 5
        while not table.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # polling a condition with a deadline
    finally:
        table.stop()
        gate.set()
        await asyncio.wait_for(task, 5)
    assert table.published == ["a"]


@pytest.mark.parametrize("attempts", [1, 2, 5])
async def test_the_backoff_grows_and_stays_under_its_cap(attempts: int) -> None:
    table = Table(["a"])
    table.refuse = {"a"}
    table.tries["a"] = attempts - 1
    before = time.time()
    await table.drain_once()
    ceiling = min(2.0, 1.0 * 2 ** (attempts - 1))
    assert before + ceiling / 2 <= table.next_at["a"] <= time.time() + ceiling


async def test_a_publish_the_client_abandoned_is_retried_like_any_failure() -> None:
    table = Table(["a", "b"])
    table.abandon = {"a"}
    await table.drain_once()
    assert [item for item, _ in table.sent] == ["b"]
    assert table.tries["a"] == 1 and "a" in table.next_at


async def test_cancelling_the_drain_cancels_it_and_records_nothing() -> None:
    table = Table(["a"])
    table.hang = True
    task = asyncio.create_task(table.run())
    deadline = time.monotonic() + 5
    while not table.published and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # polling a condition with a deadline
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert table.sent == [] and table.tries["a"] == 0
