"""A node's key history through the operator's commands: after `cifta directory rotate` (the
encryption key, then the signing key too) is approved, what the node sent and received before
still opens (`cifta show`), exports (`cifta export`) and rebuilds (`cifta node rebuild-casework`);
and a rebuild that would drop the node's own messages exits non-zero and changes nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import HandlingCode
from schemas.registry import example_body
from services.cli.main import main
from services.core.keys import NodeKeys
from services.node.app import NodeRuntime
from services.node.store import Store
from tests.support.hub import Hub, eventually
from tests.support.nodes import delivered_to, running_node
from tests.unit.test_casework import make


def cifta(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def cifta_async(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """A command that talks to the hub (approve publishes): off the test's event loop."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sent_before(mex: NodeRuntime, usa: NodeRuntime) -> tuple[str, str]:
    """MEX files a tracing request and a routes report to USA; returns their msg_ids."""
    due = mex.core.clock() + timedelta(days=10)
    trace = mex.core.compose(make("tracing.request", due_at=due), ["USA"], handling=HandlingCode.H1)
    report = mex.core.compose(
        example_body("info.trafficking_routes"), ["USA"], handling=HandlingCode.H0
    )
    mex.outbox.wake()
    return trace.msg_id, report.msg_id


async def rotate(
    hub: Hub, home: Path, capsys: pytest.CaptureFixture[str], *options: str
) -> NodeKeys:
    """The state asks for new keys, the secretariat approves; returns the keys as rotated."""
    request = home / "rotation.json"
    request.unlink(missing_ok=True)
    code, _, err = cifta(capsys, "directory", "rotate", "--home", str(home), *options,
                         "--out", str(request))  # fmt: skip
    assert code == 0, err
    code, _, err = await cifta_async(
        capsys, "directory", "--hub-home", str(hub.home.root), "approve", str(request)
    )
    assert code == 0, err
    return NodeKeys.load(home / "keys.json")


def still_readable(capsys: pytest.CaptureFixture[str], home: Path, ids: list[str]) -> None:
    for msg_id in ids:
        code, out, err = cifta(capsys, "show", "--home", str(home), msg_id, "--json",
                               "--officer", "A. Ramirez|Analyst|FGR")  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["msg_id"] == msg_id
        target = home / f"export-{msg_id}-{len(list(home.glob('export-*')))}.json"
        code, _, err = cifta(capsys, "export", "--home", str(home), msg_id, "--out", str(target),
                             "--officer", "A. Ramirez|Analyst|FGR")  # fmt: skip
        assert code == 0, err
        assert json.loads(target.read_text())["msg_id"] == msg_id


def rebuilt(capsys: pytest.CaptureFixture[str], home: Path) -> str:
    code, out, err = cifta(capsys, "node", "rebuild-casework", "--home", str(home))
    assert code == 0, err
    return out


def traces(home: Path) -> list[tuple[str, str, str | None]]:
    store = Store(home / "store.sqlite")
    try:
        return store.cases("tracing")
    finally:
        store.close()


async def test_messages_from_before_each_rotation_open_export_and_rebuild(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "MEX"
    hub.node_settings("MEX", tmp_path).save()
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        first = sent_before(mex, usa)
        await eventually(lambda: all(delivered_to(mex, m) == {"USA"} for m in first))
        cases = traces(home)
        assert len(cases) == 1

        # the encryption key alone
        before = NodeKeys.load(home / "keys.json")
        keys = await rotate(hub, home, capsys)
        old_enc = before.current_encryption.public().kid
        assert keys.current_encryption.public().kid != old_enc
        await eventually(lambda: mex.core.keys.current_encryption.public().kid != old_enc,
                         what="the node took up its new encryption key")  # fmt: skip
        still_readable(capsys, home, list(first))
        assert "from 1 messages (0 refused again" in rebuilt(capsys, home)
        assert traces(home) == cases

        # then the signing key (with another encryption key)
        second = sent_before(mex, usa)
        await eventually(lambda: all(delivered_to(mex, m) == {"USA"} for m in second))
        cases = traces(home)
        old_sig = keys.signing.public().kid
        await rotate(hub, home, capsys, "--signing")
        await eventually(
            lambda: mex.core.keys.signing.public().kid != old_sig,
            what="the node signs with its new key once the directory lists it",
        )
        still_readable(capsys, home, [*first, *second])
        assert "from 2 messages (0 refused again" in rebuilt(capsys, home)
        assert traces(home) == cases
        assert NodeKeys.load(home / "keys.json").signing_public_key(old_sig) is not None


def test_a_rebuild_that_would_drop_the_nodes_own_messages_exits_non_zero(
    hub_home: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = hub_home.node_settings("MEX", tmp_path)
    settings.save()
    home = settings.home
    body = tmp_path / "trace.json"
    due = datetime.now(UTC) + timedelta(days=10)
    body.write_text(make("tracing.request", due_at=due).model_dump_json())
    code, _, err = cifta(capsys, "send", "--home", str(home), "--kind", "tracing.request",
                         "--to", "USA", "--handling", "H1", "--body", str(body))  # fmt: skip
    assert code == 0, err
    cases = traces(home)
    # a signing rotation, then the key file replaced by one without the key history
    keys = NodeKeys.load(home / "keys.json").with_pending_signing_key()
    keys = keys.promote_pending_signing_key()
    NodeKeys(keys.party, keys.signing, keys.encryption).save(home / "keys.json")

    code, out, err = cifta(capsys, "node", "rebuild-casework", "--home", str(home))
    assert code != 0 and out == ""
    # each unreadable message logged with its msg_id, then one line saying how many and why
    verdict = err.strip().splitlines()[-1]
    assert verdict.startswith("error: casework not rebuilt: 1 message(s) this node sent cannot")
    assert "unknown_sender_key" in verdict and "Traceback" not in err
    assert traces(home) == cases  # nothing changed
