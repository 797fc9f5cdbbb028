"""The officer's commands against running nodes: send, inbox, show, reply, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.registry import example_body
from services.cli.main import main
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node


def cifta(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_officer_sends_reads_replies_and_tracks_delivery(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "routes.json"
    body.write_text(example_body("info.trafficking_routes").model_dump_json())
    for party in ("MEX", "USA"):
        hub.node_settings(party, tmp_path).save()
    mex_home, usa_home = str(tmp_path / "MEX"), str(tmp_path / "USA")
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        code, out, _ = cifta(
            capsys, "send", "--home", mex_home, "--kind", "info.trafficking_routes", "--to",
            "usa", "--handling", "H2", "--confidential", "--case", "MEX-1", "--body", str(body),
            "--json",
        )  # fmt: skip
        assert code == 0
        msg_id = json.loads(out)["msg_id"]
        await eventually(lambda: delivered_to(mex, msg_id) == {"USA"}, what="delivery")

        code, out, _ = cifta(capsys, "inbox", "--home", usa_home, "--unread", "--json")
        assert [m["msg_id"] for m in json.loads(out)] == [msg_id]
        code, out, _ = cifta(
            capsys, "show", "--home", usa_home, msg_id[-8:], "--officer", "K. Lee|Agent|HSI"
        )
        assert code == 0 and "opened by K. Lee (Agent, HSI)" in out
        assert "Confidential at the provider's request (Art. XII)" in out  # as the console says
        code, out, _ = cifta(capsys, "inbox", "--home", usa_home, "--unread", "--json")
        assert json.loads(out) == []

        answer = tmp_path / "answer.json"
        answer.write_text(example_body("info.concealment_methods").model_dump_json())
        code, out, _ = cifta(
            capsys, "reply", "--home", usa_home, msg_id, "--kind", "info.concealment_methods",
            "--body", str(answer), "--json",
        )  # fmt: skip
        reply_id = json.loads(out)["msg_id"]
        await eventually(lambda: mex.store.has_message(reply_id), what="the reply")

        code, out, _ = cifta(capsys, "inbox", "--home", mex_home, "--case", "MEX-1", "--all")
        assert msg_id[-8:] in out and reply_id[-8:] in out and "H2 C" in out
        code, out, _ = cifta(capsys, "status", "--home", mex_home, msg_id)
        assert "USA" in out and "delivered" in out
        _ = usa


def test_bad_body_and_unknown_recipient_get_clear_errors(
    hub_home: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_home.node_settings("MEX", tmp_path).save()
    home = str(tmp_path / "MEX")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"title": ""}))
    code, _, err = cifta(
        capsys, "send", "--home", home, "--kind", "info.trafficking_routes", "--to", "USA",
        "--handling", "H0", "--body", str(bad),
    )  # fmt: skip
    assert code == 2 and "not a valid info.trafficking_routes" in err and "title" in err

    good = tmp_path / "good.json"
    good.write_text(example_body("info.trafficking_routes").model_dump_json())
    code, _, err = cifta(
        capsys, "send", "--home", home, "--kind", "info.trafficking_routes", "--to", "BRA",
        "--handling", "H0", "--body", str(good),
    )  # fmt: skip
    assert code == 2 and "BRA is not on the network" in err
    code, _, err = cifta(capsys, "status", "--home", home, "01a2239f-e0c4-7aa9-9473-320c18dc10b1")
    assert code == 2 and "no message" in err
