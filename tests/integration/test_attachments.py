"""Attachments over a real hub: stored segment by segment in the sender's own stream, fetched and
verified by each recipient through the sender's export, resumed after an interruption, refused
when missing or corrupt, purged by the sender."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from services.core import connection, subjects
from services.core.attachments import CHUNK_SIZE, AttachmentError, AttachmentFault
from services.hub.config import Listen
from services.hub.credentials import PROVISION_USER
from services.hub.resources import GIB, Resources
from services.node import attachments
from services.node.attachments import SEGMENT_CHUNKS, AttachmentStore, AttachmentTransferError
from tests.support.attachments import segments_at_hub
from tests.support.hub import Hub, build_hub

#: plaintext bytes of one segment (the unit stored as one message at the hub)
SEGMENT = SEGMENT_CHUNKS * CHUNK_SIZE

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def node_connection(hub: Hub, state: str) -> AsyncIterator[Client]:
    nc = await nats.connect(
        hub.url, nkeys_seed=str(hub.home.node_seed(state)), allow_reconnect=False
    )
    try:
        yield nc
    finally:
        await nc.close()


def a_file(tmp_path: Path, size: int, name: str = "markings.png") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            f.write(block)
            left -= len(block)
    return path


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


async def send_and_receive(hub: Hub, tmp_path: Path, size: int, to: tuple[str, ...]) -> None:
    source = a_file(tmp_path, size)
    prepared = AttachmentStore(tmp_path / "MEX").prepare(source, max_bytes=200 * 2**20)
    seen: list[tuple[int, int]] = []
    async with node_connection(hub, "MEX") as nc:
        await attachments.upload(nc, "MEX", to, prepared, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1]  # the progress reached the whole
    for state in to:
        store = AttachmentStore(tmp_path / state)
        async with node_connection(hub, state) as nc:
            path = await attachments.fetch(
                nc, state, "MEX", prepared.manifest, store, max_bytes=200 * 2**20
            )
        assert sha(path) == prepared.manifest.ciphertext_sha256
        if state != to[0]:
            continue  # the same ciphertext as the first recipient's: decrypted once is enough
        out = tmp_path / f"{state}-out.bin"
        store.save_plaintext(prepared.manifest, out)
        assert out.stat().st_size == size and sha(out) == sha(source)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 10 * 2**20])
async def test_an_attachment_reaches_one_recipient_whole(
    hub: Hub, tmp_path: Path, size: int
) -> None:
    await send_and_receive(hub, tmp_path, size, ("USA",))


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, 10 * 2**20])
async def test_an_attachment_reaches_three_recipients_whole(
    hub_home: Hub, tmp_path: Path, size: int
) -> None:
    hub_home.register("BRA")
    hub_home.start()
    await hub_home.provision()
    await send_and_receive(hub_home, tmp_path, size, ("USA", "COL", "BRA"))


@pytest.mark.slow
async def test_a_100_mib_attachment_reaches_one_recipient_whole(hub: Hub, tmp_path: Path) -> None:
    await send_and_receive(hub, tmp_path, 100 * 2**20, ("USA",))


@pytest.mark.slow
async def test_a_100_mib_attachment_reaches_three_recipients_whole(
    hub_home: Hub, tmp_path: Path
) -> None:
    hub_home.register("BRA")
    # The sender's own stream holds a copy for each recipient (section 13.4): three times
    # 100 MiB in MEX's account, whatever this machine's free disk would give each state.
    hub_home.home.render_config(
        Listen(port=-1), Resources(jetstream_disk=17 * GIB, planned_states=4, state_disk=2 * GIB)
    )
    hub_home.start()
    await hub_home.provision()
    await send_and_receive(hub_home, tmp_path, 100 * 2**20, ("USA", "COL", "BRA"))


async def test_an_interrupted_upload_resumes_after_what_the_hub_stored(
    hub: Hub, tmp_path: Path
) -> None:
    size = 10 * SEGMENT + 5  # eleven segments, the last one of a single chunk
    prepared = AttachmentStore(tmp_path / "MEX").prepare(a_file(tmp_path, size))

    async with node_connection(hub, "MEX") as nc:

        def cut(done: int, total: int) -> None:
            if done >= total // 2:
                raise ConnectionResetError("link cut")

        with pytest.raises(ConnectionResetError):
            await attachments.upload(nc, "MEX", ["USA"], prepared, progress=cut)
    stored_before = await segments_at_hub(hub, "MEX", "USA")
    assert 0 < stored_before < 11
    published: list[int] = []
    async with node_connection(hub, "MEX") as nc:
        await attachments.upload(
            nc, "MEX", ["USA"], prepared, progress=lambda d, t: published.append(d)
        )
    # resumed: the first report already counts what the first attempt stored
    assert published[0] > stored_before * SEGMENT
    assert await segments_at_hub(hub, "MEX", "USA") == 11
    async with node_connection(hub, "USA") as nc:
        await attachments.fetch(
            nc, "USA", "MEX", prepared.manifest, AttachmentStore(tmp_path / "USA")
        )


async def test_an_interrupted_download_resumes_and_verifies_what_it_had(
    hub: Hub, tmp_path: Path
) -> None:
    size = 10 * SEGMENT
    source = a_file(tmp_path, size)
    prepared = AttachmentStore(tmp_path / "MEX").prepare(source)
    async with node_connection(hub, "MEX") as nc:
        await attachments.upload(nc, "MEX", ["USA"], prepared)
    store = AttachmentStore(tmp_path / "USA")
    async with node_connection(hub, "USA") as nc:

        def cut(done: int, total: int) -> None:
            if done >= total // 2:
                raise ConnectionResetError("link cut")

        with pytest.raises(ConnectionResetError):
            await attachments.fetch(nc, "USA", "MEX", prepared.manifest, store, progress=cut)
        part = store.partial(prepared.manifest.ciphertext_sha256, "MEX")
        assert part.exists() and part.stat().st_size > 0
        with part.open("ab") as f:
            f.write(b"half a chunk")  # a crash in the middle of a write
        reported: list[int] = []
        await attachments.fetch(
            nc, "USA", "MEX", prepared.manifest, store, progress=lambda d, t: reported.append(d)
        )
    assert reported[0] > size // 2  # it went on from where it stopped
    out = tmp_path / "out.bin"
    store.save_plaintext(prepared.manifest, out)
    assert sha(out) == sha(source)


async def test_a_missing_attachment_is_refused_as_missing(hub: Hub, tmp_path: Path) -> None:
    prepared = AttachmentStore(tmp_path / "MEX").prepare(a_file(tmp_path, 3 * CHUNK_SIZE))
    async with node_connection(hub, "USA") as nc:
        with pytest.raises(AttachmentError) as err:
            await attachments.fetch(
                nc, "USA", "MEX", prepared.manifest, AttachmentStore(tmp_path / "USA")
            )
    assert err.value.fault is AttachmentFault.MISSING


async def test_a_chunk_stored_under_another_object_is_refused_as_corrupt(
    hub: Hub, tmp_path: Path
) -> None:
    """A sender (or a broken hub) that stores other bytes under an object's name: the recipient
    detects it at the first wrong chunk and keeps nothing of it."""
    store = AttachmentStore(tmp_path / "MEX")
    good = store.prepare(a_file(tmp_path, 2 * CHUNK_SIZE, "a.png"))
    other = store.prepare(a_file(tmp_path, 2 * CHUNK_SIZE, "b.png"))
    async with node_connection(hub, "MEX") as nc:
        await attachments.upload(nc, "MEX", ["USA"], other)
        js = nc.jetstream()
        subject = subjects.attachment_chunk_subject(
            "USA", "MEX", good.manifest.ciphertext_sha256, 0
        )
        await js.publish(subject, other.path.read_bytes())
    usa = AttachmentStore(tmp_path / "USA")
    async with node_connection(hub, "USA") as nc:
        with pytest.raises(AttachmentError) as err:
            await attachments.fetch(nc, "USA", "MEX", good.manifest, usa)
    assert err.value.fault is AttachmentFault.CORRUPT
    assert not usa.has(good.manifest)
    assert not list(usa.root.glob("*.part"))


async def test_an_attachment_over_the_recipients_limit_is_refused_unfetched(
    hub: Hub, tmp_path: Path
) -> None:
    prepared = AttachmentStore(tmp_path / "MEX").prepare(a_file(tmp_path, 2 * CHUNK_SIZE))
    async with node_connection(hub, "USA") as nc:
        with pytest.raises(AttachmentError) as err:
            await attachments.fetch(
                nc,
                "USA",
                "MEX",
                prepared.manifest,
                AttachmentStore(tmp_path / "USA"),
                max_bytes=CHUNK_SIZE,
            )
    assert err.value.fault is AttachmentFault.TOO_LARGE


async def test_a_sender_refuses_a_file_over_its_limit(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError) as err:
        AttachmentStore(tmp_path / "MEX").prepare(a_file(tmp_path, 11), max_bytes=10)
    assert err.value.fault is AttachmentFault.TOO_LARGE


async def test_the_sender_purges_one_recipients_objects_and_keeps_the_others(
    hub: Hub, tmp_path: Path
) -> None:
    prepared = AttachmentStore(tmp_path / "MEX").prepare(a_file(tmp_path, 3 * CHUNK_SIZE))
    async with node_connection(hub, "MEX") as nc:
        await attachments.upload(nc, "MEX", ["USA", "COL"], prepared)
        await attachments.purge(nc, "MEX", "USA", prepared.manifest.ciphertext_sha256)
    assert await segments_at_hub(hub, "MEX", "USA") == 0
    assert await segments_at_hub(hub, "MEX", "COL") == 1  # COL's copy (one segment) waits for COL
    async with node_connection(hub, "COL") as nc:
        await attachments.fetch(
            nc, "COL", "MEX", prepared.manifest, AttachmentStore(tmp_path / "COL")
        )


async def test_an_upload_to_a_full_stream_fails_in_one_line_and_resumes(
    hub: Hub, tmp_path: Path
) -> None:
    """The sender's own cap: its stream refuses segments past its size."""
    seed = hub.home.user_seed("MEX", PROVISION_USER)
    admin = await nats.connect(hub.url, nkeys_seed=str(seed))
    try:
        js = admin.jetstream()
        config = (await js.stream_info(subjects.attachment_stream("MEX"))).config
        config.max_bytes = 10 * CHUNK_SIZE
        await js.update_stream(config)
        prepared = AttachmentStore(tmp_path / "MEX").prepare(a_file(tmp_path, 20 * CHUNK_SIZE))
        async with node_connection(hub, "MEX") as nc:
            with pytest.raises(AttachmentTransferError, match="did not store segment"):
                await attachments.upload(nc, "MEX", ["USA"], prepared, timeout_s=2)
        config.max_bytes = 64 * CHUNK_SIZE
        await js.update_stream(config)
    finally:
        await admin.close()
    async with node_connection(hub, "MEX") as nc:
        await attachments.upload(nc, "MEX", ["USA"], prepared)
    assert await segments_at_hub(hub, "MEX", "USA") == 2  # 20 chunks: two segments


