"""Attachments through the application layer (what the CLI and the officers' console call), over
real nodes and a real hub: a tracing request with its photograph of markings, listed and saved
by the recipient; mistakes reported as codes before any file is sealed or uploaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from schemas.registry import example_body
from services.node.application import Application, ApplicationError, OfficerIdentity, open_node
from services.node.application.models import SaveAttachment, SendMessage
from services.node.application.procedure_models import FileTracingRequest, ForwardMessage
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node

MEX_OFFICER = OfficerIdentity(name="Ana Ruiz", position="Analyst", agency="FGR")
USA_OFFICER = OfficerIdentity(name="Kim Lee", position="Agent", agency="ATF")


def tracing_body() -> dict[str, Any]:
    body = example_body("tracing.request").model_dump(mode="json")
    body.pop("requesting_officer")  # the layer fills it from the officer acting
    return body


def held(home: Path) -> list[Path]:
    """The node's sealed copies of attachments (and pending uploads' records)."""
    folder = home / "attachments"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def test_a_tracing_request_carries_its_photograph_to_the_state_asked(
    hub: Hub, tmp_path: Path
) -> None:
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(100_000))
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path).save()
    mex, usa = open_node(tmp_path / "MEX", {}), open_node(tmp_path / "USA", {})
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


def mexico(hub: Hub, tmp_path: Path) -> Application:
    hub.node_settings("MEX", tmp_path).save()
    return open_node(tmp_path / "MEX", {})


async def test_a_mistake_is_reported_before_any_file_is_sealed_or_uploaded(
    hub: Hub, tmp_path: Path
) -> None:
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(10_000))
    mex = mexico(hub, tmp_path)
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


async def test_a_message_with_attachments_is_not_forwarded_to_a_state_that_could_not_fetch_them(
    hub: Hub, tmp_path: Path
) -> None:
    # Art. XII forwarding re-seals the body for new states; its files are stored at the hub for
    # the original's recipients only, so the copy is refused here with its code, never sent to be
    # refused there as attachment_missing
    scan = tmp_path / "licence.pdf"
    scan.write_bytes(os.urandom(5_000))
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path).save()
    mex, usa = open_node(tmp_path / "MEX", {}), open_node(tmp_path / "USA", {})
    body = example_body("info.trafficking_routes").model_dump(mode="json")
    try:
        async with (
            running_node(hub, "MEX", tmp_path) as mex_node,
            running_node(hub, "USA", tmp_path),
        ):
            cmd = SendMessage(officer=MEX_OFFICER, kind="info.trafficking_routes", body=body,
                              to=["USA"], handling="H0", attachments=[scan])  # fmt: skip
            sent = await mex.send_attached(cmd)
            mex_node.outbox.wake()
            await eventually(lambda: delivered_to(mex_node, sent.msg_id) == {"USA"},
                             what="USA's receipt")  # fmt: skip
            forward = ForwardMessage(officer=USA_OFFICER, msg_id=sent.msg_id, to=["COL"])
            with pytest.raises(ApplicationError) as exc:
                usa.forward(forward)
            assert exc.value.code == "forward.has_attachments"
            # counted, not named: the names are content, and nothing was opened
            assert exc.value.params == {"msg_id": sent.msg_id, "count": 1}
            assert usa.core.store.messages(direction="out") == []  # no copy queued
    finally:
        mex.close()
        usa.close()


async def test_a_node_on_a_leaf_refuses_attachments_before_sealing(
    hub: Hub, tmp_path: Path
) -> None:
    # its leaf user is not granted the hub's attachment subjects: refused with its code, never
    # half-sent (docs/operations.md, "A state's leaf")
    photo = tmp_path / "markings.png"
    photo.write_bytes(os.urandom(1_000))
    hub.node_settings("MEX", tmp_path, outbox_stream="OUTBOX_MEX").save()
    mex = open_node(tmp_path / "MEX", {})
    body = example_body("info.trafficking_routes").model_dump(mode="json")
    cmd = SendMessage(officer=MEX_OFFICER, kind="info.trafficking_routes", body=body,
                      to=["USA"], handling="H1", attachments=[photo])  # fmt: skip
    try:
        with pytest.raises(ApplicationError) as exc:
            await mex.send_attached(cmd)
        assert exc.value.code == "attachment.on_leaf"
        assert exc.value.params == {"field": "attachments", "party": "MEX"}
        assert held(tmp_path / "MEX") == []
        assert mex.core.store.messages(direction=None) == []
    finally:
        mex.close()
