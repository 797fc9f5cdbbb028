"""Availability against a hostile peer and a failing store (design section 5): no state and no
local fault stops another state's traffic, and nothing is ever left unrecorded.

Each test reproduces an observation of the outside attack on the network, against a real
nats-server, with one state's legitimate credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest

from schemas import ReasonCode
from services.core import subjects
from services.core.keys import NodeKeys
from services.hub import provision
from services.node.app import NodeRuntime
from services.node.core import CLOCK_STATE, ClockError, ComposeError, NodeCore
from services.node.lockfile import HomeLock
from tests.builders import sealed
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report

FLOOD = 1000
BUDGET = 100


async def flood_with_unknown_keys(hub: Hub, publisher: str, target: str, count: int) -> None:
    """``count`` envelopes signed by a key of ``publisher`` that no directory lists, published
    into ``target``'s inbox with ``publisher``'s own broker credentials."""
    stranger = NodeKeys.generate(publisher)
    now = datetime.now(UTC)
    envelopes = [sealed(sender=stranger, to=[hub.keys[target]], now=now) for _ in range(count)]
    raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(publisher)))
    js = raw.jetstream()
    for i, data in enumerate(envelopes):
        await js.publish(subjects.inbox_subject(target, publisher, f"flood{i}"), data)
    await raw.close()


def delivered_to_hub(node: NodeRuntime, msg_id: str) -> bool:
    return all(s.state != "pending" for s in node.store.recipient_statuses(msg_id))


async def stored_within(node: NodeRuntime, msg_id: str, seconds: float) -> float:
    started = time.monotonic()
    await eventually(lambda: node.store.has_message(msg_id), seconds, what=f"{msg_id} stored")
    return time.monotonic() - started


@pytest.mark.exclusive
async def test_a_flood_of_unverifiable_envelopes_from_one_state_delays_no_one_else(
    hub: Hub, tmp_path: Path
) -> None:
    """Observation 1: MEX fills USA's inbox with envelopes under an unknown key. Before, each was
    asked for again for two hours and they held every in-flight slot of USA's consumer."""
    # the worst case: the whole flood is in USA's inbox, ahead of COL's message, when USA starts
    await flood_with_unknown_keys(hub, "MEX", "USA", FLOOD)
    async with running_node(hub, "COL", tmp_path) as col:
        valid = send_routes_report(col, ["USA"])
        await eventually(lambda: delivered_to_hub(col, valid.msg_id), what="COL's publish")
    async with running_node(hub, "USA", tmp_path, park_max_per_sender=BUDGET) as usa:
        waited = await stored_within(usa, valid.msg_id, 5.0)
        print(f"COL's message stored {waited:.2f} s after USA started, behind {FLOOD} from MEX")

        # MEX's budget holds BUDGET of them at USA; the rest were refused at once, quarantined
        await eventually(lambda: len(usa.store.rejections()) == FLOOD - BUDGET, what="refusals")
        assert usa.core.parking.by_publisher() == {"MEX": BUDGET}
        assert {r["reason"] for r in usa.store.rejections()} == {"unknown_sender_key"}
        assert {r["publisher"] for r in usa.store.rejections()} == {"MEX"}
        await eventually(
            lambda: all(r["quarantined"] for r in usa.store.rejections()), what="quarantine"
        )

        # nothing of the flood occupies the hub's in-flight window: all acknowledged
        async def settled() -> bool:
            status = await hub.status("USA")
            return status.lag == 0 and status.quarantined == FLOOD - BUDGET

        await eventually(settled, what="every envelope acknowledged at the hub")


async def test_parked_envelopes_are_refused_quarantined_and_recorded_at_the_end_of_their_budget(
    hub: Hub, tmp_path: Path
) -> None:
    async with running_node(hub, "USA", tmp_path, park_max_age_s=1.5) as usa:
        await flood_with_unknown_keys(hub, "MEX", "USA", 5)
        await eventually(lambda: len(usa.store.rejections()) == 5, what="refused at last")
        await eventually(lambda: list(usa.core.parking) == [], what="the lot emptied")
        assert {r["reason"] for r in usa.store.rejections()} == {"unknown_sender_key"}
        await eventually(
            lambda: all(r["quarantined"] for r in usa.store.rejections()), what="quarantine"
        )
        assert (await hub.status("USA")).quarantined == 5


