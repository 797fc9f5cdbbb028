"""A message with attachments between running nodes: the receipt waits for the files and names
them, an offline recipient fetches them later, a missing one is refused with its reason code."""

from __future__ import annotations

import os
from base64 import urlsafe_b64encode
from pathlib import Path

import nats

from schemas import HandlingCode
from schemas.protocol import DeliveryReceipt
from schemas.registry import example_body
from services.core import subjects
from services.hub.credentials import PROVISION_USER
from services.node.app import NodeRuntime
from services.node.attachment_flow import (
    MISSING_ATTEMPTS,
    attachment_store,
    send_with_attachments,
)
from tests.support.attachments import segments_at_hub
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node


def photo(tmp_path: Path, size: int = 200_000) -> Path:
    path = tmp_path / "markings-serial.png"
    path.write_bytes(os.urandom(size))
    return path


async def send(mex: NodeRuntime, to: list[str], files: list[Path]) -> str:
    header = await send_with_attachments(
        mex.settings, mex.core, example_body("info.trafficking_routes"), to, files,
        handling=HandlingCode.H2, case_id="FGR-ATT-1",
    )  # fmt: skip
    mex.outbox.wake()
    return header.msg_id


def receipt_of(node: NodeRuntime, msg_id: str, recipient: str) -> DeliveryReceipt:
    for m in node.store.messages(direction="in", include_protocol=True):
        if m.kind == "protocol.receipt" and m.sender == recipient and m.in_reply_to == msg_id:
            body = node.core.open_stored(m).body
            assert isinstance(body, DeliveryReceipt)
            return body
    raise AssertionError("no receipt")


async def test_the_receipt_names_the_attachments_once_fetched_and_the_sender_drops_them(
    hub: Hub, tmp_path: Path
) -> None:
    source = photo(tmp_path)
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        msg_id = await send(mex, ["USA", "COL"], [source])
        await eventually(lambda: delivered_to(mex, msg_id) == {"USA"}, what="USA's receipt")
        _, opened = usa.core.read(msg_id, officer="agent.smith")
        (manifest,) = opened.body.attachments
        assert receipt_of(mex, msg_id, "USA").attachments_sha256 == [manifest.ciphertext_sha256]
        out = tmp_path / "saved.png"
        attachment_store(usa.settings).save_plaintext(manifest, out)
        assert out.read_bytes() == source.read_bytes()
        assert manifest.name == "markings-serial.png" and manifest.media_type == "image/png"
        # the node records the purge once the hub has made it: waiting for the record first
        await eventually(
            lambda: mex.store.attachment_purges.state(msg_id, "USA") == "purged",
            what="MEX's purge of USA's copy",
        )
        assert await _purged(hub, "USA")
        assert await segments_at_hub(hub, "MEX", "COL") > 0  # COL, offline, has not fetched yet
        # COL was offline during the upload: it fetches when it comes
        async with running_node(hub, "COL", tmp_path) as col:
            await eventually(lambda: delivered_to(mex, msg_id) == {"USA", "COL"}, what="COL")
            assert attachment_store(col.settings).has(manifest)
            await eventually(lambda: _purged(hub, "COL"), what="COL's copy dropped at the hub")
        assert await segments_at_hub(hub, "MEX") == 0


async def _purged(hub: Hub, recipient: str) -> bool:
    return await segments_at_hub(hub, "MEX", recipient) == 0


async def _purge_segments(hub: Hub, subject: str) -> None:
    """Take segments off MEX's stream at the hub, as its provisioning user may."""
    nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.user_seed("MEX", PROVISION_USER)))
    try:
        await nc.jetstream().purge_stream(subjects.attachment_stream("MEX"), subject=subject)
    finally:
        await nc.close()


async def test_a_missing_attachment_is_refused_quarantined_and_told_to_the_sender(
    hub: Hub, tmp_path: Path
) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex:
        msg_id = await send(mex, ["USA"], [photo(tmp_path)])
        await eventually(lambda: mex.store.recipient_statuses(msg_id)[0].state == "sent")
        # the object is lost at the hub before USA fetches it (its retention ran out, say)
        await _purge_segments(hub, "attach.>")
        async with running_node(hub, "USA", tmp_path) as usa:
            await eventually(
                lambda: any(r["reason"] == "attachment_missing" and r["quarantined"]
                            for r in usa.store.rejections()),
                what="USA refuses and quarantines it",
            )  # fmt: skip
            status = usa.store.attachment_fetches.status(msg_id)
            assert status is not None and status[:2] == ("refused", "attachment_missing")
        await eventually(
            lambda: mex.store.recipient_statuses(msg_id)[0].reason == "attachment_missing",
            what="MEX learns why",
        )


