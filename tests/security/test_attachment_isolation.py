"""Attachment isolation by the broker's real permissions (docs/envelope.md section 13.4).

Each state stores what it sends in its own stream, ``ATTACH_<sender>``, and exports to each
recipient alone direct gets of the subjects addressed to it. A recipient can therefore read its
own objects and nothing else of the sender's stream: not another recipient's objects, not the
stream's info, not a consumer, not a purge; and no state can write into another's stream.

As in test_isolation.py, each denial is checked as the server's permissions violation for that
very subject (the node's user) or as an account that has no route to it at all (the account's
unrestricted provisioning user: what the exports alone allow), next to the permitted act that
does work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nats.errors import NoRespondersError, TimeoutError
from nats.js.errors import NoStreamResponseError

from services.core import connection, subjects
from services.core.attachments import CHUNK_SIZE
from services.hub.credentials import PROVISION_USER
from services.node import attachments
from services.node.attachments import AttachmentStore
from tests.security.test_isolation import as_node
from tests.support.attachments import segments_at_hub
from tests.support.hub import Hub

pytestmark = pytest.mark.asyncio

NO_ROUTE = (NoRespondersError, TimeoutError)


def prepared(tmp_path: Path, state: str, size: int = 2 * CHUNK_SIZE) -> attachments.Prepared:
    src = tmp_path / f"{state}-{size}.bin"
    src.write_bytes(os.urandom(size))
    return AttachmentStore(tmp_path / state).prepare(src)


def read_subject(sender: str, recipient: str, object_id: str, index: int = 0) -> str:
    """The direct get, as a recipient's account imports it, of one segment."""
    chunk = subjects.attachment_chunk_subject(recipient, sender, object_id, index)
    stream = subjects.attachment_stream(sender)
    return f"{subjects.attachment_api(sender)}.DIRECT.GET.{stream}.{chunk}"


async def test_a_recipient_reads_only_the_objects_addressed_to_it(hub: Hub, tmp_path: Path) -> None:
    for_usa, for_col = prepared(tmp_path, "MEX"), prepared(tmp_path, "MEX", CHUNK_SIZE)
    async with as_node(hub, "MEX") as mex:
        await attachments.upload(mex.nc, "MEX", ["USA"], for_usa)
        await attachments.upload(mex.nc, "MEX", ["COL"], for_col)
    usa_oid = for_usa.manifest.ciphertext_sha256
    async with as_node(hub, "COL") as col:
        # USA's object, through the prefix COL reads MEX's stream under
        stolen = read_subject("MEX", "USA", usa_oid)
        with pytest.raises(NO_ROUTE):
            await col.nc.request(stolen, b"", timeout=1)
        await col.violation(stolen)
        # what COL may do: read its own object
        await attachments.fetch(col.nc, "COL", "MEX", for_col.manifest, AttachmentStore(tmp_path))
    seed = hub.home.user_seed("COL", PROVISION_USER)
    async with connection.connect(hub.url, seed) as nc:  # COL's account, no user permission
        # no import routes a get of USA's subject, nor a bare get by sequence, nor MEX's stream
        # API under COL's own JetStream
        for subject, body in (
            (stolen, b""),
            (f"{subjects.attachment_api('MEX')}.DIRECT.GET.ATTACH_MEX", b'{"seq": 1}'),
        ):
            with pytest.raises(NO_ROUTE):
                await nc.request(subject, body, timeout=1)
        with pytest.raises(NO_ROUTE):
            await nc.jetstream(timeout=1).get_msg(
                subjects.attachment_stream("MEX"),
                subject=subjects.attachment_chunk_subject("USA", "MEX", usa_oid, 0),
                direct=True,
            )
        # on the subject it was granted, a body asking for another subject or a sequence is
        # refused by the server itself: the key in the API subject is the only one read
        col_oid = for_col.manifest.ciphertext_sha256
        own = read_subject("MEX", "COL", col_oid)
        for ask in (
            {"last_by_subj": subjects.attachment_chunk_subject("USA", "MEX", usa_oid, 0)},
            {"seq": 1},
            {"next_by_subj": "attach.USA.>", "seq": 1},
            {"multi_last": ["attach.USA.>"]},
        ):
            reply = await nc.request(own, json.dumps(ask).encode(), timeout=5)
            assert reply.headers is not None and reply.headers.get("Status") == "408"
            assert not reply.data
        reply = await nc.request(own, b"", timeout=5)
        assert reply.headers is not None
        assert reply.headers["Nats-Subject"] == subjects.attachment_chunk_subject(
            "COL", "MEX", col_oid, 0
        )
        assert len(reply.data) == CHUNK_SIZE + 16


