"""Isolation re-proven on the three-server cluster: every test of test_isolation.py, each against
a running R3 cluster instead of one server (routes carry every account's traffic between the
members, and the account wall must hold on whichever member a client lands)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import nats
import pytest
from nats.js import api

from services.core import connection, subjects
from services.hub import members, server
from services.hub.credentials import PROVISION_USER
from services.testbed.cluster import ClusterHub
from tests.security.test_isolation import (  # noqa: F401 - collected here, against the cluster
    as_node,
    test_a_node_cannot_create_change_or_delete_a_consumer,
    test_a_node_cannot_delete_or_purge_streams,
    test_a_node_reads_its_directory_bucket_and_cannot_write_it,
    test_a_state_cannot_publish_as_another_state,
    test_a_state_cannot_read_another_states_stream_or_consumer,
    test_a_state_cannot_subscribe_to_another_states_inbox,
    test_a_state_cannot_write_into_its_own_inbox_under_another_name,
    test_a_state_direct_gets_its_own_inbox_and_not_another_states,
    test_even_the_secretariat_cannot_purge_or_delete_messages_of_an_inbox,
    test_no_one_can_purge_a_states_directory_bucket,
    test_the_account_wall_holds_even_for_a_states_unrestricted_user,
)

STREAM_NOT_FOUND = 10059


@pytest.fixture
async def hub(cluster_hub: ClusterHub) -> ClusterHub:
    """The tests' ``hub``: here, the cluster."""
    return cluster_hub


async def meta_leader(hub: ClusterHub) -> tuple[str, int]:
    """The JetStream meta leader and the cluster's size, as the first running member sees them."""
    member = next(m for m in hub.cluster.members if members.running_pid(hub.home.root, m.name))
    with urllib.request.urlopen(f"{member.monitor_url}/jsz", timeout=5) as resp:
        meta = json.loads(resp.read())["meta_cluster"]
    return meta["leader"], meta["cluster_size"]


async def inbox(hub: ClusterHub, state: str) -> api.StreamInfo:
    async with connection.connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        return await nc.jetstream().stream_info(subjects.inbox_stream(state))


async def test_a_state_cannot_administer_the_cluster_or_another_states_replicas(
    cluster_hub: ClusterHub,
) -> None:
    usa_before, meta_before = await inbox(cluster_hub, "USA"), await meta_leader(cluster_hub)
    peer = {"peer": usa_before.cluster.leader if usa_before.cluster else ""}
    seed = cluster_hub.home.user_seed("MEX", PROVISION_USER)  # unrestricted in MEX's account
    async with connection.connect(cluster_hub.url, seed) as nc:
        for verb in ("LEADER.STEPDOWN", "PEER.REMOVE"):
            reply = await nc.request(
                f"$JS.API.STREAM.{verb}.{subjects.inbox_stream('USA')}", json.dumps(peer).encode()
            )
            assert json.loads(reply.data)["error"]["err_code"] == STREAM_NOT_FOUND
        for subject in ("$JS.API.META.LEADER.STEPDOWN", "$JS.API.SERVER.REMOVE"):
            with pytest.raises(nats.errors.TimeoutError):  # the system account's alone
                await nc.request(subject, json.dumps(peer).encode(), timeout=1)
    usa_after = await inbox(cluster_hub, "USA")
    assert usa_after.cluster and usa_before.cluster
    assert usa_after.cluster.leader == usa_before.cluster.leader
    assert len(usa_after.cluster.replicas or []) == 2 and usa_after.config.num_replicas == 3
    assert await meta_leader(cluster_hub) == meta_before
    # A state's node may not step down even its own inbox's leader: only provisioning may.
    stepdown = f"$JS.API.STREAM.LEADER.STEPDOWN.{subjects.inbox_stream('MEX')}"
    async with as_node(cluster_hub, "MEX") as mex:
        await mex.nc.publish(stepdown, b"")
        assert await mex.violation(stepdown)
    # the permitted neighbour: USA's provisioning user moves its own inbox's leader
    usa_seed = cluster_hub.home.user_seed("USA", PROVISION_USER)
    async with connection.connect(cluster_hub.url, usa_seed) as nc:
        reply = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{subjects.inbox_stream('USA')}")
        assert json.loads(reply.data).get("success") is True


def test_a_server_without_the_route_secret_cannot_join_the_cluster(
    cluster_home: ClusterHub, tmp_path: Path
) -> None:
    cluster_home.start()
    cluster_home.wait_healthy()
    target = cluster_home.cluster.members[0]
    log = members.MemberPaths(cluster_home.home.root, target.name).log
    refused = log.read_text().count("authentication error")
    rogue = tmp_path / "rogue.conf"
    rogue.write_text(json.dumps({
        "server_name": "rogue", "host": "127.0.0.1", "port": -1, "http": "127.0.0.1:-1",
        "cluster": {"name": "cifta-hub", "host": "127.0.0.1", "port": -1,
                    "routes": [f"nats-route://127.0.0.1:{target.cluster_port}"]},
    }))  # fmt: skip
    running = server.start(rogue, run_dir=tmp_path / "rogue", log_file=tmp_path / "rogue.log")
    try:
        deadline = time.monotonic() + 10
        while log.read_text().count("authentication error") == refused:
            assert time.monotonic() < deadline, "the member never saw the rogue route"
            time.sleep(0.05)  # polling the member's log for its refusal
        rogue_url = f"http://127.0.0.1:{running.ports['monitoring']}/routez"
        with urllib.request.urlopen(rogue_url, timeout=5) as resp:
            assert json.loads(resp.read())["num_routes"] == 0
        with urllib.request.urlopen(f"{target.monitor_url}/routez", timeout=5) as resp:
            names = {r.get("remote_name") for r in json.loads(resp.read())["routes"]}
        assert names == set(cluster_home.names) - {target.name}
    finally:
        server.stop(running.pid)