async def test_a_segment_not_yet_at_the_replica_asked_is_asked_again_not_refused(
    hub: Hub, tmp_path: Path
) -> None:
    """On a three-server hub a direct get may reach a replica that has not yet applied what the
    sender's PubAck confirmed, and answers 'not found'. USA asks again later instead of refusing
    the message for good; once the segments are there, it fetches them and sends its receipt.
    (Here the segments are taken off the hub and put back, which that replica looks like.)"""
    async with running_node(hub, "MEX", tmp_path) as mex:
        msg_id = await send(mex, ["USA"], [photo(tmp_path)])
        await eventually(lambda: mex.store.recipient_statuses(msg_id)[0].state == "sent")
        nc = await nats.connect(hub.url, nkeys_seed=str(hub.home.user_seed("MEX", PROVISION_USER)))
        js = nc.jetstream()
        stream = subjects.attachment_stream("MEX")
        info = await js.stream_info(stream)
        seqs = range(info.state.first_seq, info.state.last_seq + 1)
        held = [await js.get_msg(stream, seq) for seq in seqs]
        assert held
        await js.purge_stream(stream)
        # the next attempt far enough away that the test, not a timer, decides when it comes
        async with running_node(hub, "USA", tmp_path, retry_initial_s=600.0) as usa:
            await eventually(
                lambda: usa.store.attachment_fetches.status(msg_id) == (
                    "pending", None, "segment_not_found"),
                what="USA's first fetch finds no segment and stays pending",
            )  # fmt: skip
            assert not usa.store.rejections()
            for m in held:
                await js.publish(m.subject or "", m.data or b"", headers=m.headers)
            usa.store.attachment_fetches.retry(msg_id, 0.0, "segments back")  # due now
            usa.attachments.wake()
            await eventually(lambda: delivered_to(mex, msg_id) == {"USA"}, what="USA's receipt")
            assert usa.store.attachment_fetches.status(msg_id) == ("fetched", None, None)
        await nc.close()


async def test_not_found_is_believed_only_after_the_grace_however_often_asked(
    hub: Hub, tmp_path: Path
) -> None:
    """The hub keeps saying "not there": USA asks again and again, and does not refuse before
    attachment_missing_grace_s has passed, however many times it asked."""
    async with running_node(hub, "MEX", tmp_path) as mex:
        msg_id = await send(mex, ["USA"], [photo(tmp_path)])
        await eventually(lambda: mex.store.recipient_statuses(msg_id)[0].state == "sent")
        await _purge_segments(hub, "attach.USA.MEX.>")
        async with running_node(hub, "USA", tmp_path, attachment_missing_grace_s=600.0) as usa:
            await eventually(
                lambda: usa.store.attachment_fetches.asked(msg_id)[0] >= 2 * MISSING_ATTEMPTS,
                what="USA asking again and again",
            )
            _, since = usa.store.attachment_fetches.asked(msg_id)
            assert since is not None  # the first "not there", kept
            assert usa.store.attachment_fetches.status(msg_id) == (
                "pending", None, "segment_not_found"
            )  # fmt: skip
            assert not usa.store.rejections()


async def test_a_refused_message_leaves_nothing_it_half_fetched(hub: Hub, tmp_path: Path) -> None:
    """MEX stores all but the last segment of a file (a sender may purge its own stream at will,
    and store again): USA fetches what is there, refuses the message as attachment_missing, and
    keeps nothing of it, so the same trick again and again cannot fill its disk."""
    async with running_node(hub, "MEX", tmp_path) as mex:
        source = photo(tmp_path, size=2_500_000)  # three segments
        msg_id = await send(mex, ["USA"], [source])
        await eventually(lambda: mex.store.recipient_statuses(msg_id)[0].state == "sent")
        digest = mex.core.open_stored(mex.store.message(msg_id)).body.attachments[0]  # type: ignore[arg-type]
        await _purge_segments(
            hub, subjects.attachment_chunk_subject("USA", "MEX", digest.ciphertext_sha256, 2)
        )
        async with running_node(hub, "USA", tmp_path) as usa:
            await eventually(
                lambda: (usa.store.attachment_fetches.status(msg_id) or ("",))[0] == "refused",
                what="USA refuses it",
            )
            held = list(attachment_store(usa.settings).root.iterdir())
            assert held == [], held