async def test_a_recipient_cannot_inspect_consume_or_purge_the_senders_stream(
    hub: Hub, tmp_path: Path
) -> None:
    sent = prepared(tmp_path, "MEX")
    async with as_node(hub, "MEX") as mex:
        await attachments.upload(mex.nc, "MEX", ["USA", "COL"], sent)
    api = subjects.attachment_api("MEX")
    stream = subjects.attachment_stream("MEX")
    forbidden = [
        f"{api}.STREAM.INFO.{stream}",
        f"{api}.STREAM.PURGE.{stream}",
        f"{api}.STREAM.NAMES",
        f"{api}.CONSUMER.CREATE.{stream}",
        f"{api}.STREAM.MSG.GET.{stream}",
        f"{api}.STREAM.MSG.DELETE.{stream}",
    ]
    async with as_node(hub, "COL") as col:
        for subject in forbidden:
            with pytest.raises(NO_ROUTE):
                await col.nc.request(subject, b"{}", timeout=1)
            await col.violation(subject)
        # nor under its own JetStream API, where MEX's stream does not exist for it
        purge = subjects.stream_purge_subject(stream)
        with pytest.raises(NO_ROUTE):
            await col.nc.request(purge, b"{}", timeout=1)
        await col.violation(purge)
        # nor by subscribing to the subjects the segments are published on
        await col.nc.subscribe("attach.COL.MEX.>")
        await col.violation("attach.COL.MEX.>")
    async with connection.connect(hub.url, hub.home.user_seed("COL", PROVISION_USER)) as nc:
        for subject in forbidden:
            with pytest.raises(NO_ROUTE):
                await nc.request(subject, b"{}", timeout=1)
    assert await segments_at_hub(hub, "MEX") == 2  # one segment each for USA and COL
    async with as_node(hub, "USA") as usa:
        await attachments.fetch(usa.nc, "USA", "MEX", sent.manifest, AttachmentStore(tmp_path))


async def test_no_state_can_write_into_another_states_attachment_stream(
    hub: Hub, tmp_path: Path
) -> None:
    sent = prepared(tmp_path, "MEX")
    oid = sent.manifest.ciphertext_sha256
    async with as_node(hub, "MEX") as mex:
        await attachments.upload(mex.nc, "MEX", ["USA"], sent)
    forged = subjects.attachment_chunk_subject("USA", "MEX", oid, 0)
    async with as_node(hub, "COL") as col:
        # over MEX's object, under MEX's name: COL's node publishes only its own objects
        await col.nc.publish(forged, b"forged segment")
        await col.violation(forged)
        # as COL, into MEX's stream: it stores into its own, which MEX's recipients never read
        own = prepared(tmp_path, "COL", CHUNK_SIZE)
        await attachments.upload(col.nc, "COL", ["USA"], own)
    async with connection.connect(hub.url, hub.home.user_seed("COL", PROVISION_USER)) as nc:
        # COL's account: no stream of its own captures MEX's subjects, and none of MEX's is
        # reachable from it
        with pytest.raises(NoStreamResponseError):
            await nc.jetstream(timeout=1).publish(forged, b"forged segment")
    usa_store = AttachmentStore(tmp_path / "USA")
    async with as_node(hub, "USA") as usa:  # MEX's object is intact, and COL's is COL's
        await attachments.fetch(usa.nc, "USA", "MEX", sent.manifest, usa_store)
        await attachments.fetch(usa.nc, "USA", "COL", own.manifest, usa_store)
    assert usa_store.has(sent.manifest) and usa_store.has(own.manifest)
    assert await segments_at_hub(hub, "MEX") == 1


async def test_a_state_cannot_store_attachments_under_another_states_name(
    hub: Hub, tmp_path: Path
) -> None:
    """The sender's code in the subject is the stream's owner: MEX cannot store an object for
    USA that USA's node would take for COL's."""
    sent = prepared(tmp_path, "MEX")
    async with as_node(hub, "MEX") as mex:
        with pytest.raises(attachments.AttachmentTransferError):
            await attachments.upload(mex.nc, "COL", ["USA"], sent, timeout_s=1)
        await mex.violation(
            subjects.attachment_chunk_subject("USA", "COL", sent.manifest.ciphertext_sha256, 0)
        )
    assert await segments_at_hub(hub, "COL") == 0


async def test_a_sender_cannot_read_a_recipients_attachment_stream(
    hub: Hub, tmp_path: Path
) -> None:
    """USA stores a file for COL: MEX, which USA also writes to, reads none of it."""
    for_col, for_mex = prepared(tmp_path, "USA"), prepared(tmp_path, "USA", CHUNK_SIZE)
    async with as_node(hub, "USA") as usa:
        await attachments.upload(usa.nc, "USA", ["COL"], for_col)
        await attachments.upload(usa.nc, "USA", ["MEX"], for_mex)
    stolen = read_subject("USA", "COL", for_col.manifest.ciphertext_sha256)
    async with as_node(hub, "MEX") as mex:
        with pytest.raises(NO_ROUTE):
            await mex.nc.request(stolen, b"", timeout=1)
        await mex.violation(stolen)
        await attachments.fetch(mex.nc, "MEX", "USA", for_mex.manifest, AttachmentStore(tmp_path))
    async with connection.connect(hub.url, hub.home.user_seed("MEX", PROVISION_USER)) as nc:
        with pytest.raises(NO_ROUTE):
            await nc.request(stolen, b"", timeout=1)
