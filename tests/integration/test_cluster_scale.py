"""The whole OAS membership on the three-server cluster, bounded (35 states x 20 messages; the
35 x 1,000 figures come from bench/cluster_scale.py): it renders, starts and provisions R3, every
state's wall holds, and every inbox drains exactly what was queued, with the AUDIT stream
sourcing all of it."""

from __future__ import annotations

from pathlib import Path

from services.testbed import scale
from services.testbed.cluster import build_cluster_hub
from services.testbed.hub import OAS_MEMBER_STATES
from tests.support.hub import eventually

PER_STATE = 20


async def test_the_whole_membership_runs_on_the_cluster(tmp_path: Path) -> None:
    states = OAS_MEMBER_STATES
    hub = build_cluster_hub(tmp_path, states)
    try:
        hub.start()
        hub.wait_healthy()
        await hub.home.provision(hub.url, states, hub.policy)
        assert await scale.walls_breached(hub, states) == []
        await scale.fill(hub, states, PER_STATE)
        for state in states:
            assert await scale.inbox_holds(hub, state) == PER_STATE
        received = await scale.drain(hub, states, PER_STATE)
        for state in states:  # each envelope once, none missing, none extra
            assert sorted(received[state]) == sorted(scale.expected_ids(states, state, PER_STATE))

        async def audited() -> bool:
            return await scale.audit_holds(hub) == len(states) * PER_STATE

        await eventually(audited, timeout=30, what="the AUDIT stream sourced every inbox")
        figures = scale.server_figures(hub)
        assert len(figures) == 3 and all(f.rss > 0 and f.disk > 0 for f in figures)
    finally:
        hub.stop()
