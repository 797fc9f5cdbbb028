"""The one drainer both outboxes use (messages to recipients, events to the audit service): what
lands is recorded as sent, what fails is retried later, a failing store goes to ``on_error``, and
nothing is published before ``ready`` lets it. Pipelined (the messages' outbox), what is queued
during a round goes out before that round is acknowledged once the round has been in flight a
moment, a row in flight is never taken twice, and no more rows are in flight than a round may
hold. Lingering (the audit events), what is queued one row at a time goes out in one round."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

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
        overlap_after_s: float | None = None,
        batch: int = 8,
        linger_s: float = 0.0,
    ) -> None:
        super().__init__(
            batch=batch, poll_s=0.05, retry_initial_s=1.0, retry_max_s=2.0, ready=ready,
            on_error=on_error, overlap_after_s=overlap_after_s, linger_s=linger_s,
        )  # fmt: skip
        self.next_at = dict.fromkeys(rows, 0.0)
        self.tries = dict.fromkeys(rows, 0)
        self.refuse: set[str] = set()
        self.abandon: set[str] = set()  # the client cancels these publishes (connection closed)
        self.hang = False
        self.sent: list[tuple[str, int]] = []
        self.published: list[str] = []
        self.store_fails = False
        self.record_fails = False
        self.rounds: list[list[str]] = []  # what each round recorded as sent
        self.held: dict[str, asyncio.Event] = {}  # these publishes wait for their event

    def add(self, row: str, *, held: bool = False) -> None:
        self.next_at[row], self.tries[row] = 0.0, 0
        if held:
            self.held[row] = asyncio.Event()
        self.wake()

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
        if item in self.held:
            await self.held[item].wait()
        if self.hang:
            await asyncio.Event().wait()
        if item in self.abandon:
            raise asyncio.CancelledError
        if item in self.refuse:
            raise ConnectionError(f"no route to {item}")
        return len(self.published)

    def record(self, sent: list[tuple[str, int]], failed: list[tuple[str, str, float]]) -> None:
        if self.record_fails:
            raise OSError("database or disk is full")
        self.rounds.append([item for item, _ in sent])
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


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "not within 5 s"
        await asyncio.sleep(0.005)  # polling a condition with a deadline


def sent(table: Table) -> list[str]:
    return [item for item, _ in table.sent]


@contextlib.asynccontextmanager
async def running(table: Table) -> AsyncIterator[None]:
    """``table`` drained meanwhile; stopped after."""
    task = asyncio.create_task(table.run())
    try:
        yield
    finally:
        table.stop()
        await asyncio.wait_for(task, 5)


async def test_what_is_queued_during_a_round_goes_out_before_that_round_is_acknowledged() -> None:
    table = Table([], overlap_after_s=0.0)
    table.add("a", held=True)  # its PubAck is slow to come
    async with running(table):
        await until(lambda: table.published == ["a"])
        table.add("b")
        await until(lambda: sent(table) == ["b"])  # out and recorded, "a" still in flight
        assert table.published == ["a", "b"]  # "a", due all along, was not taken again
        table.held["a"].set()
        await until(lambda: sent(table) == ["b", "a"])
    assert table.published == ["a", "b"]


async def test_no_more_rows_are_in_flight_than_a_round_may_hold() -> None:
    table = Table([], overlap_after_s=0.0, batch=2)
    table.add("a", held=True)
    async with running(table):
        await until(lambda: table.published == ["a"])
        table.add("b", held=True)
        await until(lambda: table.published == ["a", "b"])
        table.add("c")
        for _ in range(20):  # let the drainer run as far as it can: up to its two rows
            await asyncio.sleep(0)
        assert table.published == ["a", "b"]
        table.held["a"].set()  # a round ends: the next may start
        await until(lambda: "c" in sent(table))
        table.held["b"].set()
        await until(lambda: len(table.sent) == 3)
    assert table.published == ["a", "b", "c"]


async def test_a_round_in_flight_that_cannot_record_goes_to_on_error() -> None:
    errors: list[tuple[str, str]] = []

    def on_error(where: str, exc: Exception) -> None:
        errors.append((where, str(exc)))
        table.record_fails = False  # the disk is back

    table = Table([], overlap_after_s=0.0, on_error=on_error)
    table.record_fails = True
    table.add("a")
    async with running(table):
        await until(lambda: sent(table) == ["a"])  # published again, recorded this time
    assert errors == [("test_queue", "database or disk is full")]
    assert table.published == ["a", "a"]


async def test_cancelling_the_drain_cancels_its_rounds_in_flight() -> None:
    table = Table([], overlap_after_s=0.0)
    table.add("a", held=True)
    task = asyncio.create_task(table.run())
    await until(lambda: table.published == ["a"])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    rounds = [t for t in asyncio.all_tasks() if t.get_name() == "test_queue-round"]
    assert rounds == [] and table.sent == [] and table.tries["a"] == 0


async def test_a_round_just_started_holds_the_next_back_for_a_moment() -> None:
    # a burst queued while the hub acknowledges a round at once goes out together after it,
    # in one round and one commit, not in a round per row
    table = Table([], overlap_after_s=0.2)
    before = time.monotonic()  # the round of "a" starts after this
    table.add("a", held=True)
    async with running(table):
        await until(lambda: table.published == ["a"])
        table.add("b")
        table.add("c")
        await until(lambda: sent(table) == ["b", "c"])
        assert time.monotonic() - before >= 0.2  # held back while "a" was that young
        assert table.rounds == [["b", "c"]]  # together
        table.held["a"].set()
        await until(lambda: len(table.sent) == 3)
    assert table.published == ["a", "b", "c"]


async def test_a_round_that_ended_frees_its_rows_even_before_its_callbacks_run() -> None:
    # asyncio runs a finished task's callbacks a turn later; a drain that looks meanwhile (its
    # wait for the round timed out in the same turn) must see the rows free, or a full outbox
    # would hold them forever and never wait again
    table = Table(["a"], overlap_after_s=0.0, batch=1)
    [task] = [table._start(table.due(time.time(), 1))]
    task.remove_done_callback(table._round_ended)  # as if it had not run yet
    await asyncio.wait({task})
    table._reap()
    assert table._busy == set() and not table._in_flight
    assert sent(table) == ["a"]


async def test_lingering_what_is_queued_one_by_one_goes_out_in_one_round() -> None:
    table = Table([], linger_s=0.5)
    before = time.monotonic()
    table.add("a")
    async with running(table):
        for row in ("b", "c"):  # queued while "a" lingers, each waking the drain
            for _ in range(5):
                await asyncio.sleep(0)
            table.add(row)
        await until(lambda: len(table.sent) == 3)
        assert time.monotonic() - before >= 0.5
    assert table.rounds == [["a", "b", "c"]]


async def test_lingering_a_full_round_goes_out_at_once() -> None:
    table = Table([str(i) for i in range(8)], linger_s=30.0, batch=8)
    async with running(table):
        await until(lambda: len(table.sent) == 8)  # long before the 30 s: nothing to wait for
    assert table.rounds == [[str(i) for i in range(8)]]


async def test_stopping_ends_a_linger_at_once_and_publishes_nothing() -> None:
    table = Table(["a"], linger_s=30.0)
    task = asyncio.create_task(table.run())
    for _ in range(5):  # into the linger
        await asyncio.sleep(0)
    table.stop()
    await asyncio.wait_for(task, 5)  # not 30 s
    assert table.published == [] and table.tries["a"] == 0


async def test_a_linger_that_ends_with_the_hub_away_publishes_nothing_until_it_is_back() -> None:
    connected = asyncio.Event()
    connected.set()

    async def ready() -> None:
        await connected.wait()

    table = Table([], ready=ready, linger_s=0.2)
    table.add("a")
    async with running(table):
        for _ in range(5):  # into the linger
            await asyncio.sleep(0)
        connected.clear()  # the hub goes away meanwhile
        await asyncio.sleep(0.5)  # the linger is long over
        assert table.published == [] and table.tries["a"] == 0  # no attempt spent on it
        connected.set()
        await until(lambda: sent(table) == ["a"])
