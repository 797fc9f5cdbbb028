"""Group commit at the node's inbox: deliveries decided together are committed together, each
undone alone if it fails, and acknowledged only after the commit. A group is taken without a
savepoint per delivery; one failing delivery has the group rolled back and taken again one by
one, and what the first pass did outside the store is taken back with it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.core.envelope import seal
from services.core.keys import NodeKeys
from services.core.logs import configure
from services.node.core import Action, Delivery, NodeCore, Verdict
from services.node.inbox import InboxBatcher
from services.node.parking import DeferralBudget
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


def poison(usa: NodeCore) -> None:
    """USA's store fails a message of case POISON after storing it and queueing its receipt."""
    add_incoming = usa.store.add_incoming

    def poisoned(header, *args, **kwargs):  # type: ignore[no-untyped-def]
        add_incoming(header, *args, **kwargs)  # stored, receipt queued, then a fault: undo all
        if header.case_id == "POISON":
            raise ValueError("a fault met by this message alone")

    usa.store.add_incoming = poisoned  # type: ignore[method-assign]


class FailingCommit:
    """A connection whose COMMIT fails (a full disk, say); everything else as ``real``."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.real.execute(sql, *args)


def unknown_key_envelope(usa: NodeCore) -> bytes:
    """From MEX under a key USA's directory does not list: deferrable."""
    stranger = NodeKeys.generate("MEX")
    return seal(
        example_body("info.trafficking_routes"), sender=stranger,
        recipients=[usa.keys.current_encryption.public()], handling=HandlingCode.H1, now=T0,
    )  # fmt: skip


def statements(core: NodeCore) -> list[str]:
    """Every SQL statement ``core``'s store runs from now on, as run."""
    seen: list[str] = []
    core.store.db.set_trace_callback(seen.append)
    return seen


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


def test_one_failing_delivery_in_a_group_is_undone_alone(net: Network) -> None:
    usa = net["USA"]
    poison(usa)
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
    usa.store._db = FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        usa.process_batch([delivery(routes_from_mex(net), 1)])
    usa.store._db = real
    assert not real.in_transaction and usa.store.messages(direction="in") == []


def test_a_group_is_taken_together_without_a_savepoint_for_each_delivery(net: Network) -> None:
    usa = net["USA"]
    deliveries = [delivery(routes_from_mex(net), i + 1) for i in range(5)]
    sql = statements(usa)
    verdicts = usa.process_batch(deliveries)
    assert [v.action for v in verdicts if isinstance(v, Verdict)] == [Action.ACK] * 5
    assert [s for s in sql if s.startswith("SAVEPOINT")] == []
    assert sql.count("COMMIT") == 1
    assert len(usa.store.messages(direction="in")) == 5


def test_a_group_taken_again_says_once_what_it_kept(
    net: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    # the first pass stored the first message, then met the fault and was rolled back: its log
    # line for that message is not written, the second pass's is
    usa = net["USA"]
    poison(usa)
    envelopes = [routes_from_mex(net), routes_from_mex(net, "POISON"), routes_from_mex(net)]
    configure(json=True, level="INFO")
    sql = statements(usa)
    results = usa.process_batch([delivery(e, i + 1) for i, e in enumerate(envelopes)])
    assert [type(r) for r in results] == [Verdict, ValueError, Verdict]
    events = logged(capsys)
    stored = [e["stream_seq"] for e in events if e["event"] == "envelope_stored"]
    assert stored == [1, 3]
    [again] = [e for e in events if e["event"] == "group_taken_again_one_by_one"]
    assert (again["deliveries"], again["failed_at"], again["error"]) == (3, 1, "ValueError")
    assert len([s for s in sql if s.startswith("SAVEPOINT")]) == 3  # the second pass's
    assert sql.count("ROLLBACK") == 1 and sql.count("COMMIT") == 1


def test_a_spent_budget_still_answers_its_first_refusal_when_the_group_is_taken_again(
    net: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    # A state over its deferral budget gets one signed rejection a minute. The first pass
    # counted that minute's one and was rolled back: the second pass must still answer it.
    usa = net["USA"]
    usa.parking.budget = DeferralBudget(max_per_sender=0)  # spent from the start
    poison(usa)
    configure(json=True, level="INFO")
    group = [
        Delivery("inbox.USA.MEX.m1", unknown_key_envelope(usa), 1, 1, T0, final=False),
        delivery(routes_from_mex(net, "POISON"), 2),
    ]
    results = usa.process_batch(group)
    assert isinstance(results[0], Verdict) and results[0].action is Action.TERM
    assert isinstance(results[1], ValueError)
    answers = [item for item in usa.store.due(float("inf"), 100) if item.recipient == "MEX"]
    assert len(answers) == 1  # the rejection, sealed to MEX's account
    [spent] = [e for e in logged(capsys) if e["event"] == "deferral_budget_spent"]
    assert (spent["publisher"], spent["refused"]) == ("MEX", 1)


@pytest.mark.parametrize("size", [1, 2])
def test_a_spent_budget_still_answers_its_first_refusal_after_a_failed_commit(
    net: Network, size: int
) -> None:
    # the group's commit fails (a full disk): nothing was kept, the refusals it counted with it;
    # delivered again, the group still sends the minute's one signed rejection
    usa = net["USA"]
    usa.parking.budget = DeferralBudget(max_per_sender=0)  # spent from the start
    group = [
        Delivery(f"inbox.USA.MEX.m{i}", unknown_key_envelope(usa), i, 1, T0, final=False)
        for i in range(1, size + 1)
    ]
    real = usa.store._db
    usa.store._db = FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        usa.process_batch(group)
    usa.store._db = real
    results = usa.process_batch(group)  # redelivered
    assert [r.action for r in results if isinstance(r, Verdict)] == [Action.TERM] * size
    answers = [item for item in usa.store.due(float("inf"), 100) if item.recipient == "MEX"]
    assert len(answers) == 1


def test_an_action_after_the_commit_that_raises_fails_nothing_and_stops_none_after_it(
    net: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    # the commit happened: telling the caller otherwise would have the work taken again
    configure(json=True, level="INFO")
    store = net["USA"].store
    ran: list[str] = []

    def broken() -> None:
        raise OSError("log pipe closed")

    with store.transaction():
        store.after_commit(broken)
        store.after_commit(lambda: ran.append("second"))
    assert ran == ["second"]
    [failed] = [e for e in logged(capsys) if e["event"] == "after_commit_action_failed"]
    assert failed["error"] == "OSError"
