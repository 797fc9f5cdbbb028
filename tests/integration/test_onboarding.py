"""A fourth state joins while three exchange: config reloaded, no restart, no dropped connection."""

from __future__ import annotations

from pathlib import Path

from services.core.keys import NodeKeys
from services.hub.config import Listen
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node, send_routes_report


async def test_a_state_enrolled_live_exchanges_at_once_without_a_restart(
    hub: Hub, tmp_path: Path
) -> None:
    pid_before = hub.pid
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        first = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, first.msg_id) == {"USA"})

        # The secretariat enrols Brazil: registry, users, config, SIGHUP, provisioning.
        hub.keys["BRA"] = NodeKeys.generate("BRA")
        hub.home.enrol(hub.keys["BRA"].public_bundle(), name="Brazil")
        hub.home.render_config(Listen(port=hub.port))
        hub.home.reload()
        await hub.provision("BRA")
        for home in (tmp_path / "USA", tmp_path / "MEX"):  # the new directory, to the nodes
            (home / "directory.json").write_text(hub.home.directory_path.read_text())

        async with running_node(hub, "BRA", tmp_path) as bra:
            hello = send_routes_report(bra, ["USA", "MEX"], case_id="BRA-PF-2026-0007")
            await eventually(
                lambda: delivered_to(bra, hello.msg_id) == {"USA", "MEX"}, what="BRA's message"
            )
        again = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, again.msg_id) == {"USA"}, what="MEX still")
        for node in (mex, usa):
            connection = node.broker._connection  # the nats-py client under FastStream
            assert connection is not None and connection.stats["reconnects"] == 0
    assert hub.pid == pid_before  # the same server process throughout
