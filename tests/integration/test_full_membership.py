"""The hub the Convention needs: all 35 OAS member states on one server (issue 11, observation 9:
the full membership did not start, its accounts reserving more memory than the server had)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import structlog

from services.cli.main import main
from tests.support.hub import OAS_MEMBER_STATES, build_hub, eventually
from tests.support.nodes import delivered_to, running_node, send_routes_report

log = structlog.get_logger()


async def test_the_hub_renders_starts_and_serves_all_35_oas_member_states(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(set(OAS_MEMBER_STATES)) == 35
    hub = build_hub(tmp_path, OAS_MEMBER_STATES)
    try:
        async with asyncio.timeout(180):  # the whole test, whatever waits inside it
            hub.start()
            began = time.monotonic()
            await hub.provision()  # 35 inboxes, the audit stream sourcing them, the directory
            log.warning("full_membership_provisioned", seconds=round(time.monotonic() - began, 2))

            async with (
                running_node(hub, "ARG", tmp_path) as argentina,
                running_node(hub, "JAM", tmp_path) as jamaica,
            ):
                sent = send_routes_report(argentina, ["JAM"], case_id="ARG-PFA-2026-0077")
                await eventually(lambda: jamaica.store.has_message(sent.msg_id), what="JAM stores")
                await eventually(
                    lambda: delivered_to(argentina, sent.msg_id) == {"JAM"}, what="JAM's receipt"
                )

            args = ["hub", "--home", str(hub.home.root), "status", "--json"]
            code = await asyncio.to_thread(main, args)
            out, err = capsys.readouterr()
            assert code == 0, err
    finally:
        hub.stop()
    statuses = {s["state"]: s for s in json.loads(out)}
    assert set(statuses) == set(OAS_MEMBER_STATES)
    assert statuses["JAM"]["stored"] == 1 and statuses["JAM"]["lag"] == 0
    assert statuses["ARG"]["stored"] == 1  # JAM's signed receipt
    assert sum(s["stored"] for s in statuses.values()) == 2
