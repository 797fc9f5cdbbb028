"""Group commit at the node's inbox: deliveries decided together are committed together, each
undone alone if it fails, and acknowledged only after the commit."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.node.core import Action, Delivery, Verdict
from services.node.inbox import InboxBatcher
from tests.builders import sealed
from tests.support.casework import T0, Network


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA"])


def routes_from_mex(net: Network, case_id: str = "CASE-1") -> bytes:
    return sealed(
        sender=net["MEX"].keys, to=[net["USA"].keys], now=net.clock(),
        body=example_body("info.trafficking_routes"), handling=HandlingCode.H1, case_id=case_id,
    )  # fmt: skip


def delivery(envelope: bytes, seq: int) -> Delivery:
    return Delivery(f"inbox.USA.MEX.m{seq}", envelope, seq, 1, T0)


def test_one_failing_delivery_in_a_group_is_undone_alone(net: Network) -> None:
    usa = net["USA"]
    add_incoming = usa.store.add_incoming

    def poisoned(header, *args, **kwargs):  # type: ignore[no-untyped-def]
        add_incoming(header, *args, **kwargs)  # stored, receipt queued, then a fault: undo all
        if header.case_id == "POISON":
            raise ValueError("a fault met by this message alone")

    usa.store.add_incoming = poisoned  # type: ignore[method-assign]
    envelopes = [routes_from_mex(net), routes_from_mex(net, "POISON"), routes_from_mex(net)]
    results = usa.process_batch([delivery(e, i + 1) for i, e in enumerate(envelopes)])
    assert [type(r) for r in results] == [Verdict, ValueError, Verdict]
    assert [r.action for r in results if isinstance(r, Verdict)] == [Action.ACK, Action.ACK]
    stored = {m.case_id for m in usa.store.messages(direction="in")}
    assert stored == {"CASE-1"} and len(usa.store.messages(direction="in")) == 2
    # the poisoned one left nothing behind: no receipt queued for it either
    assert len(usa.store.messages(direction="out", include_protocol=True)) == 2


async def test_deliveries_arriving_together_share_one_commit(net: Network) -> None:
    batcher = InboxBatcher(net["USA"].process_batch, window_s=0)  # no lingering needed
    deliveries = [delivery(routes_from_mex(net), i + 1) for i in range(20)]
    verdicts = await asyncio.gather(*(batcher.decide(d) for d in deliveries))
    await batcher.stop()
    assert [v.action for v in verdicts] == [Action.ACK] * 20
    assert batcher.batches == 1
    assert len(net["USA"].store.messages(direction="in")) == 20


async def test_a_failed_commit_fails_every_delivery_of_its_group(net: Network) -> None:
    def failing(_: object) -> list[Verdict | Exception]:
        raise sqlite3.OperationalError("disk I/O error")

    batcher = InboxBatcher(failing, window_s=0.05)  # type: ignore[arg-type]
    deliveries = [delivery(routes_from_mex(net), i + 1) for i in range(3)]
    results = await asyncio.gather(*(batcher.decide(d) for d in deliveries),
                                   return_exceptions=True)  # fmt: skip
    await batcher.stop()
    assert [type(r) for r in results] == [sqlite3.OperationalError] * 3


def test_a_failing_delivery_alone_in_its_group_leaves_nothing_behind(net: Network) -> None:
    # a group of one takes no savepoint: its own transaction is undone whole, and the fault is
    # its verdict, as in a larger group
    usa = net["USA"]
    add_incoming = usa.store.add_incoming

    def poisoned(header, *args, **kwargs):  # type: ignore[no-untyped-def]
        add_incoming(header, *args, **kwargs)  # stored, receipt queued, then a fault: undo all
        raise ValueError("a fault met by this message alone")

    usa.store.add_incoming = poisoned  # type: ignore[method-assign]
    [result] = usa.process_batch([delivery(routes_from_mex(net, "POISON"), 1)])
    assert isinstance(result, ValueError)
    assert usa.store.messages(direction="in") == []
    assert usa.store.messages(direction="out", include_protocol=True) == []
    assert not usa.store.db.in_transaction
    usa.store.add_incoming = add_incoming  # type: ignore[method-assign]
    [verdict] = usa.process_batch([delivery(routes_from_mex(net), 2)])
    assert isinstance(verdict, Verdict) and verdict.action is Action.ACK
    assert len(usa.store.messages(direction="in")) == 1


def test_a_failed_commit_of_a_delivery_alone_is_raised_not_taken_for_its_verdict(
    net: Network,
) -> None:
    usa = net["USA"]
    real = usa.store._db

    class FailingCommit:  # the connection, but its COMMIT fails (a full disk, say)
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> object:
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

    usa.store._db = FailingCommit()  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        usa.process_batch([delivery(routes_from_mex(net), 1)])
    usa.store._db = real
    assert not real.in_transaction and usa.store.messages(direction="in") == []
