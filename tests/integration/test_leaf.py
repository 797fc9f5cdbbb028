"""A state on its own leaf node (services/hub/leaf.py): MEX's node runs on its leaf, USA's and
COL's on the hub as before; messages flow both ways, once each, and the audit stream sees them;
attachments sent to the state on the leaf are fetched across its link."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.errors import Error as NatsError

from schemas import HandlingCode
from schemas.registry import example_body
from services.core.envelope import peek_header
from services.hub.credentials import PROVISION_USER
from services.leaf import status
from services.leaf.home import LeafHome
from services.leaf.status import Restarts, inbox_sources, restart_stalled_inbox_sources
from services.node.app import NodeRuntime
from services.node.application import ApplicationError, OfficerIdentity, open_node
from services.node.application.models import SendMessage
from services.node.attachment_flow import attachment_store, leaf_api, send_with_attachments
from services.node.attachments import stream_room
from services.node.lookup_client import connect
from services.testbed.leaf import allow_leaves, link_proxy, start_leaf, until_linked
from services.testbed.nodes import running_node
from tests.support.attachments import segments_at_hub
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, lose_first, resends, send_routes_report


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


async def fetched_then_dropped(
    sender: NodeRuntime, recipient: NodeRuntime, msg_id: str, sent: Path, officer: str,
    out: Path, *, receipt: str, purge: str,
) -> None:  # fmt: skip
    """The recipient's receipt reaches the sender, the recipient's copy of the file is the file,
    byte for byte, and the sender then drops its copy at the hub."""
    await eventually(lambda: delivered_to(sender, msg_id) == {recipient.party}, what=receipt)
    _, opened = recipient.core.read(msg_id, officer=officer)
    (manifest,) = opened.body.attachments
    attachment_store(recipient.settings).save_plaintext(manifest, out)
    assert out.read_bytes() == sent.read_bytes()
    await eventually(
        lambda: sender.store.attachment_purges.state(msg_id, recipient.party) == "purged",
        what=purge,
    )


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
        await fetched_then_dropped(
            usa, mex, header.msg_id, photo, "agente.perez", tmp_path / "saved.png",
            receipt="receipt", purge="USA drops MEX's copy",
        )  # fmt: skip
    assert await segments_at_hub(leaf_hub, "USA") == 0


async def test_a_state_on_a_leaf_stores_its_attachments_in_its_stream_at_the_hub(
    leaf_hub: Hub, mex_leaf: LeafHome, tmp_path: Path
) -> None:
    """MEX's node, on its leaf, stores a file in ATTACH_MEX at the hub across the link (its
    size read, and later its purge made, in the hub's JetStream domain) before the message
    is queued; USA fetches it from there, verifies it and confirms it, and MEX then drops it."""
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(3 * 1024 * 1024))  # three full segments across the link
    overrides = mex_leaf.node_overrides()
    async with running_node(leaf_hub, "MEX", tmp_path, **overrides) as mex:
        header = await send_with_attachments(
            mex.settings, mex.core, example_body("info.trafficking_routes"), ["USA"], [photo],
            handling=HandlingCode.H1,
        )  # fmt: skip
        # at the hub, in MEX's own stream, before USA's node has even started
        assert await segments_at_hub(leaf_hub, "MEX", "USA") == 3
        mex.outbox.wake()
        async with running_node(leaf_hub, "USA", tmp_path) as usa:
            await fetched_then_dropped(
                mex, usa, header.msg_id, photo, "hsi.analyst.04", tmp_path / "saved.png",
                receipt="USA's receipt, through MEX's leaf",
                purge="MEX drops USA's copy from the hub, through its leaf",
            )  # fmt: skip
    assert await segments_at_hub(leaf_hub, "MEX") == 0


async def test_files_sent_from_a_leaf_whose_link_is_cut_queue_nothing_and_go_once_it_is_back(
    leaf_hub: Hub, tmp_path: Path
) -> None:
    """The message waits in the leaf's outbox through a cut, its files cannot: they go straight
    to the hub. So the send is refused with its code and queues nothing, and the same command
    sends it once the link is back."""
    link = await link_proxy(leaf_hub)
    leaf = await start_leaf(leaf_hub, "MEX", tmp_path, link)
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(100_000))
    leaf_hub.node_settings("MEX", tmp_path, **leaf.node_overrides()).save()
    mex = open_node(tmp_path / "MEX", {})
    officer = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")
    body = example_body("info.trafficking_routes").model_dump(mode="json")
    cmd = SendMessage(officer=officer, kind="info.trafficking_routes", body=body, to=["USA"],
                      handling="H1", attachments=[photo])  # fmt: skip
    try:
        link.cut()
        with pytest.raises(ApplicationError) as exc:
            await mex.send_attached(cmd)
        assert exc.value.code == "attachment.hub_unreachable"
        assert mex.core.store.messages(direction=None) == []
        assert await segments_at_hub(leaf_hub, "MEX") == 0
        link.restore()
        await until_linked(leaf_hub, leaf)
        settings = leaf_hub.node_settings("MEX", tmp_path, **leaf.node_overrides())

        async def hub_answers() -> bool:  # its JetStream API, across the link: not the mirrors'
            async with connect(settings, "cifta-test-probe") as nc:
                try:
                    await stream_room(nc, "MEX", api=leaf_api(settings), timeout_s=2)
                except (NatsError, TimeoutError):
                    return False
            return True

        await eventually(hub_answers, timeout=60, what="the hub's JetStream through the leaf")
        sent = await mex.send_attached(cmd)
        assert sent.sealed and sent.recipients == ["USA"]
        assert await segments_at_hub(leaf_hub, "MEX", "USA") == 1
    finally:
        mex.close()
        leaf.stop()
        await link.stop()


async def test_the_inboxes_that_have_not_heard_a_relay_are_the_ones_restarted(
    leaf_hub: Hub, mex_leaf: LeafHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cifta leaf relays --restart MEX` steps down every inbox whose source of MEX's relay has
    not heard it within ``STALLED_S``: read from the hub's own account of each source."""
    home = leaf_hub.home
    seeds = {s: home.user_seed(s, PROVISION_USER) for s in home.registry().codes()}
    stepped: list[str] = []

    async def step_down(url: str, seed: Path, stream: str) -> None:
        stepped.append(stream)

    async def all_heard() -> bool:
        sources = [s for r in ("USA", "COL") for s in await inbox_sources(home.url(), seeds[r], r)]
        return len(sources) == 2 and all(s.heard_within(status.STALLED_S) for s in sources)

    await eventually(all_heard, what="both inboxes hearing MEX's relay")
    monkeypatch.setattr(status, "_step_down", step_down)
    assert await restart_stalled_inbox_sources(home.url(), seeds, "MEX") == Restarts([], {})
    assert stepped == []
    # a source counts as stalled when not heard within the bound: here, every one
    done = await restart_stalled_inbox_sources(home.url(), seeds, "MEX", stalled_s=-1.0)
    assert sorted(done.restarted) == ["COL", "USA"] and done.failed == {}
    assert sorted(stepped) == ["INBOX_COL", "INBOX_USA"]


