"""Which fetches of received attachments a node starts: each sender's first due, the senders side
by side, so that one state's many (or large) files keep no other state's out (design section 5)."""

from __future__ import annotations

import time
from pathlib import Path

from schemas import HandlingCode
from schemas.registry import example_body
from services.node.core import Delivery
from services.node.store import Store
from tests.support.casework import T0, Network
from tests.unit.test_attachment_receipts import manifest


def received_from(net: Network, sender: str, n: int) -> list[str]:
    """BRA stores ``n`` messages with a file from ``sender``: their fetches wait in its queue."""
    ids = []
    for _ in range(n):
        body = example_body("info.trafficking_routes").model_copy(
            update={"attachments": [manifest("photo.png")]}
        )
        h = net[sender].compose(body, ["BRA"], handling=HandlingCode.H1)
        sent = net[sender].store.message(h.msg_id)
        assert sent is not None
        net["BRA"].process(Delivery(f"inbox.BRA.{sender}.{h.msg_id}", sent.envelope, 1, 1, T0))
        ids.append(h.msg_id)
    return ids


def queued(tmp_path: Path) -> tuple[Store, dict[str, list[str]]]:
    net = Network.of(tmp_path, ["MEX", "COL", "USA", "BRA"])
    ids = {"MEX": received_from(net, "MEX", 70)}  # MEX's many messages, queued first
    ids |= {s: received_from(net, s, 1) for s in ("COL", "USA")}
    return net["BRA"].store, ids


def test_one_senders_many_fetches_keep_no_other_sender_out_of_the_window(tmp_path: Path) -> None:
    store, ids = queued(tmp_path)
    due = store.attachment_fetches.due(time.time() + 1, limit=64)
    assert {f.sender: f.msg_id for f in due} == {
        "MEX": ids["MEX"][0], "COL": ids["COL"][0], "USA": ids["USA"][0]
    }  # fmt: skip


def test_a_sender_already_fetching_is_left_to_finish_its_message(tmp_path: Path) -> None:
    store, ids = queued(tmp_path)
    due = store.attachment_fetches.due(time.time() + 1, limit=64, busy={"MEX", "USA"})
    assert [f.msg_id for f in due] == ids["COL"]


def test_a_senders_message_waiting_out_its_back_off_lets_its_next_one_go(tmp_path: Path) -> None:
    store, ids = queued(tmp_path)
    store.attachment_fetches.retry(ids["MEX"][0], time.time() + 3600, "TimeoutError")
    due = store.attachment_fetches.due(time.time() + 1, limit=64, busy={"COL", "USA"})
    assert [f.msg_id for f in due] == [ids["MEX"][1]]
