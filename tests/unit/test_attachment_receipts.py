"""The sender's side of an attachment's lifecycle (docs/envelope.md section 13.6): what a
recipient's answer queues at the sender's node. A receipt naming exactly the objects sent, in
order, or a rejection, queues the purge of that recipient's objects from the sender's stream at
the hub; a receipt naming anything else purges nothing and is alerted."""

from __future__ import annotations

import hashlib
import os
from base64 import urlsafe_b64encode
from datetime import timedelta
from pathlib import Path

import pytest

from schemas import HandlingCode, ReasonCode
from schemas.attachment import AttachmentManifest
from schemas.registry import example_body
from services.core.attachments import CHUNK_SIZE, ciphertext_size
from services.core.envelope import ProtectedHeader
from services.node.core import Delivery, NodeCore
from tests.support.casework import T0, Network


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return Network.of(tmp_path, ["MEX", "USA", "COL"])


def manifest(name: str) -> AttachmentManifest:
    return AttachmentManifest(
        name=name, media_type="image/png", size=1000, chunk_size=CHUNK_SIZE,
        enc="A256GCM-STREAM-64K", key=urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
        ciphertext_sha256=hashlib.sha256(os.urandom(16)).hexdigest(),
    )  # fmt: skip


def send_with_files(net: Network, to: list[str], count: int = 2) -> tuple[str, list[str]]:
    """MEX's message to ``to`` naming ``count`` files; its id and the files' objects."""
    files = [manifest(f"photo-{i}.png") for i in range(count)]
    body = example_body("info.trafficking_routes").model_copy(update={"attachments": files})
    h = net["MEX"].compose(body, to, handling=HandlingCode.H1)
    return h.msg_id, [f.ciphertext_sha256 for f in files]


def delivery(net: Network, recipient: str, msg_id: str) -> Delivery:
    sent = net["MEX"].store.message(msg_id)
    assert sent is not None
    return Delivery(f"inbox.{recipient}.MEX.{msg_id}", sent.envelope, 1, 1, T0)


def received(net: Network, recipient: str, msg_id: str) -> tuple[NodeCore, ProtectedHeader, str]:
    """``recipient`` takes MEX's message (its attachments then wait to be fetched)."""
    core, d = net[recipient], delivery(net, recipient, msg_id)
    core.process(d)
    stored = core.store.message(msg_id)
    assert stored is not None and core.store.attachment_fetches.status(msg_id) is not None
    return core, core.open_stored(stored).header, hashlib.sha256(d.data).hexdigest()


def answer(net: Network, recipient: str, msg_id: str, objects: list[str]) -> None:
    """``recipient`` sends its receipt naming ``objects``, and MEX takes it."""
    core, h, sha = received(net, recipient, msg_id)
    receipt = core.receipt(h, sha, T0, objects)
    core.store.add_outgoing(receipt, now=core.clock())
    net.deliver()


def test_a_receipt_naming_the_objects_sent_queues_that_recipients_purge(net: Network) -> None:
    msg_id, objects = send_with_files(net, ["USA", "COL"])
    assert net["MEX"].store.sent_attachments.objects(msg_id) == tuple(objects)
    answer(net, "USA", msg_id, objects)
    mex = net["MEX"].store
    assert mex.attachment_purges.state(msg_id, "USA") == "pending"
    assert mex.attachment_purges.state(msg_id, "COL") is None  # COL's copy waits for COL
    [due] = mex.attachment_purges.due(float("inf"), 10)
    assert (due.recipient, due.objects) == ("USA", tuple(objects))
    assert not mex.alerts()


@pytest.mark.parametrize(
    "named",
    [
        pytest.param(lambda o: [o[0]], id="one_missing"),
        pytest.param(lambda o: list(reversed(o)), id="out_of_order"),
        pytest.param(lambda o: [o[0], hashlib.sha256(b"other").hexdigest()], id="another_file"),
        pytest.param(lambda o: [], id="none"),
    ],
)
def test_a_receipt_naming_other_objects_purges_nothing_and_is_alerted(
    net: Network, named: object
) -> None:
    msg_id, objects = send_with_files(net, ["USA"])
    answer(net, "USA", msg_id, named(objects))  # type: ignore[operator]
    mex = net["MEX"].store
    assert mex.attachment_purges.state(msg_id, "USA") is None
    assert not mex.attachment_purges.due(float("inf"), 10)
    [(_, source, detail)] = mex.alerts()
    assert source == "attachments" and msg_id in detail and "USA" in detail


def test_a_rejection_queues_the_purge_of_that_recipients_objects(net: Network) -> None:
    msg_id, _ = send_with_files(net, ["USA"])
    core, h, sha = received(net, "USA", msg_id)
    core.reject(delivery(net, "USA", msg_id), "MEX", sha, ReasonCode.ATTACHMENT_CORRUPT, "at 0", h)
    net.deliver()
    assert net["MEX"].store.attachment_purges.state(msg_id, "USA") == "pending"


def test_a_message_without_attachments_queues_no_purge(net: Network) -> None:
    net["MEX"].compose(example_body("info.trafficking_routes"), ["USA"], handling=HandlingCode.H1)
    net.deliver()
    assert net["MEX"].store.attachment_purges.due(float("inf"), 10) == []
    assert not net["MEX"].store.alerts()


def test_what_a_recipient_has_not_confirmed_is_counted_until_it_answers(net: Network) -> None:
    """The node's count of what the hub still holds for each recipient (a recipient's share of
    the sender's room, services/node/attachments.py)."""
    msg_id, objects = send_with_files(net, ["USA", "COL"])
    mex = net["MEX"].store
    long_ago = T0 - timedelta(days=365)
    one_copy = 2 * ciphertext_size(1000)
    assert mex.sent_attachments.unconfirmed_bytes("USA", long_ago) == one_copy
    # a stream without an age limit keeps everything until it is purged
    assert mex.sent_attachments.unconfirmed_bytes("USA", None) == one_copy
    answer(net, "USA", msg_id, objects)
    assert mex.sent_attachments.unconfirmed_bytes("USA", long_ago) == 0
    assert mex.sent_attachments.unconfirmed_bytes("COL", long_ago) == one_copy
    # past the stream's retention the hub holds nothing more, whatever COL did
    assert mex.sent_attachments.unconfirmed_bytes("COL", net.clock() + timedelta(days=1)) == 0
    other, _ = send_with_files(net, ["COL"])
    answer(net, "COL", other, [])  # a receipt naming nothing: the objects stay at the hub
    assert mex.sent_attachments.unconfirmed_bytes("COL", long_ago) == 2 * one_copy


def test_a_recipient_answering_again_changes_nothing_and_is_alerted_once(net: Network) -> None:
    """The first answer counts (as for the delivery itself): a wrong receipt sent again and
    again adds no alert, and a right one after it purges nothing the first did not."""
    msg_id, objects = send_with_files(net, ["USA"])
    core, h, sha = received(net, "USA", msg_id)
    for named in ([], [], objects):
        core.store.add_outgoing(core.receipt(h, sha, T0, named), now=core.clock())
        net.deliver()
    mex = net["MEX"].store
    assert len(mex.alerts()) == 1
    assert mex.attachment_purges.state(msg_id, "USA") is None
