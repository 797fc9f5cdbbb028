"""Reception awareness (docs/envelope.md section 14): a message its recipient has not answered
in time is sent again, the same bytes under a Nats-Msg-Id of its own, at doubling intervals and a
bounded number of times; a recipient that holds the message already acknowledges the copy and
sends its answer again. The broker's part is in tests/integration/test_reception_awareness.py."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.node.core import Action, Delivery, NodeCore
from services.node.outbox import OutboxPublisher
from services.node.store import Store
from services.node.store.migrations import MIGRATIONS, migrate
from services.node.store.outbox import MAX_ANSWERS_AGAIN
from tests.builders import party, sealed
from tests.support.casework import T0, Network

WAIT_S = 60.0


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA"])


class Ack:
    def __init__(self, seq: int) -> None:
        self.stream, self.seq, self.duplicate = "INBOX", seq, False


def publisher(core: NodeCore, max_resends: int = 2) -> OutboxPublisher:
    async def publish(*_: Any) -> Ack:  # never called: these tests drive the rows themselves
        raise AssertionError("no publish in a unit test")

    return OutboxPublisher(
        core.store, core.party, publish, clock=lambda: T0, timeout_s=1, concurrency=8,
        retry_initial_s=0.1, retry_max_s=1, poll_s=0.1, dedup_secret=b"s" * 32,
        answer_wait_s=WAIT_S, max_resends=max_resends,
    )  # fmt: skip


def send(core: NodeCore) -> str:
    h = core.compose(example_body("info.trafficking_routes"), ["USA"], handling=HandlingCode.H1)
    return h.msg_id


def sent_at_once(out: OutboxPublisher, seq: int = 1) -> list[tuple[str, int]]:
    """Publish what is due (as the hub's PubAck would confirm): (msg_id, resend) of each."""
    items = out.due(time.time(), 100)
    out.record([(item, Ack(seq)) for item in items], [])
    return [(item.msg_id, item.resends) for item in items]


def test_a_message_not_answered_in_time_is_queued_again_then_at_twice_the_interval(
    net: Network,
) -> None:
    out = publisher(net["MEX"])
    msg_id = send(net["MEX"])
    start = time.time()
    assert sent_at_once(out) == [(msg_id, 0)]
    assert out.due(start + WAIT_S - 5, 100) == []  # not yet
    again = out.due(start + WAIT_S + 5, 100)
    assert [(i.msg_id, i.resends, i.envelope) for i in again] == [
        (msg_id, 1, net["MEX"].store.message(msg_id).envelope)  # type: ignore[union-attr]
    ]
    out.record([(again[0], Ack(2))], [])
    second = time.time()
    assert out.due(second + WAIT_S + 5, 100) == []  # the second wait is twice the first
    assert [i.resends for i in out.due(second + 2 * WAIT_S + 5, 100)] == [2]


def test_each_sending_has_its_own_msg_id_header_and_each_retry_of_one_the_same(
    net: Network,
) -> None:
    out = publisher(net["MEX"])
    ids = [out.dedup_id("m1", "USA", n) for n in (0, 0, 1, 1, 2)]
    assert ids[0] == ids[1] and ids[2] == ids[3] and len(set(ids)) == 3
    assert out.dedup_id("m1", "USA") == ids[0]  # the first sending keeps the id it always had


def test_an_answer_ends_the_wait_and_leaves_nothing_due(net: Network) -> None:
    out = publisher(net["MEX"])
    msg_id = send(net["MEX"])
    sent_at_once(out)
    assert net["MEX"].store.next_answer_due_at() is not None
    usa = net["USA"]
    envelope = net["MEX"].store.message(msg_id).envelope  # type: ignore[union-attr]
    assert usa.process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, 1, 1, T0)).action is Action.ACK
    net.deliver()  # USA's receipt reaches MEX
    assert net["MEX"].store.recipient_statuses(msg_id)[0].state == "delivered"
    assert out.due(time.time() + 100 * WAIT_S, 100) == []
    # nothing is left to wake the outbox for
    assert net["MEX"].store.next_due_at() is net["MEX"].store.next_answer_due_at() is None


def test_a_receipt_or_rejection_is_never_awaited_an_answer(net: Network) -> None:
    msg_id = send(net["MEX"])
    envelope = net["MEX"].store.message(msg_id).envelope  # type: ignore[union-attr]
    usa = net["USA"]
    usa.process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, 1, 1, T0))
    out = publisher(usa)
    [(receipt, _)] = sent_at_once(out)
    assert usa.store.message(receipt).kind == "protocol.receipt"  # type: ignore[union-attr]
    assert out.due(time.time() + 100 * WAIT_S, 100) == []
    assert usa.store.next_answer_due_at() is None


