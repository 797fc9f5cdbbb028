"""The hub as a three-server cluster: rendered, started, provisioned R3, and used by nodes that
are given every member's URL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from nats.js.api import StreamInfo

from schemas import HandlingCode
from schemas.registry import example_body
from services.cli.main import main
from services.core import subjects
from services.core.connection import connect
from services.core.directory import registration_request
from services.core.keys import NodeKeys
from services.hub.credentials import PROVISION_USER
from services.hub.members import MemberPaths
from services.hub.server import nats_server_binary
from services.node.attachment_flow import send_with_attachments
from services.testbed.cluster import ClusterHub
from tests.integration.test_audit import events_of
from tests.support.audit import running_audit
from tests.support.hub import details, eventually
from tests.support.nodes import delivered_to, running_node, send_routes_report


def member_config(hub: ClusterHub, name: str) -> dict:  # type: ignore[type-arg]
    text = MemberPaths(hub.home.root, name).config.read_text()
    return dict(json.loads(text.split("\n", 2)[2]))


def test_cluster_config_names_each_server_once_and_routes_to_the_other_two(
    cluster_home: ClusterHub,
) -> None:
    cluster_home.start()
    bodies = {name: member_config(cluster_home, name) for name in cluster_home.names}
    assert sorted(b["server_name"] for b in bodies.values()) == sorted(cluster_home.names)
    assert len({b["port"] for b in bodies.values()}) == 3
    for name, body in bodies.items():
        assert body["jetstream"]["domain"] == "hub"
        assert body["cluster"]["name"] == "cifta-hub"
        others = {m.cluster_port for m in cluster_home.cluster.members if m.name != name}
        assert {int(r.rsplit(":", 1)[1]) for r in body["cluster"]["routes"]} == others
        assert body["cluster"]["authorization"]["user"] == "route"
        assert body["http"].startswith("127.0.0.1:")  # healthz never beyond loopback
        # three servers on one host share a power supply: no relaxed fsync (cluster.py)
        assert body["jetstream"]["sync_interval"] == "always"
        path = MemberPaths(cluster_home.home.root, name).config
        assert path.stat().st_mode & 0o077 == 0  # it holds the route secret
        check = subprocess.run(
            [str(nats_server_binary()), "-c", str(path), "-t"], capture_output=True, check=False
        )
        assert check.returncode == 0, check.stderr.decode()


async def inbox_info(hub: ClusterHub, state: str) -> StreamInfo:
    async with connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
        return await nc.jetstream().stream_info(subjects.inbox_stream(state))


async def test_every_stream_is_replicated_on_all_three_servers(cluster_hub: ClusterHub) -> None:
    info = await inbox_info(cluster_hub, "USA")
    assert info.config.num_replicas == 3
    assert info.cluster is not None
    servers = {info.cluster.leader} | {r.name for r in info.cluster.replicas or []}
    assert servers == set(cluster_hub.names)


async def test_nodes_exchange_through_the_cluster(cluster_hub: ClusterHub, tmp_path: Path) -> None:
    assert cluster_hub.url.count(",") == 2  # the nodes are given every member
    async with (
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        header = send_routes_report(mex, ["USA"])
        await eventually(
            lambda: any(m.msg_id == header.msg_id for m in usa.store.messages(direction="in")),
            what="USA stored the report",
        )


async def test_attachments_cross_accounts_through_the_cluster(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    """MEX's R3 attachment stream, read by USA through MEX's export whichever server each node
    reached and whichever replica answers the direct get; MEX purges it on USA's receipt."""
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(3 * 1024 * 1024))
    async with (
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        header = await send_with_attachments(
            mex.settings, mex.core, example_body("info.trafficking_routes"), ["USA"], [photo],
            handling=HandlingCode.H1,
        )  # fmt: skip
        mex.outbox.wake()
        await eventually(lambda: delivered_to(mex, header.msg_id) == {"USA"}, what="receipt")
        assert usa.store.attachment_fetches.status(header.msg_id) == ("fetched", None, None)
        await eventually(
            lambda: mex.store.attachment_purges.state(header.msg_id, "USA") == "purged",
            what="MEX drops USA's copy",
        )


def test_a_stopped_cluster_starts_again_on_the_same_ports(cluster_home: ClusterHub) -> None:
    first = cluster_home.start()
    cluster_home.wait_healthy()
    assert cluster_home.home.stop()
    assert cluster_home.start() == first
    cluster_home.wait_healthy()


async def test_a_state_approved_on_a_running_cluster_gets_r3_streams_and_exchanges(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    pids = {name: cluster_hub.member_pid(name) for name in cluster_hub.names}
    bra = NodeKeys.generate("BRA")
    request = tmp_path / "BRA-request.json"
    request.write_text(
        registration_request(bra, details("BRA"), datetime.now(UTC)).model_dump_json()
    )
    approve = ["directory", "--hub-home", str(cluster_hub.home.root), "approve", str(request),
               "--confirm", bra.signing.public().kid, "--name", "Brazil",
               "--out", str(tmp_path / "bundle")]  # fmt: skip
    assert await asyncio.to_thread(main, approve) == 0
    cluster_hub.keys["BRA"] = bra
    info = await inbox_info(cluster_hub, "BRA")
    assert info.config.num_replicas == 3  # the cluster's default, without being told
    for name in cluster_hub.names:  # every member reloaded: BRA's user is known on each
        body = member_config(cluster_hub, name)
        assert "BRA" in body["accounts"]
    bundle = tmp_path / "bundle"
    async with (
        running_node(cluster_hub, "USA", tmp_path) as usa,
        running_node(cluster_hub, "BRA", tmp_path, credentials=bundle / "hub.nk") as brazil,
    ):
        hello = send_routes_report(brazil, ["USA"], case_id="BRA-PF-2026-0007")
        await eventually(lambda: delivered_to(brazil, hello.msg_id) == {"USA"}, what="to USA")
        assert usa.store.has_message(hello.msg_id)
    assert {name: cluster_hub.member_pid(name) for name in cluster_hub.names} == pids


async def test_the_audit_service_records_the_exchange_on_the_cluster(
    cluster_hub: ClusterHub, tmp_path: Path
) -> None:
    async with (
        running_audit(cluster_hub) as audit,  # given every member's URL, as nodes are
        running_node(cluster_hub, "MEX", tmp_path) as mex,
        running_node(cluster_hub, "USA", tmp_path) as usa,
    ):
        sent = send_routes_report(mex, ["USA"])
        await eventually(lambda: usa.store.has_message(sent.msg_id), what="stored at USA")
        usa.events.wake()
        await eventually(
            lambda: ("stored", "USA") in events_of(audit.log, sent.msg_id),
            timeout=60, what="USA's stored event in the audit log",
        )  # fmt: skip