async def test_what_a_state_on_a_leaf_sent_and_lost_past_its_leaf_is_sent_again_across_the_link(
    leaf_hub: Hub, mex_leaf: LeafHome, tmp_path: Path
) -> None:
    """Reception awareness across a leaf link (docs/operations.md 4.3): the copy sent again
    takes the whole path (the leaf's outbox, MEX's relay at the hub, USA's inbox) under its own
    Nats-Msg-Id, which no stream of the path takes for the first; and USA's receipt of MEX's
    report is lost once too, so that the report comes again and USA answers it again."""
    overrides = {**mex_leaf.node_overrides(), "answer_wait_s": 2.0}
    async with (
        running_node(leaf_hub, "MEX", tmp_path, **overrides) as mex,
        running_node(leaf_hub, "USA", tmp_path) as usa,
    ):
        lost = lose_first(mex, lambda data: peek_header(data).kind != "protocol.receipt")
        lost_receipts = lose_first(usa, lambda data: peek_header(data).kind == "protocol.receipt")
        out = send_routes_report(mex, ["USA"])
        await eventually(lambda: delivered_to(mex, out.msg_id) == {"USA"}, 30,
                         what="USA's receipt, after MEX sent its report again")  # fmt: skip
        assert lost == [out.msg_id] and len(lost_receipts) == 1
        # lost once on MEX's side, then USA's answer lost: sent at least twice more
        assert resends(mex, out.msg_id, "USA") >= 2
        assert resends(usa, lost_receipts[0], "MEX") >= 1
        assert [m.msg_id for m in usa.store.messages(direction="in")] == [out.msg_id]
