"""Attachment isolation by the broker's real permissions: a hostile state can neither read
another state's attachments nor write over the objects a third state stored for it.

As in test_isolation.py, each denial is checked as the server's permissions violation for that
very subject and as an attempt without effect, next to the permitted act that does work.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from nats.errors import NoRespondersError, TimeoutError

from services.core import subjects
from services.core.attachments import CHUNK_SIZE
from services.node import attachments
from services.node.attachments import AttachmentStore
from tests.security.test_isolation import as_node
from tests.support.hub import Hub

pytestmark = pytest.mark.asyncio


def prepared(tmp_path: Path, state: str, size: int = 2 * CHUNK_SIZE) -> attachments.Prepared:
    src = tmp_path / f"{state}.bin"
    src.write_bytes(os.urandom(size))
    return AttachmentStore(tmp_path / state).prepare(src)


async def test_a_state_cannot_read_another_states_attachments(hub: Hub, tmp_path: Path) -> None:
    sent = prepared(tmp_path, "MEX")
    async with as_node(hub, "MEX") as mex:
        await attachments.upload(mex.nc, "MEX", ["USA"], sent)
    chunk = subjects.attachment_chunk_subject("USA", "MEX", sent.manifest.ciphertext_sha256, 0)
    stream = subjects.attachment_stream("USA")
    async with as_node(hub, "COL") as col:
        # by direct get of USA's stream, as the API subject COL's account would use
        with pytest.raises((NoRespondersError, TimeoutError)):
            await col.nc.jetstream(timeout=1).get_msg(stream, subject=chunk, direct=True)
        await col.violation(f"{subjects.direct_get_subject(stream)}.{chunk}")
        # by subscribing to the subjects the chunks are published on
        await col.nc.subscribe("attach.USA.>")
        await col.violation("attach.USA.>")
    async with as_node(hub, "USA") as usa:  # the recipient itself reads them
        msg = await usa.nc.jetstream().get_msg(stream, subject=chunk, direct=True)
        assert len(msg.data or b"") == 2 * (CHUNK_SIZE + 16)  # one segment of both chunks


async def test_a_state_cannot_overwrite_objects_another_state_stored(
    hub: Hub, tmp_path: Path
) -> None:
    sent = prepared(tmp_path, "MEX")
    async with as_node(hub, "MEX") as mex:
        await attachments.upload(mex.nc, "MEX", ["USA"], sent)
    object_id = sent.manifest.ciphertext_sha256
    chunk = subjects.attachment_chunk_subject("USA", "MEX", object_id, 0)
    async with as_node(hub, "COL") as col:
        # under MEX's name: its node may publish only as COL
        await col.nc.publish(chunk, b"forged chunk")
        await col.violation(chunk)
        # purging USA's stream, or any of its objects
        purge = subjects.stream_purge_subject(subjects.attachment_stream("USA"))
        with pytest.raises((NoRespondersError, TimeoutError)):
            await col.nc.request(purge, b"{}", timeout=1)
        await col.violation(purge)
        # what COL may do: store its own object for USA, under its own name
        own = prepared(tmp_path, "COL", CHUNK_SIZE)
        await attachments.upload(col.nc, "COL", ["USA"], own)
    usa_store = AttachmentStore(tmp_path / "USA")
    async with as_node(hub, "USA") as usa:  # MEX's object is intact
        await attachments.fetch(usa.nc, "USA", "MEX", sent.manifest, usa_store)
        await attachments.fetch(usa.nc, "USA", "COL", own.manifest, usa_store)
    assert usa_store.has(sent.manifest) and usa_store.has(own.manifest)


async def test_a_state_cannot_store_attachments_for_a_state_as_another(
    hub: Hub, tmp_path: Path
) -> None:
    """The sender's code in the subject is the publishing account's: MEX cannot store an object
    for USA that USA's node would take for COL's."""
    sent = prepared(tmp_path, "MEX")
    async with as_node(hub, "MEX") as mex:
        with pytest.raises(attachments.AttachmentTransferError):
            await attachments.upload(mex.nc, "COL", ["USA"], sent, timeout_s=1)
        await mex.violation(
            subjects.attachment_chunk_subject("USA", "COL", sent.manifest.ciphertext_sha256, 0)
        )


async def test_a_co_recipient_cannot_preempt_anothers_upload(hub: Hub, tmp_path: Path) -> None:
    """COL, a co-recipient, learns the object's digest from its own stream and publishes into
    USA's stream (under its own code, as it may) with the message id MEX's segment would carry:
    MEX's segment must still be stored, and USA must fetch the file whole."""
    sent = prepared(tmp_path, "MEX")
    oid = sent.manifest.ciphertext_sha256
    async with as_node(hub, "MEX") as mex:
        await attachments.upload(mex.nc, "MEX", ["COL"], sent)
    async with as_node(hub, "COL") as col:
        js = col.nc.jetstream()
        info = await js.stream_info(subjects.attachment_stream("COL"), subjects_filter=">")
        assert oid in {s.split(".")[3] for s in (info.state.subjects or {})}
        for msg_id in (f"{oid}.0", f"MEX.{oid}.0"):
            ack = await js.publish(
                subjects.attachment_chunk_subject("USA", "COL", oid, 0),
                b"junk",
                headers={"Nats-Msg-Id": msg_id},
            )
            assert not ack.duplicate
    async with as_node(hub, "MEX") as mex:
        await attachments.upload(mex.nc, "MEX", ["USA"], sent)
    async with as_node(hub, "USA") as usa:
        got = await attachments.fetch(
            usa.nc, "USA", "MEX", sent.manifest, AttachmentStore(tmp_path / "USA")
        )
    assert got.read_bytes() == sent.path.read_bytes()