async def test_provisioning_clears_what_the_former_layout_left_in_a_states_stream(
    tmp_path: Path,
) -> None:
    """Before the sender's streams, ATTACH_USA held what the others stored for USA
    (``attach.USA.>``). Provisioning the present layout over it changes the stream's subjects in
    place; it also purges those objects, which nothing reads any more and which would take USA's
    own room until their retention."""
    hub = build_hub(tmp_path, ("MEX", "USA"))
    hub.start()
    try:
        await hub.provision()
        seed = hub.home.user_seed("USA", PROVISION_USER)
        stream = subjects.attachment_stream("USA")
        async with connection.connect(hub.url, seed) as nc:
            js = nc.jetstream()
            config = (await js.stream_info(stream)).config
            config.subjects = ["attach.USA.>"]  # the former layout
            await js.update_stream(config)
            for i in range(3):
                await js.publish(f"attach.USA.MEX.{'a' * 64}.{i}", os.urandom(1024))
            assert (await js.stream_info(stream)).state.messages == 3
        await hub.provision()
        async with connection.connect(hub.url, seed) as nc:
            info = await nc.jetstream().stream_info(stream)
        assert info.config.subjects == [subjects.attachment_filter("USA")]
        assert info.state.messages == 0
    finally:
        hub.stop()