async def test_a_parked_envelope_opens_once_the_directory_lists_its_key(
    hub: Hub, tmp_path: Path
) -> None:
    """A state enrolled a new key; this node's directory lags behind: its envelope is parked, and
    taken as soon as the directory update arrives, not at the next scheduled try."""
    from services.core.directory import rotation_request

    mex = hub.keys["MEX"]
    rotating = mex.with_pending_signing_key()
    promoted = rotating.promote_pending_signing_key()
    async with running_node(hub, "USA", tmp_path) as usa:
        early = sealed(sender=promoted, to=[hub.keys["USA"]], now=datetime.now(UTC))
        raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed("MEX")))
        await raw.jetstream().publish(subjects.inbox_subject("USA", "MEX", "early"), early)
        await raw.close()
        await eventually(lambda: usa.core.parking.by_publisher() == {"MEX": 1}, what="parked")
        version = hub.directory.entry("MEX").version  # type: ignore[union-attr]
        hub.directory.rotate(
            rotation_request(rotating, datetime.now(UTC), new_encryption=False,
                             base_version=version)
        )  # fmt: skip
        await hub.publish_directory()
        await eventually(lambda: len(usa.store.messages(direction="in")) == 1, 5.0,
                         what="stored once the key is known")  # fmt: skip
        assert list(usa.core.parking) == [] and usa.store.rejections() == []


async def test_a_store_outage_longer_than_the_retry_budget_loses_nothing(
    hub: Hub, tmp_path: Path
) -> None:
    """Observation 3: with three delivery attempts (1 s and 5 s apart), a store locked for 8 s
    used to leave envelopes past their last attempt, never stored nor quarantined."""
    hub.policy = provision.Policy(max_deliver=3)
    await hub.provision("USA")
    count = 30
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        running_node(hub, "USA", tmp_path, store_busy_timeout_s=0.2, store_probe_s=0.2) as usa,
    ):
        blocker = sqlite3.connect(usa.store.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # a backup, a stuck process: USA cannot write
        sent = [send_routes_report(mex, ["USA"]).msg_id for _ in range(count)]
        await eventually(lambda: not usa.gate.healthy, what="the store gate closed")
        await asyncio.sleep(8.0)  # the outage itself: longer than the three attempts (6 s)
        assert usa.store.messages(direction="in") == []
        blocker.execute("ROLLBACK")
        blocker.close()

        await eventually(lambda: all(usa.store.has_message(m) for m in sent), 20.0,
                         what="every message stored after the outage")  # fmt: skip
        assert len(usa.store.messages(direction="in")) == count  # once each
        assert usa.store.rejections() == [] and usa.gate.outages == 1
        status = await hub.status("USA")
        assert status.quarantined == 0
        await eventually(lambda: _settled(hub), what="nothing left pending at the hub")
        await eventually(
            lambda: all(
                s.state == "delivered" for m in sent for s in mex.store.recipient_statuses(m)
            ),
            what="every receipt back at MEX",
        )


async def _settled(hub: Hub) -> bool:
    return (await hub.status("USA")).lag == 0


async def test_a_valid_message_after_a_refused_one_is_not_held_by_a_failing_quarantine(
    hub: Hub, tmp_path: Path
) -> None:
    """Deliveries that keep failing for the message's own sake (not the store's) are still
    quarantined as processing_failed at their last attempt: the gate is for the store only."""
    hub.policy = provision.Policy(max_deliver=2)
    await hub.provision("USA")
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        original = usa.core.casework.received

        def failing(header, body):  # type: ignore[no-untyped-def]
            if header.case_id == "POISON":
                raise ValueError("a bug met by one message")
            return original(header, body)

        usa.core.casework.received = failing  # type: ignore[method-assign]
        poison = send_routes_report(mex, ["USA"], case_id="POISON")
        valid = send_routes_report(mex, ["USA"])
        await eventually(lambda: usa.store.has_message(valid.msg_id), what="the valid one")
        await eventually(lambda: len(usa.store.rejections()) == 1, what="the poison refused")
        assert usa.store.rejections()[0]["msg_id"] == poison.msg_id
        assert usa.store.rejections()[0]["reason"] == ReasonCode.PROCESSING_FAILED.value
        assert usa.gate.healthy and usa.gate.outages == 0


# -- clocks ----------------------------------------------------------------------------------------


def skewed(delta: timedelta) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + delta


@asynccontextmanager
async def node_with_clock(
    hub: Hub, party: str, root: Path, clock: Callable[[], datetime]
) -> AsyncIterator[NodeRuntime]:
    runtime = NodeRuntime(hub.node_settings(party, root), clock=clock)
    await runtime.start(connect_timeout=10)
    try:
        yield runtime
    finally:
        await runtime.stop()


def alerts(node: NodeRuntime, source: str) -> list[str]:
    return [detail for _, src, detail in node.store.alerts() if src == source]


async def test_a_node_whose_clock_is_ahead_alarms_refuses_to_send_and_both_sides_hear_of_it(
    hub: Hub, tmp_path: Path
) -> None:
    """Observation 4: USA's clock a day ahead. Before, its receipts were refused by MEX as
    future_dated, MEX showed "sent" forever, and nobody was told."""
    async with (
        running_node(hub, "MEX", tmp_path) as mex,
        node_with_clock(hub, "USA", tmp_path, skewed(timedelta(days=1))) as usa,
    ):
        [alarm] = alerts(usa, "clock")
        assert "ahead of the hub's" in alarm
        with pytest.raises(ClockError, match=r"clock is 864\d\d s ahead of the hub's"):
            send_routes_report(usa, ["MEX"])
        assert usa.store.messages(direction="out") == []

        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: usa.store.has_message(sent.msg_id), what="stored at USA")
        # USA's receipt, dated tomorrow, is refused by MEX, which says so, and answers USA
        await eventually(lambda: len(alerts(mex, "clock")) == 1, what="MEX's alert")
        assert "USA's receipt" in alerts(mex, "clock")[0]
        assert "future_dated" in alerts(mex, "clock")[0]
        await eventually(lambda: len(alerts(usa, "clock")) == 2, what="USA told by MEX")
        assert "MEX refused this node's receipt" in alerts(usa, "clock")[1]