def test_after_its_last_resend_the_wait_ends_in_an_alert(net: Network) -> None:
    out = publisher(net["MEX"], max_resends=1)
    msg_id = send(net["MEX"])
    sent_at_once(out)
    again = out.due(time.time() + WAIT_S + 5, 100)
    assert [i.resends for i in again] == [1]
    out.record([(again[0], Ack(2))], [])
    assert out.due(time.time() + 3 * WAIT_S, 100) == []  # given up: not queued again
    [(_, source, detail)] = net["MEX"].store.alerts()
    assert source == "delivery" and msg_id in detail and "USA has not answered" in detail
    assert "sent 2 times" in detail
    assert out.due(time.time() + 100 * WAIT_S, 100) == []  # and no second alert
    assert len(net["MEX"].store.alerts()) == 1 and net["MEX"].store.next_answer_due_at() is None


def stored_copy(net: Network) -> tuple[str, bytes]:
    """MEX's message, stored at USA from stream sequence 1, and USA's receipt sent."""
    msg_id = send(net["MEX"])
    envelope = net["MEX"].store.message(msg_id).envelope  # type: ignore[union-attr]
    net["USA"].process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, 1, 1, T0))
    sent_at_once(publisher(net["USA"]))
    return msg_id, envelope


def test_a_copy_sent_again_is_acknowledged_and_answered_again(net: Network) -> None:
    msg_id, envelope = stored_copy(net)
    usa = net["USA"]
    verdict = usa.process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, 7, 1, T0))
    assert verdict.action is Action.ACK and verdict.duplicate and verdict.msg_id == msg_id
    [again] = usa.store.due(time.time(), 100)  # the receipt, queued again as its first resend
    assert usa.store.message(again.msg_id).kind == "protocol.receipt"  # type: ignore[union-attr]
    assert again.resends == 1 and len(usa.store.messages(direction="in")) == 1


def test_a_redelivery_of_the_stored_copy_is_not_answered_again(net: Network) -> None:
    msg_id, envelope = stored_copy(net)
    usa = net["USA"]
    verdict = usa.process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, 1, 2, T0))
    assert verdict.action is Action.ACK and verdict.duplicate
    assert usa.store.due(time.time(), 100) == []


def test_rows_sent_before_the_migration_await_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, {v: script for v, script in MIGRATIONS.items() if v < 15})
    db.execute(
        "INSERT INTO messages (msg_id, direction, kind, sender, recipients, handling,"
        " confidential, created_at, stored_at, envelope, envelope_sha256)"
        " VALUES ('m1', 'out', 'info.trafficking_routes', 'MEX', '[\"USA\"]', 'H1', 0, 't',"
        " 't', x'00', 'h')"
    )
    db.execute(
        "INSERT INTO outbox (msg_id, recipient, state, next_attempt_at, sent_at, stream_seq)"
        " VALUES ('m1', 'USA', 'sent', 0, 't', 1)"
    )
    db.close()
    store = Store(path)  # migrates to the current version
    rows = store.db.execute("SELECT resends, answer_due_at FROM outbox").fetchall()
    assert [tuple(r) for r in rows] == [(0, None)]
    assert store.unanswered(time.time() + 1e9, 100) == []
    assert store.next_answer_due_at() is None
    store.close()


def test_a_rejection_is_never_awaited_an_answer_either(net: Network) -> None:
    refused = expired_from_mex(net)
    usa = net["USA"]
    assert usa.process(Delivery("inbox.USA.MEX.x", refused, 1, 1, T0)).action is Action.TERM
    out = publisher(usa)
    [(rejection, _)] = sent_at_once(out)
    assert usa.store.message(rejection).kind == "protocol.rejection"  # type: ignore[union-attr]
    assert usa.store.next_answer_due_at() is None


def test_an_answer_leaves_no_row_awaiting(net: Network) -> None:
    out = publisher(net["MEX"])
    msg_id = send(net["MEX"])
    sent_at_once(out)
    awaiting = "SELECT COUNT(*) FROM outbox WHERE answer_due_at IS NOT NULL"
    assert net["MEX"].store.db.execute(awaiting).fetchone()[0] == 1
    envelope = net["MEX"].store.message(msg_id).envelope  # type: ignore[union-attr]
    net["USA"].process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, 1, 1, T0))
    net.deliver()
    assert net["MEX"].store.db.execute(awaiting).fetchone()[0] == 0  # what the gauge counts


