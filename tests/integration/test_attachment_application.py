"""Attachments through the application layer (what the CLI and the officers' console call), over
real nodes and a real hub: a tracing request with its photograph of markings, listed and saved
by the recipient; mistakes reported as codes before any file is sealed or uploaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from schemas.attachment import AttachmentManifest
from schemas.registry import example_body
from services.core.attachments import AttachmentError, AttachmentFault
from services.node import attachments
from services.node.app import NodeRuntime
from services.node.application import Application, ApplicationError, OfficerIdentity, open_node
from services.node.application.models import Queued, SaveAttachment, SendMessage
from services.node.application.procedure_models import FileTracingRequest, ForwardMessage
from services.node.attachments import AttachmentStore
from tests.security.test_attachment_isolation import NO_ROUTE, read_subject
from tests.security.test_isolation import as_node
from tests.support.attachments import segments_at_hub
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node

MEX_OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")
USA_OFFICER = OfficerIdentity(name="Kim Lee", position="Agent", agency="ATF")
COL_OFFICER = OfficerIdentity(name="Luz Gómez", position="Investigator", agency="DIJIN")


def tracing_body() -> dict[str, Any]:
    body = example_body("tracing.request").model_dump(mode="json")
    body.pop("requesting_officer")  # the layer fills it from the officer acting
    return body


def held(home: Path) -> list[Path]:
    """The node's sealed copies of attachments (and pending uploads' records)."""
    folder = home / "attachments"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def applications(hub: Hub, tmp_path: Path, *parties: str) -> list[Application]:
    """Each party's node home in ``tmp_path``, and the application layer over it."""
    for party in parties:
        hub.node_settings(party, tmp_path).save()
    return [open_node(tmp_path / party, {}) for party in parties]


async def test_a_tracing_request_carries_its_photograph_to_the_state_asked(
    hub: Hub, tmp_path: Path
) -> None:
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(100_000))
    mex, usa = applications(hub, tmp_path, "MEX", "USA")
    seen: list[tuple[int, int]] = []
    try:
        async with (
            running_node(hub, "MEX", tmp_path) as mex_node,
            running_node(hub, "USA", tmp_path),
        ):
            cmd = FileTracingRequest(officer=MEX_OFFICER, body=tracing_body(), to=["USA"],
                                     priority="routine", attachments=[photo])  # fmt: skip
            filed = await mex.send_attached(cmd, lambda done, total: seen.append((done, total)))
            assert filed.sealed and filed.recipients == ["USA"]
            assert [n.params for n in filed.notices if n.code == "attachments.sent"] == [
                {"names": ["markings.png"]}
            ]
            assert seen and seen[-1][0] == seen[-1][1]  # the progress reached the end
            mex_node.outbox.wake()
            await eventually(lambda: delivered_to(mex_node, filed.msg_id) == {"USA"},
                             what="USA's receipt, after it fetched the photograph")  # fmt: skip
            [view] = usa.attachments(filed.short_id, USA_OFFICER)
            assert (view.name, view.media_type, view.size, view.state) == (
                "markings.png", "image/png", 100_000, "held"
            )  # fmt: skip
            out = tmp_path / "saved.png"
            save = SaveAttachment(officer=USA_OFFICER, msg_id=filed.short_id,
                                  name="markings.png", out=out)  # fmt: skip
            saved = usa.save_attachment(save)
            assert saved.msg_id == filed.msg_id and out.read_bytes() == photo.read_bytes()
            with pytest.raises(ApplicationError) as exc:
                usa.save_attachment(save)
            assert exc.value.code == "attachment.out_exists"
            with pytest.raises(ApplicationError) as exc:
                usa.save_attachment(save.model_copy(update={"name": "marking.png"}))
            assert exc.value.code == "attachment.not_found"
            assert exc.value.params["names"] == ["markings.png"]
            # reading the attachments is an opening, recorded under the officer's name
            assert "Kim Lee (Agent, ATF)" in [o for o, *_ in usa.core.store.opens(filed.msg_id)]
    finally:
        mex.close()
        usa.close()


