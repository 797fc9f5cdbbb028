"""A state on its own leaf node (services/hub/leaf.py): MEX's node runs on its leaf, USA's and
COL's on the hub as before; messages flow both ways, once each, and the audit stream sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.leaf.home import LeafHome
from services.testbed.leaf import allow_leaves, start_leaf
from services.testbed.nodes import running_node
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, send_routes_report


@pytest.fixture
async def leaf_hub(hub_home: Hub) -> AsyncIterator[Hub]:
    allow_leaves(hub_home, "MEX")
    hub_home.start()
    await hub_home.provision()
    yield hub_home


@pytest.fixture
async def mex_leaf(leaf_hub: Hub, tmp_path: Path) -> AsyncIterator[LeafHome]:
    leaf = await start_leaf(leaf_hub, "MEX", tmp_path)
    yield leaf
    leaf.stop()


async def test_a_state_on_a_leaf_sends_and_receives_through_it(
    leaf_hub: Hub, mex_leaf: LeafHome, tmp_path: Path
) -> None:
    overrides = mex_leaf.node_overrides()
    async with (
        running_node(leaf_hub, "MEX", tmp_path, **overrides) as mex,
        running_node(leaf_hub, "USA", tmp_path) as usa,
    ):
        out = send_routes_report(mex, ["USA", "COL"])
        await eventually(lambda: usa.store.has_message(out.msg_id), what="MEX -> USA via leaf")
        back = send_routes_report(usa, ["MEX"])
        await eventually(lambda: mex.store.has_message(back.msg_id), what="USA -> MEX via leaf")
        await eventually(lambda: delivered_to(usa, back.msg_id) == {"MEX"}, what="receipt")
        await eventually(lambda: delivered_to(mex, out.msg_id) == {"USA"}, what="USA's receipt")

        # COL's inbox sources MEX's relay on its own, not behind USA's: its copy may still be
        # on the way when USA's receipt is back. Once there, it is there once.
        async def col_holds_it() -> bool:
            return (await leaf_hub.status("COL")).stored >= 1

        await eventually(col_holds_it, what="MEX's report in COL's inbox")
    assert (await leaf_hub.status("COL")).stored == 1
