"""Each alert of deploy/prometheus/alerts.yml fires on the fault it names, against a real hub, and
not before it (issue 15).

The services' metrics are scraped over HTTP and the rules evaluated with the small evaluator of
tests/support/promql.py. Thresholds are the shipped ones; where a rule waits minutes (an idle
consumer, a witness's age), the collector's injectable clock is moved on instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import nats

from services.core import subjects
from services.hub import provision
from tests.faults.test_availability import node_with_clock, skewed
from tests.support.audit import audit_backlog, running_audit
from tests.support.hub import Hub, eventually
from tests.support.metrics import hub_monitor, scrape, served, take, value
from tests.support.nodes import delivered_to, running_node, send_routes_report
from tests.support.promql import Scrapes, firing


async def publish_raw(hub: Hub, sender: str, recipient: str, count: int) -> None:
    """``count`` small messages into ``recipient``'s inbox with ``sender``'s own credentials (the
    hub counts them like envelopes; no node reads them here)."""
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(sender)))
    js = nc.jetstream()
    try:
        for i in range(count):
            await js.publish(subjects.inbox_subject(recipient, sender, f"m{i}"), b"x")
    finally:
        await nc.close()


def states_firing(name: str, scrapes: Scrapes, label: str = "account") -> set[str]:
    return {labels[label] for labels in firing(name, scrapes)}


async def test_a_stopped_nodes_growing_backlog_fires_state_backlog_high(hub: Hub) -> None:
    monitor = hub_monitor(hub)
    async with served(monitor.registry, monitor.ready) as m:
        await publish_raw(hub, "MEX", "USA", 400)
        await monitor.refresh()
        assert firing("StateBacklogHigh", await take(Scrapes(), m)) == []  # under 500
        await publish_raw(hub, "MEX", "USA", 101)
        await monitor.refresh()
        scrapes = await take(Scrapes(), m)
        assert states_firing("StateBacklogHigh", scrapes) == {"USA"}  # not MEX nor COL
        assert value(await scrape(m), "cifta_hub_consumer_pending", stream="INBOX_USA") == 501


async def nak_everything(hub: Hub, state: str, rounds: int) -> None:
    """A node that takes its envelopes and never settles them: ``rounds`` fetches, all NAKed."""
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(state)))
    try:
        sub = await nc.jetstream().pull_subscribe_bind(
            durable=subjects.NODE_CONSUMER, stream=subjects.inbox_stream(state)
        )
        for _ in range(rounds):
            with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
                for msg in await sub.fetch(64, timeout=1):
                    await msg.nak()
    finally:
        await nc.close()


async def test_envelopes_taken_and_never_settled_fire_state_redeliveries_high(hub: Hub) -> None:
    monitor = hub_monitor(hub)
    async with served(monitor.registry, monitor.ready) as m:
        await publish_raw(hub, "COL", "MEX", 25)
        await nak_everything(hub, "MEX", rounds=1)  # delivered once: not yet redelivered
        await monitor.refresh()
        assert firing("StateRedeliveriesHigh", await take(Scrapes(), m)) == []
        await nak_everything(hub, "MEX", rounds=1)
        await monitor.refresh()
        assert states_firing("StateRedeliveriesHigh", await take(Scrapes(), m)) == {"MEX"}


async def test_envelopes_past_their_last_attempt_fire_at_the_hub(hub: Hub) -> None:
    hub.policy = provision.Policy(max_deliver=2)
    await hub.provision("USA")
    monitor = hub_monitor(hub)
    async with served(monitor.registry, monitor.ready) as m:
        await publish_raw(hub, "MEX", "USA", 3)
        await nak_everything(hub, "USA", rounds=1)
        await monitor.refresh()
        assert firing("StateMessagesPastLastAttempt", await take(Scrapes(), m)) == []
        # the second and last attempt; the next pull makes the hub give up on them
        await nak_everything(hub, "USA", rounds=2)
        await eventually(lambda: _given_up(hub, "USA", 3), what="the hub's advisories filed")
        await monitor.refresh()
        assert states_firing("StateMessagesPastLastAttempt", await take(Scrapes(), m)) == {"USA"}


async def _given_up(hub: Hub, state: str, count: int) -> bool:
    return (await hub.status(state)).past_last_attempt == count


async def test_a_failing_store_fires_node_store_failing_and_clears_after(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        running_node(hub, "USA", tmp_path, store_busy_timeout_s=0.2, store_probe_s=0.2) as usa,
        served(usa.metrics.registry, usa.metrics.ready) as m,
    ):
        assert firing("NodeStoreFailing", await take(Scrapes(), m)) == []
        blocker = sqlite3.connect(usa.store.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            sent = send_routes_report(mex, ["USA"]).msg_id
            await eventually(lambda: not usa.gate.healthy, what="the store gate closed")
            assert states_firing("NodeStoreFailing", await take(Scrapes(), m), "party") == {"USA"}
            status, body = await _readyz(m.url)
            assert status == 503 and "store_failing" in body
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await eventually(lambda: usa.store.has_message(sent), 20.0, what="stored after the lock")
        assert firing("NodeStoreFailing", await take(Scrapes(), m)) == []
        text = await scrape(m)
        assert value(text, "cifta_node_store_outages_total", party="USA") == 1
        assert value(text, "cifta_node_messages_stored", party="USA", direction="in") == 1


async def _readyz(url: str) -> tuple[int, str]:
    from tests.support.metrics import http

    return await http(url + "/readyz")


async def test_a_clock_a_day_ahead_fires_node_clock_offset_and_a_right_one_does_not(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        node_with_clock(hub, "USA", tmp_path, skewed(timedelta(days=1))) as usa,
        served(mex.metrics.registry, mex.metrics.ready) as mex_m,
        served(usa.metrics.registry, usa.metrics.ready) as usa_m,
    ):
        scrapes = await take(Scrapes(), mex_m, usa_m)
        assert states_firing("NodeClockOffset", scrapes, "party") == {"USA"}
        offset = value(await scrape(usa_m), "cifta_node_clock_offset_seconds", party="USA")
        assert 86_300 < offset < 86_500


async def test_an_audit_service_that_does_not_append_fires_and_clears_once_it_catches_up(
    hub: Hub, tmp_path: Path
) -> None:
    later = 0.0
    monitor = hub_monitor(hub, clock=lambda: time.time() + later)
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        running_node(hub, "USA", tmp_path) as usa,
        served(monitor.registry, monitor.ready) as m,
    ):
        sent = send_routes_report(mex, ["USA"]).msg_id
        await eventually(lambda: delivered_to(mex, sent) == {"USA"}, what="delivered")
        await monitor.refresh()
        assert firing("AuditNotAppending", await take(Scrapes(), m)) == []  # not for 5 minutes
        later = 600.0  # ten minutes on, and no audit service has read anything
        await monitor.refresh()
        fired = {labels["consumer"] for labels in firing("AuditNotAppending", await take(
            Scrapes(), m))}  # fmt: skip
        assert fired == {subjects.audit_consumer("MEX"), subjects.audit_consumer("USA")}
        async with running_audit(hub):
            await eventually(lambda: _audit_caught_up(hub), 20.0, what="the audit caught up")
        await monitor.refresh()
        assert firing("AuditNotAppending", await take(Scrapes(), m)) == []
        assert usa.store.has_message(sent)


async def _audit_caught_up(hub: Hub) -> bool:
    return await audit_backlog(hub) == (0, 0)


async def test_a_witness_that_stops_cosigning_fires_and_one_that_cosigns_does_not(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_audit(hub) as audit,
        # MEX witnesses every 0.3 s; USA only once an hour (it has stopped, in effect)
        running_node(hub, "MEX", tmp_path, witness_interval_s=0.3) as mex,
        running_node(hub, "USA", tmp_path, witness_interval_s=3600.0),
        served(audit.metrics.registry, audit.metrics.ready) as m,
    ):
        sent = send_routes_report(mex, ["USA"]).msg_id
        await eventually(lambda: delivered_to(mex, sent) == {"USA"}, what="delivered")
        await eventually(lambda: _mex_cosigned_latest(audit), 20.0,
                         what="MEX cosigned the latest checkpoint")  # fmt: skip
        assert firing("WitnessNotCosigning", await take(Scrapes(), m)) == []  # not for 30 min
        audit.metrics.clock = lambda: time.time() + 3600.0  # an hour on
        await eventually(lambda: _mex_cosigned_latest(audit), 20.0, what="MEX still cosigns")
        fired = {labels["witness"] for labels in firing("WitnessNotCosigning", await take(
            Scrapes(), m))}  # fmt: skip
        assert fired == {"USA", "COL"}  # COL runs no node at all; MEX is up to date


def _mex_cosigned_latest(audit: object) -> bool:
    from services.audit.service import AuditService

    assert isinstance(audit, AuditService)
    latest = audit.log.latest_checkpoint()
    cosigned = [size for size, witness, _ in audit.log.cosignatures() if witness == "witness/MEX"]
    return latest is not None and latest.size > 0 and max(cosigned, default=0) == latest.size


async def test_the_hub_monitor_says_when_the_hub_is_gone(hub: Hub) -> None:
    monitor = hub_monitor(hub)
    async with served(monitor.registry, monitor.ready) as m:
        await monitor.refresh()
        assert firing("HubUnreachable", await take(Scrapes(), m)) == []
        hub.kill()
        with contextlib.suppress(asyncio.TimeoutError):
            await monitor.refresh()
        assert firing("HubUnreachable", await take(Scrapes(), m)) == [
            {"__name__": "cifta_hub_reachable"}
        ]
        assert (await _readyz(m.url))[0] == 503