async def test_a_mistake_is_reported_before_any_file_is_sealed_or_uploaded(
    hub: Hub, tmp_path: Path
) -> None:
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(10_000))
    [mex] = applications(hub, tmp_path, "MEX")
    body = example_body("info.trafficking_routes").model_dump(mode="json")
    cmd = SendMessage(officer=MEX_OFFICER, kind="info.trafficking_routes", body=body,
                      to=["ZZZ"], handling="H1", attachments=[photo])  # fmt: skip
    try:
        with pytest.raises(ApplicationError) as exc:
            await mex.send_attached(cmd)
        assert (exc.value.code, exc.value.params["party"]) == ("recipient.unknown", "ZZZ")
        with pytest.raises(ApplicationError) as exc:
            await mex.send_attached(cmd.model_copy(update={"attachments": [tmp_path / "no.png"]}))
        assert exc.value.code == "attachment.no_file"
        assert exc.value.params == {"field": "attachments", "path": str(tmp_path / "no.png")}
        # two files of one name, or one file twice: every recipient would refuse the body
        (tmp_path / "b").mkdir()
        other = tmp_path / "b" / "markings.png"
        other.write_bytes(os.urandom(100))
        for twice in ([photo, other], [photo, photo]):
            with pytest.raises(ApplicationError) as exc:
                await mex.send_attached(
                    cmd.model_copy(update={"to": ["USA"], "attachments": twice})
                )
            assert exc.value.code == "attachment.duplicate"
            assert exc.value.params == {
                "field": "attachments",
                "name": "markings.png",
                "path": str(twice[1]),
            }
        # a file whose size is not what stat said (procfs says 0): refused, nothing left behind
        proc = Path("/proc/version")
        with pytest.raises(ApplicationError) as exc:
            await mex.send_attached(cmd.model_copy(update={"to": ["USA"], "attachments": [proc]}))
        assert (exc.value.code, exc.value.params["path"]) == ("attachment.unreadable", str(proc))
        assert "longer than 0 bytes" in exc.value.params["problem"]
        assert list((tmp_path / "MEX" / "attachments").glob(".sealing-*")) == []
        # a dry run checks everything and names the files, but seals and uploads nothing
        dry = await mex.send_attached(cmd.model_copy(update={"to": ["USA"], "dry_run": True}))
        assert not dry.sealed and dry.preview is not None
        assert [n.params["names"] for n in dry.notices] == [["markings.png"]]
        assert held(tmp_path / "MEX") == []
        assert mex.core.store.messages(direction=None) == []
        with pytest.raises(ValueError, match="send_attached"):
            mex.send(cmd.model_copy(update={"to": ["USA"]}))
    finally:
        mex.close()


async def send_to_usa(mex: Application, mex_node: NodeRuntime, f: Path, handling: str) -> Queued:
    """MEX sends USA a report with ``f`` attached; returns once USA confirmed its copy."""
    body = example_body("info.trafficking_routes").model_dump(mode="json")
    cmd = SendMessage(officer=MEX_OFFICER, kind="info.trafficking_routes", body=body,
                      to=["USA"], handling=handling, attachments=[f])  # fmt: skip
    sent = await mex.send_attached(cmd)
    mex_node.outbox.wake()
    await eventually(lambda: delivered_to(mex_node, sent.msg_id) == {"USA"},
                     what="USA's receipt, after it fetched the file")  # fmt: skip
    return sent


