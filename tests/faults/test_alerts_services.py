"""The node's and the audit service's alerts of deploy/prometheus/alerts.yml fire on the fault they
name, against a real hub and real services, and not before it (issue 15).

As in tests/faults/test_alerts.py: the services' metrics are scraped over HTTP and the rules
evaluated by tests/support/promql.py at the thresholds shipped. Where a rule waits minutes, the
clock is moved on (the node's injectable clock, or the scrape's time) instead of waiting.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats

from schemas import HandlingCode
from schemas.registry import example_body
from services.core import subjects
from services.core.connection import connect
from services.hub import provision
from services.hub.credentials import PROVISION_USER
from tests.builders import sealed
from tests.faults.test_availability import node_with_clock
from tests.support.audit import audit_backlog, running_audit
from tests.support.hub import Hub, eventually
from tests.support.metrics import hub_monitor, scrape, served, take, value
from tests.support.nodes import delivered_to, lose_first, running_node, send_routes_report
from tests.support.promql import Scrapes, firing

#: the shipped NodeOutboxBacklog threshold: "> 100"
OUTBOX_THRESHOLD = 100


def parties_firing(name: str, scrapes: Scrapes, label: str = "party") -> set[str]:
    return {labels[label] for labels in firing(name, scrapes)}


async def test_a_node_cut_off_from_the_hub_fires_node_disconnected_then_its_outbox_backlog(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        served(mex.metrics.registry, mex.metrics.ready) as m,
    ):
        connected = await take(Scrapes(), m)
        assert firing("NodeDisconnected", connected) == []
        assert firing("NodeOutboxBacklog", connected) == []
        hub.kill()  # the hub refuses every connection from now on
        await eventually(lambda: not mex.connected.is_set(), what="MEX disconnected")
        for _ in range(OUTBOX_THRESHOLD):  # the officers go on working: copies pile up
            send_routes_report(mex, ["USA"])
        cut_off = await take(Scrapes(), m)
        assert parties_firing("NodeDisconnected", cut_off) == {"MEX"}
        assert firing("NodeOutboxBacklog", cut_off) == []  # at the threshold, not over it
        send_routes_report(mex, ["USA"])
        over = await take(Scrapes(), m)
        assert parties_firing("NodeOutboxBacklog", over) == {"MEX"}
        assert value(await scrape(m), "cifta_node_outbox_depth", party="MEX") == 101
        hub.restart_on_same_port()  # back: the outbox drains and both clear

        async def drained() -> bool:
            return value(await scrape(m), "cifta_node_outbox_depth", party="MEX") == 0

        await eventually(drained, 30.0, what="MEX's outbox drained")
        cleared = await take(Scrapes(), m)
        assert firing("NodeDisconnected", cleared) == firing("NodeOutboxBacklog", cleared) == []


async def test_an_envelope_failing_on_every_attempt_fires_node_gave_up_on_envelopes(
    hub: Hub, tmp_path: Path
) -> None:
    hub.policy = provision.Policy(max_deliver=2)  # the node gives up at the second attempt
    await hub.provision("USA")
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        running_node(hub, "USA", tmp_path) as usa,
        served(usa.metrics.registry, usa.metrics.ready) as m,
    ):
        scrapes = await take(Scrapes(), m)
        original = usa.core.casework.received

        def failing(header, body):  # type: ignore[no-untyped-def]
            if header.case_id == "POISON":
                raise ValueError("a bug met by one message")
            return original(header, body)

        usa.core.casework.received = failing  # type: ignore[method-assign]
        valid = send_routes_report(mex, ["USA"]).msg_id
        await eventually(lambda: usa.store.has_message(valid), what="the valid one stored")
        assert firing("NodeGaveUpOnEnvelopes", await take(scrapes, m)) == []
        poison = send_routes_report(mex, ["USA"], case_id="POISON").msg_id
        await eventually(lambda: len(usa.store.rejections()) == 1, what="the poison given up on")
        assert usa.store.rejections()[0]["msg_id"] == poison
        assert parties_firing("NodeGaveUpOnEnvelopes", await take(scrapes, m)) == {"USA"}


async def test_a_message_its_recipient_did_not_answer_fires_node_messages_sent_again(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "MEX", tmp_path, answer_wait_s=10.0) as mex,
        running_node(hub, "USA", tmp_path) as usa,
        served(mex.metrics.registry, mex.metrics.ready) as m,
    ):
        scrapes = await take(Scrapes(), m)
        answered = send_routes_report(mex, ["USA"]).msg_id
        await eventually(lambda: delivered_to(mex, answered) == {"USA"}, what="answered")
        assert firing("NodeMessagesSentAgain", await take(scrapes, m)) == []
        lost = lose_first(mex, lambda _: True)  # the hub acknowledged it, then lost it
        again = send_routes_report(mex, ["USA"]).msg_id
        await eventually(lambda: usa.store.has_message(again), 60, what="sent again, stored")
        assert lost == [again]
        assert parties_firing("NodeMessagesSentAgain", await take(scrapes, m)) == {"MEX"}
        assert value(await scrape(m), "cifta_node_resent_total", party="MEX") >= 1


async def test_a_tracing_request_past_its_due_date_fires_tracing_requests_overdue(
    hub: Hub, tmp_path: Path
) -> None:
    ahead = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + ahead[0]

    async with (
        running_node(hub, "USA", tmp_path) as usa,
        node_with_clock(hub, "MEX", tmp_path, clock) as mex,
        served(mex.metrics.registry, mex.metrics.ready) as m,
    ):
        # Art. XIII.3: the requester watches the due date of its tracing request
        request = example_body("tracing.request").model_copy(
            update={"due_at": clock() + timedelta(days=7)}
        )
        filed = mex.core.compose(request, ["USA"], handling=HandlingCode.H1).msg_id
        mex.outbox.wake()
        await eventually(lambda: usa.store.has_message(filed), what="the request at USA")
        assert firing("TracingRequestsOverdue", await take(Scrapes(), m)) == []
        assert value(await scrape(m), "cifta_node_deadlines", state="due") == 1
        ahead[0] = timedelta(days=8)  # a day past its due date, unanswered
        assert parties_firing("TracingRequestsOverdue", await take(Scrapes(), m)) == {"MEX"}
        assert value(await scrape(m), "cifta_node_deadlines", state="due") == 0


async def publish_sealed(hub: Hub, sender: str, recipient: str) -> None:
    """One real envelope from ``sender`` into ``recipient``'s inbox (sourced into the AUDIT
    stream, so the audit service has a record to take)."""
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(sender)))
    try:
        envelope = sealed(sender=hub.keys[sender], to=[hub.keys[recipient]], now=datetime.now(UTC))
        await nc.jetstream().publish(subjects.inbox_subject(recipient, sender, "m1"), envelope)
    finally:
        await nc.close()


def lock_audit_log(hub: Hub) -> sqlite3.Connection:
    """Another writer holds the audit log's file: every append fails until it lets go."""
    lock = sqlite3.connect(hub.home.audit_log_path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    return lock


async def test_an_audit_service_whose_log_takes_no_appends_fires_audit_log_stalled(
    hub: Hub,
) -> None:
    async with (
        running_audit(hub) as audit,
        served(audit.metrics.registry, audit.metrics.ready) as m,
    ):
        audit.log.db.execute("PRAGMA busy_timeout = 20")  # fail fast while the file is locked
        later = time.time() + 600  # the rule looks five minutes back: evaluated ten minutes on
        await audit.metrics.refresh_backlog()
        assert firing("AuditLogStalled", await take(Scrapes(), m, at=later)) == []  # nothing waits
        lock = lock_audit_log(hub)
        try:
            await publish_sealed(hub, "MEX", "USA")

            async def waiting() -> bool:
                await audit.metrics.refresh_backlog()
                return audit.metrics.backlog.get("MEX", 0) > 0

            await eventually(waiting, what="MEX's record waiting for the audit service")
            stalled = await take(Scrapes(), m, at=later)
            assert audit.log.size == 0
            assert parties_firing("AuditLogStalled", stalled) == {"MEX"}
            assert firing("AuditLogStalled", await take(Scrapes(), m)) == []  # not yet 5 minutes
        finally:
            lock.execute("ROLLBACK")
            lock.close()

        async def caught_up() -> bool:
            return await audit_backlog(hub) == (0, 0) and audit.log.size > 0

        await eventually(caught_up, 20.0, what="the audit service caught up")
        await audit.metrics.refresh_backlog()
        assert firing("AuditLogStalled", await take(Scrapes(), m, at=later)) == []


async def test_a_record_the_audit_service_gives_up_on_fires_audit_records_quarantined(
    hub: Hub,
) -> None:
    hub.policy = provision.Policy(max_deliver=2)
    await hub.provision()  # the audit consumers give up after two deliveries
    monitor = hub_monitor(hub)
    async with running_audit(hub) as audit, served(monitor.registry, monitor.ready) as m:
        audit.log.db.execute("PRAGMA busy_timeout = 20")
        await monitor.refresh()
        assert firing("AuditRecordsQuarantined", await take(Scrapes(), m)) == []
        lock = lock_audit_log(hub)
        try:
            await publish_sealed(hub, "MEX", "USA")

            async def quarantined() -> bool:
                await monitor.refresh()
                scraped = await scrape(m)
                return value(scraped, "cifta_hub_stream_messages", stream="AUDIT_QUARANTINE") == 1

            await eventually(quarantined, what="the record in the audit quarantine")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        fired = firing("AuditRecordsQuarantined", await take(Scrapes(), m))
        assert [labels["stream"] for labels in fired] == [subjects.AUDIT_QUARANTINE_STREAM]
        assert audit.log.size == 0  # given up on: in the quarantine, not in the log


async def test_a_quarantine_stream_that_takes_nothing_fires_node_quarantine_copies_held(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "USA", tmp_path) as usa,
        served(usa.metrics.registry, usa.metrics.ready) as m,
    ):
        async with connect(hub.url, hub.home.user_seed("USA", PROVISION_USER)) as nc:
            await nc.jetstream().delete_stream(subjects.quarantine_stream("USA"))  # the fault
        mex = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
        try:
            await mex.jetstream().publish(subjects.inbox_subject("USA", "MEX", "g1"), b"{garbage")
        finally:
            await mex.close()
        await eventually(lambda: len(usa.store.rejections()) == 1, what="the garbage refused")
        assert value(await scrape(m), "cifta_node_quarantine_held", party="USA") == 1
        assert firing("NodeQuarantineCopiesHeld", await take(Scrapes(), m)) == []  # just now
        with usa.store.tx():  # a quarter of an hour on: the copy is still not filed
            usa.store.db.execute("UPDATE quarantine_outbox SET held_at = held_at - 901")
        held = await take(Scrapes(), m)
        assert parties_firing("NodeQuarantineCopiesHeld", held) == {"USA"}
        await hub.provision("USA")  # the stream back: the copy is filed on its next try

        async def filed() -> bool:
            return value(await scrape(m), "cifta_node_quarantine_held", party="USA") == 0

        await eventually(filed, 60.0, what="the held copy filed")
        assert firing("NodeQuarantineCopiesHeld", await take(Scrapes(), m)) == []
        assert usa.store.rejections()[0]["quarantined"] == 1
