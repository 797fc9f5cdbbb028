"""Faults of the three-server hub cluster, with real processes: one member SIGKILLed during a
burst, the whole cluster stopped and started, a rolling restart during traffic.

In each, every message ends up stored exactly once at its recipient and every receipt once at the
sender; the tests count them, and read each member's own replica to see that it caught up.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from services.core import subjects
from services.core.connection import connect
from services.hub import members, provision
from services.hub.credentials import PROVISION_USER
from services.testbed.cluster import ClusterHub
from tests.faults.test_crashes import assert_exactly_once, queue, receipts
from tests.support.hub import eventually
from tests.support.nodes import running_node

INBOX_USA = subjects.inbox_stream("USA")


async def stream_leader(hub: ClusterHub, state: str) -> str:
    async with connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        info = await nc.jetstream().stream_info(subjects.inbox_stream(state))
    assert info.cluster is not None and info.cluster.leader
    return info.cluster.leader


async def short_ack_wait(hub: ClusterHub) -> None:
    """Acknowledgements lost with a server come back as redeliveries after ack_wait (the node
    recognises them); a short one lets the test see the inboxes drain (production: 30 s)."""
    hub.policy = provision.Policy(ack_wait_s=2.0, replicas=3)
    await hub.provision()


def replicas_agree(hub: ClusterHub, total: int) -> bool:
    counts = hub.replica_messages("USA", INBOX_USA)
    return len(counts) == 3 and set(counts.values()) == {total}


async def test_a_member_killed_during_a_burst_loses_and_duplicates_nothing_and_catches_up(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    await short_ack_wait(cluster_hub)
    async with (
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        first = queue(mex, 150, ["USA"])
        await eventually(lambda: receipts(mex, first, "USA") >= 20, what="some traffic")
        # the leader of USA's inbox: the member whose loss forces an election mid-burst
        victim = await stream_leader(cluster_hub, "USA")
        cluster_hub.kill_member(victim)
        second = queue(mex, 50, ["USA"])  # written while one member is down
        ids = first + second
        await eventually(
            lambda: receipts(mex, ids, "USA") == len(ids), timeout=60, what="every receipt"
        )
        assert_exactly_once(usa, ids)
        assert await stream_leader(cluster_hub, "USA") != victim
        cluster_hub.start_member(victim)
        cluster_hub.wait_healthy()
        await eventually(lambda: replicas_agree(cluster_hub, len(ids)), what=f"{victim} caught up")
        assert_exactly_once(usa, ids)


async def test_the_whole_cluster_stopped_and_started_loses_and_duplicates_nothing(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    await short_ack_wait(cluster_hub)
    async with (
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        first = queue(mex, 100, ["USA"])
        await eventually(lambda: receipts(mex, first, "USA") >= 20, what="some traffic")
        cluster_hub.stop()  # all three, in the middle of the traffic
        second = queue(mex, 30, ["USA"])  # composed while the hub is down
        cluster_hub.start()
        ids = first + second
        await eventually(
            lambda: receipts(mex, ids, "USA") == len(ids), timeout=90, what="every receipt"
        )
        assert_exactly_once(usa, ids)
        cluster_hub.wait_healthy()
        await eventually(lambda: replicas_agree(cluster_hub, len(ids)), what="replicas agree")


async def test_a_rolling_restart_during_traffic_loses_and_duplicates_nothing(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    await short_ack_wait(cluster_hub)
    async with (
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        ids = queue(mex, 50, ["USA"])
        await eventually(lambda: receipts(mex, ids, "USA") >= 10, what="some traffic")
        pids = {name: cluster_hub.member_pid(name) for name in cluster_hub.names}
        # the restart runs beside the nodes' event loop, while the officers keep sending
        roll = asyncio.create_task(asyncio.to_thread(cluster_hub.rolling_restart, 3.0))
        during: list[str] = []
        while not roll.done():
            during += queue(mex, 5, ["USA"])
            await asyncio.sleep(0.2)  # the pace of the officers' sending, not a wait for state
        await roll
        assert receipts(mex, during, "USA") > 0  # sent and delivered while servers restarted
        ids += during
        assert all(cluster_hub.member_pid(n) != pid for n, pid in pids.items())  # each restarted
        await eventually(
            lambda: receipts(mex, ids, "USA") == len(ids), timeout=60, what="every receipt"
        )
        assert_exactly_once(usa, ids)
        await eventually(lambda: replicas_agree(cluster_hub, len(ids)), what="replicas agree")


def wipe_store(hub: ClusterHub, name: str) -> None:
    """The member's disk lost: its whole JetStream store, Raft state included."""
    shutil.rmtree(members.MemberPaths(hub.home.root, name).store)


async def test_a_member_whose_disk_is_lost_starts_empty_and_catches_up_during_traffic(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    await short_ack_wait(cluster_hub)
    async with (
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        first = queue(mex, 100, ["USA"])
        await eventually(lambda: receipts(mex, first, "USA") >= 20, what="some traffic")
        victim = cluster_hub.names[1]
        cluster_hub.stop_member(victim)
        wipe_store(cluster_hub, victim)
        second = queue(mex, 50, ["USA"])
        cluster_hub.start_member(victim)
        ids = first + second
        await eventually(
            lambda: receipts(mex, ids, "USA") == len(ids), timeout=60, what="every receipt"
        )
        assert_exactly_once(usa, ids)
        await asyncio.to_thread(cluster_hub.wait_healthy)
        await eventually(lambda: replicas_agree(cluster_hub, len(ids)), what=f"{victim} refilled")


async def test_two_members_down_nothing_is_written_until_one_returns_then_nothing_is_lost(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    await short_ack_wait(cluster_hub)
    async with (
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        first = queue(mex, 60, ["USA"])
        await eventually(lambda: receipts(mex, first, "USA") == 60, what="the first batch")
        _, returning, gone = cluster_hub.names
        cluster_hub.kill_member(gone)
        cluster_hub.kill_member(returning)
        second = queue(mex, 30, ["USA"])  # no quorum: they wait in MEX's outbox
        cluster_hub.start_member(returning)  # on its own store
        ids = first + second
        await eventually(
            lambda: receipts(mex, ids, "USA") == len(ids), timeout=60, what="every receipt"
        )
        assert_exactly_once(usa, ids)
        cluster_hub.start_member(gone)
        await asyncio.to_thread(cluster_hub.wait_healthy)
        await eventually(lambda: replicas_agree(cluster_hub, len(ids)), what="all three agree")
