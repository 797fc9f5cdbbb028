"""``cifta send --attach`` and ``cifta attachment list/get`` against running nodes."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import nats
import pytest

from schemas.registry import example_body
from services.cli.main import main
from services.core import subjects
from services.hub.credentials import PROVISION_USER
from tests.support.attachments import segments_at_hub
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node


async def cifta(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # the commands run their own event loop, as from a terminal: off this test's loop
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def two_files(hub: Hub, tmp_path: Path) -> tuple[Path, Path]:
    """MEX's and USA's homes, a report's body, and the photograph and scan it will carry."""
    body = tmp_path / "routes.json"
    body.write_text(example_body("info.trafficking_routes").model_dump_json())
    photo, scan = tmp_path / "markings.png", tmp_path / "licence.pdf"
    photo.write_bytes(os.urandom(150_000))
    scan.write_bytes(os.urandom(70_000))
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path).save()
    return photo, scan


async def send_two_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photo: Path, scan: Path
) -> tuple[int, str, str]:
    """`cifta send` at MEX: the report to USA, both files attached, answered in JSON."""
    return await cifta(
        capsys, "send", "--home", str(tmp_path / "MEX"), "--kind", "info.trafficking_routes",
        "--to", "USA", "--handling", "H1", "--body", str(tmp_path / "routes.json"),
        "--attach", str(photo), "--attach", str(scan), "--json",
    )  # fmt: skip


async def test_an_officer_sends_a_photograph_and_the_recipient_saves_it(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, scan = two_files(hub, tmp_path)
    mex_home, usa_home = str(tmp_path / "MEX"), str(tmp_path / "USA")
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path):
        code, out, err = await send_two_files(capsys, tmp_path, photo, scan)
        assert code == 0, err
        assert "\r" not in err  # no progress bar off a terminal
        msg_id = json.loads(out)["msg_id"]
        mex.outbox.wake()
        await eventually(lambda: delivered_to(mex, msg_id) == {"USA"}, what="the receipt")

        code, out, _ = await cifta(capsys, "attachment", "list", msg_id, "--home", usa_home)
        assert "markings.png" in out and "image/png" in out and "held" in out
        assert "licence.pdf" in out and "application/pdf" in out
        saved = tmp_path / "saved.png"
        code, out, _ = await cifta(
            capsys, "attachment", "get", msg_id, "markings.png", "--out", str(saved),
            "--home", usa_home,
        )  # fmt: skip
        assert code == 0 and saved.read_bytes() == photo.read_bytes()
        # one line, naming what was typed and what is expected
        code, _, err = await cifta(
            capsys, "attachment", "get", msg_id, "marking.png", "--out", str(saved),
            "--home", usa_home,
        )  # fmt: skip
        assert code == 2
        assert err.strip().splitlines() == [
            f"error: message {msg_id} has no attachment 'marking.png' "
            "(it has: markings.png, licence.pdf)"
        ]
        # the sender keeps its own copy too
        mine = tmp_path / "mine.pdf"
        code, _, _ = await cifta(
            capsys, "attachment", "get", msg_id, "licence.pdf", "--out", str(mine),
            "--home", mex_home,
        )  # fmt: skip
        assert code == 0 and mine.read_bytes() == scan.read_bytes()


async def test_an_officer_forwards_a_message_with_its_files_once_this_node_holds_them(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, scan = two_files(hub, tmp_path)
    usa_home = str(tmp_path / "USA")
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path):
        code, out, err = await send_two_files(capsys, tmp_path, photo, scan)
        assert code == 0, err
        msg_id = json.loads(out)["msg_id"]
        mex.outbox.wake()
        await eventually(lambda: delivered_to(mex, msg_id) == {"USA"}, what="the receipt")
        held = sorted(p for p in (tmp_path / "USA" / "attachments").iterdir() if p.is_file())
        assert len(held) == 2
        kept = held[0].read_bytes()
        held[0].unlink()  # one of USA's own copies lost
        forward = [
            "forward",
            msg_id,
            "--to",
            "COL",
            "--home",
            usa_home,
            "--officer",
            "Kim Lee|Agent|ATF",
        ]
        code, _, err = await cifta(capsys, *forward)
        assert code == 2
        assert err.strip().splitlines() == [
            f"error: This node does not hold 1 of the 2 attachments of message {msg_id}, so it "
            "cannot forward them: nothing was sent. If they are still being fetched, forward it "
            "once they are; if they were refused, ask its sender"
        ]
        held[0].write_bytes(kept)
        code, out, err = await cifta(capsys, *forward, "--json")
        assert code == 0, err
        assert json.loads(out)["recipients"] == ["COL"]
        assert await segments_at_hub(hub, "USA", "COL") == 2  # one segment each, in USA's stream


async def test_sending_a_missing_or_oversized_file_is_one_clear_line(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "routes.json"
    body.write_text(example_body("info.trafficking_routes").model_dump_json())
    settings = hub.node_settings("MEX", tmp_path, attachment_max_bytes=1000)
    settings.save()
    big = tmp_path / "xray.tiff"
    big.write_bytes(b"x" * 1001)
    args = ("send", "--home", str(tmp_path / "MEX"), "--kind", "info.trafficking_routes",
            "--to", "USA", "--handling", "H0", "--body", str(body))  # fmt: skip
    code, _, err = await cifta(capsys, *args, "--attach", str(tmp_path / "nope.png"))
    assert code == 2 and err.strip() == f"error: --attach {tmp_path / 'nope.png'}: no such file"
    code, _, err = await cifta(capsys, *args, "--attach", str(big))
    assert code == 2
    assert err.strip() == "error: attachment_too_large: xray.tiff is 1001 bytes, over 1000"


async def test_a_send_the_hub_could_not_complete_resumes_with_the_same_sealed_file(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "routes.json"
    body.write_text(example_body("info.trafficking_routes").model_dump_json())
    scan = tmp_path / "xray.png"
    scan.write_bytes(os.urandom(3 * 1024 * 1024))  # three segments
    hub.node_settings("MEX", tmp_path).save()
    admin = await nats.connect(hub.url, nkeys_seed=str(hub.home.user_seed("MEX", PROVISION_USER)))
    js = admin.jetstream()
    stream = subjects.attachment_stream("MEX")  # the sender's own
    config = (await js.stream_info(stream)).config
    config.max_bytes = 2 * 1024 * 1024 + 64 * 1024  # room for two segments: the third is refused
    await js.update_stream(config)
    args = ("send", "--home", str(tmp_path / "MEX"), "--kind", "info.trafficking_routes",
            "--to", "USA", "--handling", "H0", "--body", str(body), "--attach", str(scan),
            "--json")  # fmt: skip
    try:
        code, _, err = await cifta(capsys, *args)
        assert code == 2 and "the hub did not store segment(s) 0-2 for USA" in err
        assert "run the same command again to resume" in err
        assert len(err.strip().splitlines()) == 1
        first = await js.stream_info(stream)
        config.max_bytes = 16 * 1024 * 1024
        await js.update_stream(config)
        code, _, err = await cifta(capsys, *args)
        assert code == 0, err
        after = await js.stream_info(stream)
        # the same object: the two segments stored before were kept, the third added (a file
        # sealed again under a new key would have added three more)
        assert first.state.messages == 2 and after.state.messages == 3
    finally:
        await admin.close()
    assert not list((tmp_path / "MEX" / "attachments").glob(".pending-*"))  # the key is gone
