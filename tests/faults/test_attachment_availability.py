"""Availability of attachments against a hostile peer (design section 5: a hostile peer delays no
one else). What a state stores at the hub counts against its own account alone: a state that
fills all the room it may use delays its own files, and no other state's to the same recipient.

Formerly every sender to ``B`` stored into ``B``'s one stream, and one hostile state could fill it
for all the others (found by review); this test failed on that layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.core import connection, subjects
from services.core.attachments import CHUNK_SIZE
from services.hub.credentials import PROVISION_USER
from services.i18n import translate
from services.node import attachments
from services.node.application import ApplicationError, OfficerIdentity, open_node
from services.node.application.models import SendMessage
from services.node.attachment_flow import attachment_store, send_with_attachments
from services.node.attachments import AttachmentStore, AttachmentTransferError
from tests.security.test_isolation import as_node
from tests.support.attachments import segments_at_hub
from tests.support.hub import STATES, Hub, eventually
from tests.support.nodes import delivered_to, running_node

OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")

pytestmark = pytest.mark.asyncio

#: Every attachment stream made small, so that filling one takes a few one-chunk objects.
ROOM = 8 * CHUNK_SIZE


async def shrink_attachment_streams(hub: Hub) -> None:
    for state in STATES:
        async with connection.connect(hub.url, hub.home.user_seed(state, PROVISION_USER)) as nc:
            js = nc.jetstream()
            config = (await js.stream_info(subjects.attachment_stream(state))).config
            config.max_bytes = ROOM
            await js.update_stream(config)


async def fill_as(hub: Hub, hostile: str, recipient: str, tmp_path: Path) -> int:
    """``hostile`` stores small objects for ``recipient`` until the hub refuses one; how many
    segments it got stored."""
    store = AttachmentStore(tmp_path / hostile)
    async with as_node(hub, hostile) as node:
        for i in range(2 * ROOM // CHUNK_SIZE):
            src = tmp_path / f"junk-{i}.bin"
            src.write_bytes(os.urandom(CHUNK_SIZE - 16))
            try:
                await attachments.upload(
                    node.nc, hostile, [recipient], store.prepare(src), timeout_s=10
                )
            except AttachmentTransferError as exc:
                # the hub's refusal, not a PubAck slow to come (an fsync on a loaded machine)
                assert "maximum bytes exceeded" in str(exc), exc
                return i
    raise AssertionError(f"the hub never refused {hostile}'s objects")


async def test_a_state_filling_its_attachment_room_delays_no_other_states_files(
    hub: Hub, tmp_path: Path
) -> None:
    await shrink_attachment_streams(hub)
    stored = await fill_as(hub, "COL", "USA", tmp_path)
    assert 0 < stored == await segments_at_hub(hub, "COL", "USA")
    # MEX sends USA a photograph meanwhile: stored at once, fetched, confirmed, purged
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(3 * CHUNK_SIZE))
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        header = await send_with_attachments(
            mex.settings, mex.core, example_body("info.trafficking_routes"), ["USA"], [photo],
            handling=HandlingCode.H1,
        )  # fmt: skip
        mex.outbox.wake()
        await eventually(lambda: delivered_to(mex, header.msg_id) == {"USA"}, what="receipt")
        _, opened = usa.core.read(header.msg_id, officer="agent.smith")
        (manifest,) = opened.body.attachments
        out = tmp_path / "saved.png"
        attachment_store(usa.settings).save_plaintext(manifest, out)
        assert out.read_bytes() == photo.read_bytes()
        assert usa.store.attachment_fetches.status(header.msg_id) == ("fetched", None, None)
    # COL's objects still fill COL's own room, and only that
    assert await segments_at_hub(hub, "COL", "USA") == stored


def a_photo(tmp_path: Path, name: str) -> Path:
    """One chunk of plaintext: 65,552 bytes at the hub."""
    path = tmp_path / name
    path.write_bytes(os.urandom(CHUNK_SIZE))
    return path


async def test_a_recipient_that_never_confirms_keeps_a_share_of_its_senders_room_at_most(
    hub: Hub, tmp_path: Path
) -> None:
    """USA's node is offline (or hostile) and confirms nothing: what MEX stored for it stays at
    the hub until its retention, in MEX's room. Beyond a quarter of that room (and one message)
    MEX's node stores no more for USA (a refusal of its own, before anything is stored, not the
    hub's), so USA cannot fill the room and delay MEX's files to COL; once USA confirms, its
    files go again."""
    await shrink_attachment_streams(hub)  # MEX's room: 8 chunks; USA's share: 2
    body = example_body("info.trafficking_routes")
    async with running_node(hub, "MEX", tmp_path) as mex:

        async def send(to: str, name: str) -> str:
            header = await send_with_attachments(
                mex.settings, mex.core, body, [to], [a_photo(tmp_path, name)],
                handling=HandlingCode.H1,
            )  # fmt: skip
            mex.outbox.wake()
            return header.msg_id

        first = await send("USA", "a.png")  # nothing pending for USA: always stored
        with pytest.raises(AttachmentTransferError, match=r"USA has not yet confirmed 0\.1 MiB"):
            await send("USA", "b.png")
        # an officer is told why, in their language, and what to do
        mex.settings.save()  # as `cifta node init` leaves it, for the officers' commands
        app = open_node(mex.settings.home, {})
        try:
            cmd = SendMessage(
                officer=OFFICER, kind="info.trafficking_routes", to=["USA"],
                body=body.model_dump(mode="json"), handling=HandlingCode.H1,
                attachments=[a_photo(tmp_path, "b.png")],
            )  # fmt: skip
            with pytest.raises(ApplicationError) as refused:
                await app.send_attached(cmd, lambda done, total: None)
        finally:
            app.close()
        assert refused.value.code == "attachment.recipient_backlog"
        assert refused.value.params["recipient"] == "USA"
        assert refused.value.params["held_mib"] == 0.1
        line = translate(refused.value.code, refused.value.params, "es")
        assert line.startswith("USA aún no ha confirmado 0,1 MiB de archivos")
        assert await segments_at_hub(hub, "MEX", "USA") == 1  # refused before it was stored
        # the room USA could have filled stays MEX's: its files to COL are stored
        await send("COL", "c.png")
        assert await segments_at_hub(hub, "MEX", "COL") == 1
        async with running_node(hub, "USA", tmp_path):  # USA comes back and confirms
            await eventually(lambda: delivered_to(mex, first) == {"USA"}, what="USA's receipt")
            await eventually(
                lambda: mex.store.attachment_purges.state(first, "USA") == "purged",
                what="MEX drops USA's copy",
            )
        await send("USA", "b.png")
    assert await segments_at_hub(hub, "MEX", "USA") == 1