async def test_files_over_the_recipients_limit_are_refused_before_any_is_fetched(
    hub: Hub, tmp_path: Path
) -> None:
    """The second file of a message is over USA's limit: USA refuses the message as
    attachment_too_large without fetching the first (a refused message's files are never
    shown, so fetching them would only fill the disk)."""
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    small.write_bytes(os.urandom(100_000))
    large.write_bytes(os.urandom(500_000))
    async with running_node(hub, "MEX", tmp_path) as mex:
        msg_id = await send(mex, ["USA"], [small, large])
        async with running_node(hub, "USA", tmp_path, attachment_max_bytes=300_000) as usa:
            await eventually(
                lambda: (
                    usa.store.attachment_fetches.status(msg_id) is not None
                    and usa.store.attachment_fetches.status(msg_id)[:2]  # type: ignore[index]
                    == ("refused", "attachment_too_large")
                ),
                what="USA refuses it as too large",
            )
            root = attachment_store(usa.settings).root
            assert not root.exists() or list(root.iterdir()) == []


async def test_a_manifest_naming_a_file_held_here_under_another_key_is_refused(
    hub: Hub, tmp_path: Path
) -> None:
    """COL, a co-recipient of MEX's photograph, knows its digest: its own message naming that
    digest under a key of its choosing is refused as attachment_corrupt, not answered with a
    receipt that would tell COL that USA holds MEX's file."""
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        msg_id = await send(mex, ["USA"], [photo(tmp_path)])
        await eventually(lambda: delivered_to(mex, msg_id) == {"USA"}, what="USA's receipt")
        stored = mex.store.message(msg_id)
        assert stored is not None
        (real,) = mex.core.open_stored(stored).body.attachments
        forged = real.model_copy(update={"key": urlsafe_b64encode(os.urandom(32)).decode()[:43]})
        body = example_body("info.trafficking_routes").model_copy(update={"attachments": [forged]})
        async with running_node(hub, "COL", tmp_path) as col:
            h = col.core.compose(body, ["USA"], handling=HandlingCode.H1)
            col.outbox.wake()
            await eventually(
                lambda: (
                    (usa.store.attachment_fetches.status(h.msg_id) or ("",))[:2]
                    == ("refused", "attachment_corrupt")
                ),
                what="USA refuses COL's message",
            )
            await eventually(
                lambda: col.store.recipient_statuses(h.msg_id)[0].reason == "attachment_corrupt",
                what="COL told of the refusal, not of a receipt",
            )
        assert attachment_store(usa.settings).has(real)  # MEX's file, still USA's


async def test_the_attachment_receiver_is_woken_by_messages_with_attachments_only(
    hub: Hub, tmp_path: Path
) -> None:
    # it queries its tables each time it is woken: after every message stored, that was a round
    # for each message without attachments too (3 % of a node's time at half make bench's peak)
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        woken: list[str] = []
        wake = usa.attachments.wake

        def counted() -> None:
            woken.append("wake")
            wake()

        usa.attachments.wake = counted  # type: ignore[method-assign]
        plain = [
            mex.core.compose(example_body("info.trafficking_routes"), ["USA"],
                             handling=HandlingCode.H1).msg_id
            for _ in range(3)
        ]  # fmt: skip
        mex.outbox.wake()
        await eventually(lambda: all(delivered_to(mex, m) == {"USA"} for m in plain),
                         what="USA's receipts")  # fmt: skip
        assert woken == []
        msg_id = await send(mex, ["USA"], [photo(tmp_path)])
        await eventually(lambda: delivered_to(mex, msg_id) == {"USA"}, what="the fetch's receipt")
        assert woken  # it was woken for this one (its fetch, then the receipt queued after)
