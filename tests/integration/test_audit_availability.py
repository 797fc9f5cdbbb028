"""The audit service never blocks on one party (design section 5), against a real nats-server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import api
from nats.js.errors import NotFoundError

from schemas import ReasonCode
from schemas.audit import AuditEvent, EventType, UnreadableEnvelope
from services.audit.parking import Budget
from services.audit.recorder import Recorder
from services.cli.main import main
from services.core import connection, subjects
from services.hub import provision
from tests.builders import sealed
from tests.support.audit import audit_backlog, audit_process, running_audit
from tests.support.flood import Flood, build_flood, publish_flood
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report

FLOOD = Flood(events=1000, garbage_events=100, garbage_envelopes=100, unknown_key_envelopes=50)
BUDGET = Budget(max_parked=256, max_age_s=3.0, first_retry_s=0.5, unmatched_per_minute=50)


async def connect_as(hub: Hub, state: str) -> Client:
    return await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(state)))


def read(hub: Hub, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows from the audit service's SQLite, read from another connection (WAL: a reader never
    blocks the service); none before the service has created its tables."""
    path = hub.home.audit_log_path
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # no such table yet
        return []
    finally:
        db.close()


@pytest.mark.exclusive
async def test_a_flood_from_one_state_never_delays_another_states_leaves(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MEX floods the audit log with 1,000 signed events naming envelopes that do not exist, plus
    garbage; a USA -> MEX report's leaves appear within 5 s all the same, MEX's parked records
    stay within its budget, and each bogus record ends as an unmatched leaf or an alarm count."""
    flood = build_flood(hub.keys["MEX"], hub.keys["COL"], FLOOD)  # signed and sealed beforehand
    budget = ["--park-max", str(BUDGET.max_parked), "--park-max-age", str(BUDGET.max_age_s),
              "--unmatched-per-minute", str(BUDGET.unmatched_per_minute)]  # fmt: skip
    most_parked = 0

    def parked() -> int:
        nonlocal most_parked
        [(now,)] = read(hub, "SELECT COUNT(*) FROM parked WHERE party = 'MEX'") or [(0,)]
        most_parked = max(most_parked, int(now))
        return int(now)

    with audit_process(hub, *budget):
        async with (
            running_node(hub, "MEX", tmp_path) as mex,
            running_node(hub, "USA", tmp_path) as usa,
        ):
            attacker = await connect_as(hub, "MEX")
            flooding = asyncio.create_task(publish_flood(attacker, flood))
            await eventually(lambda: parked() > 0, what="the flood reaching the audit service")
            header = send_routes_report(usa, ["MEX"])
            started = time.monotonic()

            def exchange_recorded() -> bool:
                parked()
                leaves = set(read(hub, "SELECT event, actor FROM leaves WHERE msg_id = ?",
                                  header.msg_id))  # fmt: skip
                return {("stored", "MEX"), ("delivered", "MEX")} <= leaves

            await eventually(exchange_recorded, timeout=5.0, what="the USA -> MEX report's leaves")
            recorded_in = time.monotonic() - started
            await flooding
            await attacker.close()
            assert mex.store.has_message(header.msg_id)

            async def drained() -> bool:
                return parked() == 0 and await audit_backlog(hub) == (0, 0)

            await eventually(drained, timeout=30, what="the flood recorded and its parking empty")
    assert recorded_in < 5.0 and 0 < most_parked <= BUDGET.max_parked
    counts = dict(read(hub, "SELECT what, SUM(count) FROM party_alarms WHERE party = 'MEX'"
                            " GROUP BY what"))  # fmt: skip
    assert counts == {
        "unmatched_event": FLOOD.events,  # every bogus event given up, and counted
        "event_malformed": FLOOD.garbage_events,
        "envelope_malformed": FLOOD.garbage_envelopes,
        "unknown_sender_key": FLOOD.unknown_key_envelopes,
    }
    unmatched = [
        AuditEvent.model_validate_json(leaf)
        for (leaf,) in read(hub, "SELECT leaf FROM leaves WHERE event = 'unmatched'")
    ]
    # within the rate (a burst of 50, then 50 a minute), filed under MEX alone
    assert 0 < len(unmatched) <= BUDGET.unmatched_per_minute + 10
    assert all(e.actor == "MEX" and e.claimed is EventType.OPENED for e in unmatched)
    assert read(hub, "SELECT sender, recipients FROM leaves WHERE event = 'unmatched'"
                     " GROUP BY sender, recipients") == [("MEX", "MEX")]  # fmt: skip
    assert not read(hub, "SELECT idx FROM leaves WHERE recipients LIKE '%COL%'")
    capsys.readouterr()
    assert main(["audit", "--hub-home", str(hub.home.root), "alarms", "--party", "MEX"]) == 0
    listed = capsys.readouterr().out
    assert "RECORD ALARM MEX" in listed and "unmatched_event" in listed


async def test_a_broken_envelope_leaves_a_leaf_naming_its_hash_receiver_and_reason(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = b'{"v": 1, "protected": "not base64url!"}'
    async with running_audit(hub) as audit, running_node(hub, "USA", tmp_path):
        nc = await connect_as(hub, "MEX")
        await nc.jetstream().publish(subjects.inbox_subject("USA", "MEX", "broken"), broken)
        await nc.close()

        def unreadable() -> list[UnreadableEnvelope]:
            return [e for _, e in audit.log.events("USA") if isinstance(e, UnreadableEnvelope)]

        await eventually(lambda: len(unreadable()) == 1, what="the refusal's leaf")
        [leaf] = unreadable()
    assert leaf.envelope_sha256 == hashlib.sha256(broken).hexdigest()
    assert (leaf.actor, leaf.publisher, leaf.reason) == ("USA", "MEX", ReasonCode.MALFORMED)
    capsys.readouterr()
    home = str(hub.home.root)
    assert main(["audit", "--hub-home", home, "report", "--state", "USA", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rejections"] == {"malformed": 1}
    assert main(["audit", "--hub-home", home, "verify"]) == 0  # an unreadable leaf verifies


async def test_a_record_the_service_cannot_store_is_quarantined_at_its_last_delivery(
    hub: Hub,
) -> None:
    hub.policy = provision.Policy(max_deliver=2)
    await hub.provision()  # the audit consumer now gives up after two deliveries
    async with running_audit(hub) as audit:
        assert audit.max_deliver == 2
        audit.log.db.execute("PRAGMA busy_timeout = 20")  # fail fast while the file is locked
        lock = sqlite3.connect(hub.home.audit_log_path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the file: every write fails
        try:
            nc = await connect_as(hub, "MEX")
            envelope = sealed(sender=hub.keys["MEX"], to=[hub.keys["USA"]], now=datetime.now(UTC))
            await nc.jetstream().publish(subjects.inbox_subject("USA", "MEX", "m1"), envelope)
            await nc.close()
            async with connection.connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as q:
                js = q.jetstream()

                async def quarantined() -> bool:
                    info = await js.stream_info(subjects.AUDIT_QUARANTINE_STREAM)
                    return info.state.messages == 1

                await eventually(quarantined, timeout=20, what="the quarantine copy")
                copy = await js.get_last_msg(
                    subjects.AUDIT_QUARANTINE_STREAM, subjects.AUDIT_QUARANTINE_FILTER
                )
            assert copy.data == envelope
            assert copy.headers is not None
            assert copy.headers["Cifta-Subject"] == subjects.inbox_subject("USA", "MEX", "m1")
            assert copy.headers["Cifta-Reason"] == "processing_failed"

            async def settled() -> bool:  # terminated, not left in flight
                return await audit_backlog(hub) == (0, 0)

            await eventually(settled, what="nothing left unacknowledged")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert audit.log.size == 0  # given up: in the quarantine, not in the log


async def test_a_states_backlog_waits_behind_itself_not_in_front_of_another_states_record(
    hub: Hub,
) -> None:
    """3,000 of MEX's records are in the AUDIT stream before one of USA's: USA's is recorded
    while most of MEX's still wait (one consumer per state), not after all of them."""
    flood = build_flood(hub.keys["MEX"], hub.keys["COL"], Flood(3000, 0, 0, 0))
    attacker, usa = await connect_as(hub, "MEX"), await connect_as(hub, "USA")
    await publish_flood(attacker, flood)
    envelope = sealed(sender=hub.keys["USA"], to=[hub.keys["COL"]], now=datetime.now(UTC))
    await usa.jetstream().publish(subjects.inbox_subject("COL", "USA", "after"), envelope)
    await attacker.close()
    await usa.close()
    async with connection.connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
        js = nc.jetstream()

        async def all_in_the_stream() -> bool:
            return (await js.stream_info(subjects.AUDIT_STREAM)).state.messages == len(flood) + 1

        await eventually(all_in_the_stream, what="the flood, then USA's envelope, in the stream")
        async with running_audit(hub) as audit:
            sha = hashlib.sha256(envelope).hexdigest()
            await eventually(lambda: audit.log.stored_leaf(sha) is not None, what="USA's leaf")
            mex = await js.consumer_info(subjects.AUDIT_STREAM, subjects.audit_consumer("MEX"))
    assert (mex.num_pending or 0) + (mex.num_ack_pending or 0) > len(flood) // 2


async def test_provisioning_takes_over_from_a_single_audit_consumer_where_it_stood(
    hub: Hub,
) -> None:
    """A hub provisioned when the audit service read everything through one consumer: the
    consumers per state start after what that one had acknowledged, and it is removed."""
    async with connection.connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
        js = nc.jetstream()
        for state in hub.home.registry().codes():
            await js.delete_consumer(subjects.AUDIT_STREAM, subjects.audit_consumer(state))
        await js.add_consumer(
            subjects.AUDIT_STREAM,
            config=api.ConsumerConfig(
                durable_name=subjects.AUDIT_CONSUMER, ack_policy=api.AckPolicy.EXPLICIT
            ),
        )
        mex = await connect_as(hub, "MEX")
        for i in range(3):
            await mex.jetstream().publish(subjects.audit_events_subject("MEX", f"old{i}"), b"x")
        await mex.close()
        former = await js.pull_subscribe_bind(subjects.AUDIT_CONSUMER, subjects.AUDIT_STREAM)
        for msg in await former.fetch(2, timeout=5):
            await msg.ack_sync()
        await former.unsubscribe()
    await hub.provision()
    async with connection.connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
        js = nc.jetstream()
        info = await js.consumer_info(subjects.AUDIT_STREAM, subjects.audit_consumer("MEX"))
        assert info.config.opt_start_seq == 3 and info.num_pending == 1  # the third, not again
        with pytest.raises(NotFoundError):  # the single consumer is gone
            await js.consumer_info(subjects.AUDIT_STREAM, subjects.AUDIT_CONSUMER)


async def test_a_record_failing_in_its_group_is_its_own_loss_and_no_one_elses(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight of MEX's envelopes wait in the AUDIT stream and the service takes them in one group,
    without a savepoint each. The fourth fails once (its processing raises): SQLite undoes the
    group, whose records are taken again each in its own savepoint, and all eight are recorded
    once and counted once; those after it are taken once."""
    calls: Counter[str] = Counter()
    real = Recorder.resolve

    def resolve(self: Recorder, subject: str, data: bytes, stored_at: datetime) -> Any:
        msg_id = subject.rsplit(".", 1)[-1]
        calls[msg_id] += 1
        if msg_id == "m3" and calls[msg_id] == 1:
            real(self, subject, data, stored_at)  # its leaf appended, then the failure
            raise OSError("the disk, once")
        return real(self, subject, data, stored_at)

    monkeypatch.setattr(Recorder, "resolve", resolve)
    nc = await connect_as(hub, "MEX")
    for i in range(8):
        envelope = sealed(sender=hub.keys["MEX"], to=[hub.keys["USA"]], now=datetime.now(UTC))
        await nc.jetstream().publish(subjects.inbox_subject("USA", "MEX", f"m{i}"), envelope)
    await nc.close()

    async def all_waiting() -> bool:
        return (await audit_backlog(hub))[0] == 8

    await eventually(all_waiting, what="the eight records in the AUDIT stream")
    # one fetch brings all eight; the group commits after 1 s, so it holds all of them
    async with running_audit(hub, group_linger_s=1.0) as audit:

        async def settled() -> bool:
            return audit.log.size == 8 and await audit_backlog(hub) == (0, 0)

        await eventually(settled, what="eight leaves, everything acknowledged")
        tally = dict(audit.recorder.tally)
    assert calls == {**{f"m{i}": 2 for i in range(4)}, **{f"m{i}": 1 for i in range(4, 8)}}
    assert tally == {"recorded": 8}
    leaves = read(hub, "SELECT identity FROM leaves")
    assert len({row[0] for row in leaves}) == len(leaves) == 8
