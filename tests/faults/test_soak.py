"""Floods from one state against a node and the audit service at once, with valid traffic
between the others (design section 5): no valid message waits more than 5 s, its audit leaves
appear within 5 s, and nothing is lost or duplicated. Bounded in count and time."""

from __future__ import annotations

import time
from pathlib import Path

import nats
import pytest

from services.audit.log import AuditLog
from services.node.app import NodeRuntime
from tests.support.audit import audit_process, audit_reading
from tests.support.flood import Flood, build_flood, publish_flood
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report

DEADLINE_S = 5.0
pytestmark = pytest.mark.exclusive  # the 5 s bound is the node's, not a busy machine's


def leaves_of(hub: Hub, msg_id: str) -> int:
    log = AuditLog(hub.home.audit_log_path)
    try:
        return len(log.leaves_of(msg_id))
    finally:
        log.close()


async def flood(hub: Hub, size: Flood) -> None:
    """MEX, with its own credentials: bogus events and garbage at the audit log, unverifiable
    envelopes and garbage into USA's inbox."""
    records = build_flood(hub.keys["MEX"], hub.keys["USA"], size)
    raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
    try:
        await publish_flood(raw, records)
    finally:
        await raw.close()


async def exchange_within_deadline(hub: Hub, col: NodeRuntime, usa: NodeRuntime) -> float:
    """COL -> USA: stored at USA and its stored and delivered leaves in the log, each in time."""
    header = send_routes_report(col, ["USA"])
    started = time.monotonic()
    await eventually(lambda: usa.store.has_message(header.msg_id), DEADLINE_S,
                     what="a valid message during the flood")  # fmt: skip
    waited = time.monotonic() - started
    await eventually(lambda: leaves_of(hub, header.msg_id) >= 2, DEADLINE_S,
                     what="its audit leaves (stored, delivered)")  # fmt: skip
    return waited


async def test_a_valid_exchange_is_stored_and_audited_within_5s_of_a_flood(
    hub: Hub, tmp_path: Path
) -> None:
    """Done-when of the availability issue: 1,000 unverifiable envelopes from one state plus
    1,000 bogus audit events; a third state's message is stored, and its leaves appear, in 5 s."""
    size = Flood(events=1000, garbage_events=0, garbage_envelopes=0, unknown_key_envelopes=1000)
    with audit_process(hub):  # its own process and core, as deployed
        async with (
            running_node(hub, "COL", tmp_path) as col,
            running_node(hub, "USA", tmp_path) as usa,
        ):
            # the 5 s are the flood's delay, not the audit process's start
            await eventually(lambda: audit_reading(hub), what="the audit service reading")
            await flood(hub, size)  # published as fast as it goes: all of it is ahead
            waited = await exchange_within_deadline(hub, col, usa)
    print(f"stored {waited:.2f} s after a flood of {size.records} records")


async def test_floods_and_valid_traffic_alternate_without_loss_or_delay(
    hub: Hub, tmp_path: Path
) -> None:
    rounds, valid = 3, 10
    size = Flood(events=300, garbage_events=50, garbage_envelopes=50, unknown_key_envelopes=300)
    waits: list[float] = []
    sent: list[str] = []
    with audit_process(hub):
        async with (
            running_node(hub, "COL", tmp_path) as col,
            running_node(hub, "USA", tmp_path, park_max_per_sender=50) as usa,
        ):
            await eventually(lambda: audit_reading(hub), what="the audit service reading")
            for _ in range(rounds):
                await flood(hub, size)
                for _ in range(valid):
                    waits.append(await exchange_within_deadline(hub, col, usa))
            sent = [m.msg_id for m in col.store.messages(direction="out")]
            stored = [m.msg_id for m in usa.store.messages(direction="in") if m.sender == "COL"]
            assert len(sent) == rounds * valid
            assert sorted(stored) == sorted(sent)  # each once: none lost, none duplicated
    print(f"{len(waits)} valid messages, longest wait {max(waits):.2f} s")
