"""What the secretariat watches, against a real hub, nodes and audit service: a state goes
offline and its backlog grows; a witness falls behind; the whole log verified with progress."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.secretariat.audit_desk import Verifier, audit_view
from services.secretariat.network import StateHealth, network_view
from tests.support.audit import running_audit
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node, send_routes_report

WITNESS = {"witness_interval_s": 0.2}


async def health(hub: Hub) -> dict[str, StateHealth]:
    view = await network_view(hub.home, datetime.now(UTC))
    return {s.state: s for s in view.states}


async def test_a_state_that_goes_offline_shows_so_and_its_backlog_grows(
    hub: Hub, tmp_path: Path
) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex:
        async with running_node(hub, "COL", tmp_path):

            async def col_connected() -> bool:
                return (await health(hub))["COL"].connected

            await eventually(col_connected, what="COL's node seen connected")
        states = await health(hub)
        assert not states["COL"].connected and states["MEX"].connected
        assert not states["USA"].connected and states["COL"].last_activity is not None
        for _ in range(3):
            send_routes_report(mex, ["COL"])

        async def col_backlog_of_three() -> bool:
            return (await health(hub))["COL"].backlog == 3

        await eventually(col_backlog_of_three, what="COL's backlog of three envelopes")
        states = await health(hub)
        assert states["COL"].stored == 3 and states["COL"].storage_used > 0
        # the same figures as `cifta hub status`, which asks each account's consumer itself
        status = await hub.status("COL")
        col = states["COL"]
        assert (col.stored, col.backlog, col.redelivered, col.quarantined) == (
            status.stored,
            status.lag,
            status.redelivered,
            status.quarantined,
        )
        assert col.past_last_attempt == status.past_last_attempt == 0
        assert states["MEX"].backlog == 0 and states["COL"].storage_ratio < 0.01
    view = await network_view(hub.home, datetime.now(UTC))
    assert len(view.servers) == 1 and view.servers[0].streams > 0
    assert view.servers[0].storage_max > 0 and view.servers[0].messages >= 3


async def test_a_witness_that_stops_falls_behind_and_the_log_verifies_with_progress(
    hub: Hub, tmp_path: Path
) -> None:
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path, **WITNESS).save()
    async with running_audit(hub, checkpoint_every_s=0.1) as audit:
        async with running_node(hub, "MEX", tmp_path, **WITNESS) as mex:
            async with running_node(hub, "USA", tmp_path, **WITNESS):
                send_routes_report(mex, ["USA"])

                def both_current() -> bool:
                    w = {v.state: v for v in audit_view(hub.home).witnesses}
                    return all(
                        w[s].last_cosigned and w[s].entries_behind == 0 for s in w if s != "COL"
                    )

                await eventually(both_current, what="MEX and USA cosigning the latest checkpoint")
            # USA's node stops; the log grows; MEX goes on cosigning, USA falls behind
            send_routes_report(mex, ["COL"])

            def usa_behind() -> bool:
                w = {v.state: v for v in audit_view(hub.home).witnesses}
                return w["USA"].entries_behind > 0 and w["MEX"].entries_behind == 0

            await eventually(usa_behind, what="USA behind while MEX is current")
        view = audit_view(hub.home)
        witnesses = {w.state: w for w in view.witnesses}
        assert witnesses["USA"].checkpoints_behind >= 1
        assert witnesses["COL"].last_cosigned is None  # never witnessed
        assert view.size == audit.log.size and view.latest_checkpoint is not None
        assert view.alarms == []

        verifier = Verifier(hub.home)
        assert verifier.state.status == "idle"
        final = await verifier.start(datetime.now(UTC))
        assert final.status == "intact" and final.problems == []
        assert final.total >= view.size and final.done == final.total