async def test_a_forwarded_message_carries_its_files_from_the_forwarders_own_stream(
    hub: Hub, tmp_path: Path
) -> None:
    # Art. XII forwarding: USA stores its own verified copy (same key, same digest) in its own
    # stream for COL before the copy is queued; COL reads it there, verifies it, and its receipt
    # purges it; MEX's stream plays no part, and COL still reads nothing of it
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(100_000))
    mex, usa, col = applications(hub, tmp_path, "MEX", "USA", "COL")
    try:
        async with (
            running_node(hub, "MEX", tmp_path) as mex_node,
            running_node(hub, "USA", tmp_path) as usa_node,
        ):
            sent = await send_to_usa(mex, mex_node, photo, "H1")
            assert usa.forwards_files(sent.msg_id)
            forward = ForwardMessage(officer=USA_OFFICER, msg_id=sent.msg_id, to=["COL"])
            with pytest.raises(ValueError, match="forward_attached"):
                usa.forward(forward)  # the files go up first: only through the async call
            fwd = await usa.forward_attached(forward)
            assert fwd.sealed and fwd.recipients == ["COL"]
            assert [n.code for n in fwd.notices] == ["forward.copy_of"]
            # stored for COL in USA's own stream before the copy was queued (COL is not running)
            assert await segments_at_hub(hub, "USA", "COL") == 1
            assert await segments_at_hub(hub, "MEX", "COL") == 0
            copy = usa.core.store.message(fwd.msg_id)
            assert copy is not None and copy.direction == "out"
            [oid] = usa.core.store.sent_attachments.objects(fwd.msg_id)
            assert (tmp_path / "USA" / "attachments" / oid).exists()  # the very same object
            usa_node.outbox.wake()
            async with running_node(hub, "COL", tmp_path):
                await eventually(lambda: delivered_to(usa_node, fwd.msg_id) == {"COL"},
                                 what="COL's receipt, after it fetched the photograph")  # fmt: skip
                out = tmp_path / "at-col.png"
                col.save_attachment(SaveAttachment(officer=COL_OFFICER, msg_id=fwd.msg_id,
                                                   name="markings.png", out=out))  # fmt: skip
                assert out.read_bytes() == photo.read_bytes()
                assert (tmp_path / "COL" / "attachments" / oid).exists()

                async def purged() -> bool:
                    return await segments_at_hub(hub, "USA", "COL") == 0

                await eventually(purged, what="USA's objects for COL purged on COL's receipt")
            assert usa.core.store.attachment_purges.due(float("inf"), 10) == []
        async with as_node(hub, "COL") as conn:
            # what MEX stored for USA, through the import COL reads MEX's stream with: denied
            stolen = read_subject("MEX", "USA", oid)
            with pytest.raises(NO_ROUTE):
                await conn.nc.request(stolen, b"", timeout=1)
            await conn.violation(stolen)
            # and MEX stored nothing for COL: the forward used USA's stream alone
            with pytest.raises(AttachmentError) as missing:
                await attachments.fetch(conn.nc, "COL", "MEX", manifest_of(col, fwd.msg_id),
                                        AttachmentStore(tmp_path / "elsewhere"))  # fmt: skip
            assert missing.value.fault is AttachmentFault.MISSING
    finally:
        mex.close()
        usa.close()
        col.close()


class Interrupted(Exception):
    """The officer stopped the command (Ctrl-C) while its files went up."""


async def test_a_forward_stopped_while_its_files_go_up_resumes_where_it_stopped(
    hub: Hub, tmp_path: Path
) -> None:
    xray = tmp_path / "xray.png"
    xray.write_bytes(os.urandom(6 * 1024 * 1024))  # six segments: two windows of uploads
    mex, usa = applications(hub, tmp_path, "MEX", "USA")
    try:
        async with (
            running_node(hub, "MEX", tmp_path) as mex_node,
            running_node(hub, "USA", tmp_path),
        ):
            sent = await send_to_usa(mex, mex_node, xray, "H1")
            forward = ForwardMessage(officer=USA_OFFICER, msg_id=sent.msg_id, to=["COL"])

            def stop(done: int, total: int) -> None:
                raise Interrupted

            with pytest.raises(Interrupted):  # after the hub acknowledged the first window
                await usa.forward_attached(forward, stop)
            assert await segments_at_hub(hub, "USA", "COL") == attachments.WINDOW
            assert usa.core.store.messages(direction="out") == []  # nothing queued
            seen: list[tuple[int, int]] = []
            fwd = await usa.forward_attached(
                forward, lambda done, total: seen.append((done, total))
            )
            # one window left, not two: the first was not sent again
            assert len(seen) == 1 and seen[0][0] == seen[0][1]
            assert fwd.sealed and await segments_at_hub(hub, "USA", "COL") == 6
    finally:
        mex.close()
        usa.close()


def manifest_of(app: Application, msg_id: str) -> AttachmentManifest:
    message = app.core.store.message(msg_id)
    assert message is not None
    [manifest] = app.core.open_stored(message).body.attachments
    return manifest


