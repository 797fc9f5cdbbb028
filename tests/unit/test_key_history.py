"""A node's key history: what it sent before a key rotation still opens, exports and rebuilds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from schemas import HandlingCode
from services.core.keys import NodeKeys
from services.node.core import Action, NodeCore, RebuildRefused
from tests.support.casework import Network
from tests.unit.test_casework import actions, casework, make, network


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return network(tmp_path)


def tracing_request(net: Network) -> str:
    """MEX asks USA to trace a pistol; delivered and acknowledged. Returns its msg_id."""
    body = make("tracing.request", due_at=net.clock() + timedelta(days=10))
    msg_id = net["MEX"].compose(body, ["USA"], handling=HandlingCode.H1).msg_id
    assert actions(net.deliver(), "tracing.request") == [Action.ACK]
    return msg_id


def rotate_signing(core: NodeCore) -> str:
    """The node signs with a new key from now on (the directory listed it); returns the old kid."""
    old = core.keys.signing.public().kid
    core.keys = core.keys.with_pending_signing_key().promote_pending_signing_key()
    assert core.keys.signing.public().kid != old
    return old


def rotate_encryption(core: NodeCore) -> str:
    """A new encryption key; the old one retired (no longer published). Returns the old kid."""
    old = core.keys.current_encryption.public().kid
    core.keys = core.keys.with_new_encryption_key().retire_encryption_key(old)
    assert [k.public().kid for k in core.keys.encryption] != [old]
    return old


@pytest.mark.parametrize("rotate", [rotate_signing, rotate_encryption], ids=["signing", "enc"])
def test_a_message_sent_before_a_rotation_still_opens_and_exports(
    net: Network, rotate: object
) -> None:
    msg_id = tracing_request(net)
    mex = net["MEX"]
    rotate(mex)  # type: ignore[operator]
    _, opened = mex.read(msg_id, "A. Ramirez")
    assert opened.header.msg_id == msg_id and opened.body.KIND == "tracing.request"
    exported = mex.export(msg_id, "A. Ramirez", judicial=False)
    assert exported.plaintext == opened.plaintext


@pytest.mark.parametrize("rotate", [rotate_signing, rotate_encryption], ids=["signing", "enc"])
def test_rebuild_after_a_rotation_keeps_the_procedures_the_node_started(
    net: Network, rotate: object
) -> None:
    tracing_request(net)
    mex = net["MEX"]
    before = casework(mex)
    assert before["tracing"], "the request opened a trace"
    rotate(mex)  # type: ignore[operator]
    applied, skipped = mex.rebuild_casework()
    assert (applied, skipped) == (1, 0)
    assert casework(mex) == before


def test_rebuild_that_would_drop_the_nodes_own_messages_fails_and_changes_nothing(
    net: Network,
) -> None:
    tracing_request(net)
    tracing_request(net)
    mex = net["MEX"]
    before = casework(mex)
    rotate_signing(mex)
    # the key history lost (an old key file restored over the new one, say)
    mex.keys = NodeKeys(mex.keys.party, mex.keys.signing, mex.keys.encryption, mex.keys.created_at)
    with pytest.raises(RebuildRefused, match="2 message") as refused:
        mex.rebuild_casework()
    assert refused.value.count == 2
    assert "unknown_sender_key" in str(refused.value)
    assert casework(mex) == before


def test_messages_received_before_a_rotation_still_open(net: Network) -> None:
    msg_id = tracing_request(net)
    usa = net["USA"]
    rotate_encryption(usa)
    _, opened = usa.read(msg_id, "J. Smith")
    assert opened.header.sender == "MEX"
    assert usa.rebuild_casework() == (1, 0)