def test_an_answer_arriving_while_a_sending_again_is_queued_cancels_it(net: Network) -> None:
    out = publisher(net["MEX"])
    msg_id = send(net["MEX"])
    sent_at_once(out)
    later = time.time() + WAIT_S + 5
    assert [i.resends for i in out.due(later, 100)] == [1]  # queued again, not yet published
    envelope = net["MEX"].store.message(msg_id).envelope  # type: ignore[union-attr]
    net["USA"].process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, 1, 1, T0))
    net.deliver(hold=lambda sender, _r, _k: sender == "MEX")  # only the first's receipt, late
    assert net["MEX"].store.recipient_statuses(msg_id)[0].state == "delivered"
    assert out.due(later, 100) == []
    row = "SELECT state, resends FROM outbox WHERE msg_id = ?"
    assert tuple(net["MEX"].store.db.execute(row, (msg_id,)).fetchone()) == ("sent", 0)


def expired_from_mex(net: Network) -> bytes:
    """An envelope MEX sealed that expired before USA opens it: refused, and answered."""
    return sealed(
        sender=net["MEX"].keys, to=[net["USA"].keys], now=T0 - timedelta(hours=2),
        handling=HandlingCode.H1, expires_at=T0 - timedelta(hours=1),
    )  # fmt: skip


def test_a_copy_of_a_refused_envelope_is_answered_again_not_decided_again(net: Network) -> None:
    refused = expired_from_mex(net)
    usa = net["USA"]
    assert usa.process(Delivery("inbox.USA.MEX.x", refused, 1, 1, T0)).action is Action.TERM
    sent_at_once(publisher(usa))
    copy = usa.process(Delivery("inbox.USA.MEX.x", refused, 9, 1, T0))
    assert copy.action is Action.ACK and copy.duplicate
    assert len(usa.store.rejections()) == 1
    [again] = usa.store.due(time.time(), 100)
    assert usa.store.message(again.msg_id).kind == "protocol.rejection"  # type: ignore[union-attr]
    assert again.resends == 1


def test_a_copy_of_a_parked_envelope_waits_with_it_and_takes_no_budget(net: Network) -> None:
    col = party("COL")  # not in USA's copy of the directory yet: its envelopes are parked
    envelope = sealed(sender=col, to=[net["USA"].keys], now=T0, handling=HandlingCode.H1)
    usa = net["USA"]
    first = usa.process(Delivery("inbox.USA.COL.x", envelope, 1, 1, T0, final=False))
    assert first.action is Action.ACK and first.deferred
    copy = usa.process(Delivery("inbox.USA.COL.x", envelope, 5, 1, T0, final=False))
    assert copy.action is Action.ACK and copy.deferred and copy.duplicate
    assert usa.store.parked.usage("COL") == (1, len(envelope))
    assert usa.store.rejections() == []


def test_an_answer_is_sent_again_a_bounded_number_of_times_however_many_copies_come(
    net: Network,
) -> None:
    msg_id, envelope = stored_copy(net)
    usa = net["USA"]
    out = publisher(usa)
    for seq in range(2, 2 + 3 * MAX_ANSWERS_AGAIN):  # a flood of copies, each answered if it may
        usa.process(Delivery(f"inbox.USA.MEX.{msg_id}", envelope, seq, 1, T0))
        sent_at_once(out, seq)
    [row] = usa.store.db.execute("SELECT resends FROM outbox WHERE recipient = 'MEX'").fetchall()
    assert row[0] == MAX_ANSWERS_AGAIN


async def test_an_answer_not_yet_due_is_waited_for_not_polled(net: Network) -> None:
    asked: list[float] = []

    async def cut() -> bool:
        asked.append(time.time())
        return False

    out = publisher(net["MEX"])
    out._answers_can_come, out._may_send_again = cut, False
    send(net["MEX"])
    start = time.time()
    sent_at_once(out)
    # due in WAIT_S: the drain sleeps until then (it must not spin on a time already past)
    next_at = out.next_due_at()
    assert next_at is not None and next_at >= start + WAIT_S - 1
    await out.prepare()
    assert asked == []  # nothing overdue: nothing to ask