async def test_a_message_is_not_forwarded_without_this_nodes_intact_copy_of_its_files(
    hub: Hub, tmp_path: Path
) -> None:
    # what USA does not hold verified (never fetched, refused, lost, altered) it cannot pass on:
    # refused with its code before anything is stored or queued; Art. XII's rules come first,
    # unchanged
    scan = tmp_path / "licence.pdf"
    scan.write_bytes(os.urandom(5_000))
    mex, usa = applications(hub, tmp_path, "MEX", "USA")
    try:
        async with (
            running_node(hub, "MEX", tmp_path) as mex_node,
            running_node(hub, "USA", tmp_path),
        ):
            h2 = await send_to_usa(mex, mex_node, scan, "H2")
            forward = ForwardMessage(officer=USA_OFFICER, msg_id=h2.msg_id, to=["COL"])
            with pytest.raises(ApplicationError) as exc:
                await usa.forward_attached(forward)
            assert exc.value.code == "article12.refused"  # no consent from MEX: nothing stored
            assert await segments_at_hub(hub, "USA") == 0

            h1 = await send_to_usa(mex, mex_node, scan, "H1")
            forward = forward.model_copy(update={"msg_id": h1.msg_id})
            oid = manifest_of(usa, h1.msg_id).ciphertext_sha256
            copy = tmp_path / "USA" / "attachments" / oid
            held = copy.read_bytes()
            copy.unlink()  # lost
            with pytest.raises(ApplicationError) as exc:
                await usa.forward_attached(forward)
            assert exc.value.code == "forward.attachments_not_held"
            # counted, not named: the names are content, and nothing was opened
            assert exc.value.params == {"msg_id": h1.msg_id, "missing": 1, "count": 1}
            copy.write_bytes(held[:-1] + bytes([held[-1] ^ 1]))  # altered at rest
            with pytest.raises(ApplicationError) as exc:
                await usa.forward_attached(forward)
            assert exc.value.code == "forward.attachments_not_held"
            preview = forward.model_copy(update={"dry_run": True})
            with pytest.raises(ApplicationError) as exc:  # a preview makes the same checks
                await usa.forward_attached(preview)
            assert exc.value.code == "forward.attachments_not_held"
            copy.write_bytes(held)  # intact again: the preview passes, and stores nothing
            dry = await usa.forward_attached(preview)
            assert not dry.sealed and dry.recipients == ["COL"]
            assert await segments_at_hub(hub, "USA") == 0
            assert usa.core.store.messages(direction="out") == []  # no copy queued
    finally:
        mex.close()
        usa.close()


async def test_one_file_named_by_two_senders_at_once_is_fetched_once_and_intact(
    hub: Hub, tmp_path: Path
) -> None:
    """MEX sends USA and COL an X-ray; USA forwards it to COL while COL is offline. COL then has
    two messages naming the same file, from two senders, fetched side by side: one download
    writes the file, the other finds it held (and stored by its sender), and the file COL keeps
    is the X-ray, byte for byte."""
    xray = tmp_path / "xray.png"
    xray.write_bytes(os.urandom(6 * 1024 * 1024))
    mex, usa, col = applications(hub, tmp_path, "MEX", "USA", "COL")
    try:
        async with (
            running_node(hub, "MEX", tmp_path) as mex_node,
            running_node(hub, "USA", tmp_path) as usa_node,
        ):
            body = example_body("info.trafficking_routes").model_dump(mode="json")
            cmd = SendMessage(officer=MEX_OFFICER, kind="info.trafficking_routes", body=body,
                              to=["USA", "COL"], handling="H1", attachments=[xray])  # fmt: skip
            sent = await mex.send_attached(cmd)
            mex_node.outbox.wake()
            await eventually(lambda: "USA" in delivered_to(mex_node, sent.msg_id), what="USA")
            forward = ForwardMessage(officer=USA_OFFICER, msg_id=sent.msg_id, to=["COL"])
            fwd = await usa.forward_attached(forward)
            usa_node.outbox.wake()
            async with running_node(hub, "COL", tmp_path):
                await eventually(lambda: delivered_to(mex_node, sent.msg_id) == {"USA", "COL"},
                                 what="COL's receipt to MEX")  # fmt: skip
                await eventually(lambda: delivered_to(usa_node, fwd.msg_id) == {"COL"},
                                 what="COL's receipt to USA")  # fmt: skip
        out = tmp_path / "saved.png"
        col.save_attachment(SaveAttachment(officer=COL_OFFICER, msg_id=fwd.msg_id,
                                           name="xray.png", out=out))  # fmt: skip
        assert out.read_bytes() == xray.read_bytes()
        assert list((tmp_path / "COL" / "attachments").glob("*.part")) == []
    finally:
        mex.close()
        usa.close()
        col.close()