async def test_a_node_whose_clock_is_behind_gets_a_clock_error_not_a_missing_key(
    hub: Hub, tmp_path: Path
) -> None:
    async with node_with_clock(hub, "MEX", tmp_path, skewed(-timedelta(days=1))) as mex:
        with pytest.raises(ClockError, match="behind the hub's"):
            send_routes_report(mex, ["USA"])
    # without a measurement (the node never ran), the directory names the clock too
    core = NodeRuntime(hub.node_settings("COL", tmp_path), clock=skewed(-timedelta(days=1))).core
    with pytest.raises(ComposeError, match="check the clock"):
        send_routes_report_core(core)


def send_routes_report_core(core: NodeCore) -> None:
    from schemas import HandlingCode
    from schemas.registry import example_body

    core.compose(example_body("info.trafficking_routes"), ["USA"], handling=HandlingCode.H1)


async def test_a_clock_within_tolerance_raises_no_alarm(hub: Hub, tmp_path: Path) -> None:
    async with node_with_clock(hub, "MEX", tmp_path, skewed(timedelta(seconds=30))) as mex:
        assert alerts(mex, "clock") == []
        measured = mex.store.state(CLOCK_STATE)
        assert measured is not None and 25 < measured[0]["offset_s"] < 35
        send_routes_report(mex, ["USA"])  # sends


# -- recovery --------------------------------------------------------------------------------------


async def exhaust_deliveries(hub: Hub, state: str) -> None:
    """An old node: it fetches every envelope and asks for it again until the hub gives up on
    it (max_deliver), storing nothing. The envelopes stay in the stream, past their attempts."""
    raw = await nats.connect(hub.url, nkeys_seed=str(hub.home.node_seed(state)))
    js = raw.jetstream()
    sub = await js.pull_subscribe_bind(
        durable=subjects.NODE_CONSUMER, stream=subjects.inbox_stream(state)
    )
    try:
        while True:
            status = await hub.status(state)
            if status.pending == 0 and status.unacknowledged == 0:
                return
            # nats-py raises its own TimeoutError when nothing came, and the bare built-in one
            # when its deadline ran out before the second (waiting) pull: both mean "none now"
            with contextlib.suppress(TimeoutError):
                for msg in await sub.fetch(64, timeout=0.5):
                    await msg.nak()
    finally:
        await raw.close()


async def test_recover_takes_what_the_hub_still_holds_exactly_once(
    hub: Hub, tmp_path: Path
) -> None:
    hub.policy = provision.Policy(max_deliver=2)
    await hub.provision("USA")
    count = 12
    async with running_node(hub, "MEX", tmp_path) as mex:
        sent = [send_routes_report(mex, ["USA"]).msg_id for _ in range(count)]
        await eventually(lambda: all(delivered_to_hub(mex, m) for m in sent), what="published")
        await exhaust_deliveries(hub, "USA")
        settings = hub.node_settings("USA", tmp_path)
        settings.save()
        home = str(settings.home)

        first = run_cifta("node", "recover", "--home", home, "--json")
        assert first["stored"] == count and first["scanned"] == count
        again = run_cifta("node", "recover", "--home", home, "--json")
        assert again["stored"] == 0 and again["already_stored"] == count

        async with running_node(hub, "USA", tmp_path) as usa:
            assert len(usa.store.messages(direction="in")) == count
            await eventually(
                lambda: all(
                    s.state == "delivered" for m in sent for s in mex.store.recipient_statuses(m)
                ),
                what="the receipts queued by the recovery, sent once the node runs",
            )


async def test_recover_refuses_to_run_beside_a_running_node(hub: Hub, tmp_path: Path) -> None:
    async with running_node(hub, "USA", tmp_path) as usa:
        usa.settings.save()
        with HomeLock(usa.settings.home):  # what `cifta node run` holds
            result = subprocess.run(
                [sys.executable, "-m", "services.cli.main", "node", "recover", "--home",
                 str(usa.settings.home)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("error: a node is already running on ")
    assert "Traceback" not in result.stderr


def run_cifta(*args: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]
