"""A fourth state joins while three exchange: registration request, approval, config reloaded,
directory published; no restart and no dropped connection."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from services.cli.main import main
from services.core.directory import registration_request
from services.core.keys import NodeKeys
from tests.support.hub import Hub, details, eventually
from tests.support.nodes import delivered_to, running_node, send_routes_report


async def test_a_state_approved_live_exchanges_at_once_without_a_restart(
    hub: Hub, tmp_path: Path
) -> None:
    pid_before = hub.pid
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        first = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, first.msg_id) == {"USA"})

        # Brazil's node asks to join; the secretariat confirms the key id and approves.
        bra = NodeKeys.generate("BRA")
        request = tmp_path / "BRA-request.json"
        signed = registration_request(bra, details("BRA"), datetime.now(UTC))
        request.write_text(signed.model_dump_json())
        approve = ["directory", "--hub-home", str(hub.home.root), "approve", str(request),
                   "--confirm", bra.signing.public().kid, "--name", "Brazil",
                   "--out", str(tmp_path / "bundle")]  # fmt: skip
        assert await asyncio.to_thread(main, approve) == 0
        hub.keys["BRA"] = bra

        # Every running node learns of Brazil from its own directory bucket.
        await eventually(lambda: "BRA" in mex.core.directory.parties(), what="BRA at MEX")
        await eventually(lambda: "BRA" in usa.core.directory.parties(), what="BRA at USA")

        bundle = tmp_path / "bundle"
        assert json.loads((bundle / "root.json").read_text())["kid"] == hub.directory.root.kid
        async with running_node(hub, "BRA", tmp_path, credentials=bundle / "hub.nk") as brazil:
            hello = send_routes_report(brazil, ["USA", "MEX"], case_id="BRA-PF-2026-0007")
            await eventually(
                lambda: delivered_to(brazil, hello.msg_id) == {"USA", "MEX"}, what="BRA's message"
            )
        again = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, again.msg_id) == {"USA"}, what="MEX still")
        for node in (mex, usa):
            connection = node.broker._connection  # the nats-py client under FastStream
            assert connection is not None and connection.stats["reconnects"] == 0
    assert hub.pid == pid_before  # the same server process throughout
