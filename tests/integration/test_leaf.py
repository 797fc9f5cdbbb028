"""A state on its own leaf node (services/hub/leaf.py): MEX's node runs on its leaf, USA's and
COL's on the hub as before; messages flow both ways, once each, and the audit stream sees them;
attachments sent to the state on the leaf are fetched across its link."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.leaf.home import LeafHome
from services.node.attachment_flow import attachment_store, send_with_attachments
from services.testbed.leaf import allow_leaves, start_leaf
from services.testbed.nodes import running_node
from tests.support.attachments import segments_at_hub
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


async def test_a_state_on_a_leaf_receives_attachments_across_its_link(
    leaf_hub: Hub, mex_leaf: LeafHome, tmp_path: Path
) -> None:
    """USA stores a file for MEX in its own stream at the hub; MEX's node, on its leaf, fetches
    it across the link, verifies it and confirms it, and USA then drops its copy."""
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(3 * 1024 * 1024))  # three full segments across the link
    overrides = mex_leaf.node_overrides()
    async with (
        running_node(leaf_hub, "MEX", tmp_path, **overrides) as mex,
        running_node(leaf_hub, "USA", tmp_path) as usa,
    ):
        header = await send_with_attachments(
            usa.settings, usa.core, example_body("info.trafficking_routes"), ["MEX"], [photo],
            handling=HandlingCode.H1,
        )  # fmt: skip
        usa.outbox.wake()
        await eventually(lambda: delivered_to(usa, header.msg_id) == {"MEX"}, what="receipt")
        _, opened = mex.core.read(header.msg_id, officer="agente.perez")
        (manifest,) = opened.body.attachments
        out = tmp_path / "saved.png"
        attachment_store(mex.settings).save_plaintext(manifest, out)
        assert out.read_bytes() == photo.read_bytes()
        await eventually(
            lambda: usa.store.attachment_purges.state(header.msg_id, "MEX") == "purged",
            what="USA drops MEX's copy",
        )
    assert await segments_at_hub(leaf_hub, "USA") == 0
