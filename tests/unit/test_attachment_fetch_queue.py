"""Which fetches of received attachments a node starts: each sender's first due, the senders side
by side, so that one state's many (or large) files keep no other state's out (design section 5)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from schemas import HandlingCode
from schemas.registry import example_body
from services.node.attachment_flow import MAX_SENDERS_FETCHING, AttachmentReceiver
from services.node.core import Delivery
from services.node.settings import NodeSettings
from services.node.store import Store
from services.node.store.attachments import AttachmentFetch
from tests.support.casework import T0, Network
from tests.support.hub import OAS_MEMBER_STATES
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


def test_not_there_answers_count_in_a_row_and_any_other_outcome_starts_again(
    tmp_path: Path,
) -> None:
    store, ids = queued(tmp_path)
    fetches, msg_id = store.attachment_fetches, ids["COL"][0]

    def state() -> tuple[float | None, int]:
        [item] = [f for f in fetches.due(float("inf"), 64) if f.msg_id == msg_id]
        return item.missing_since, item.missing_count

    fetches.retry(msg_id, 0.0, "segment_not_found", missing_at=1000.0)
    fetches.retry(msg_id, 0.0, "segment_not_found", missing_at=2000.0)
    assert state() == (1000.0, 2)  # the first answer's time kept
    fetches.retry(msg_id, 0.0, "TimeoutError")  # the hub did not answer: no longer "not there"
    assert state() == (None, 0)
    fetches.retry(msg_id, 0.0, "segment_not_found", missing_at=3000.0)
    assert state() == (3000.0, 1)


def _no_quarantine() -> None:
    raise AssertionError("nothing is refused here")


def receiver(tmp_path: Path) -> AttachmentReceiver:
    net = Network.of(tmp_path, ["MEX", "BRA"])
    settings = NodeSettings(party="BRA", home=tmp_path / "BRA-home")
    return AttachmentReceiver(settings, net["BRA"], _no_quarantine, lambda: None)


async def test_a_fetch_that_failed_waits_for_the_poll_and_one_that_ended_wakes_the_loop(
    tmp_path: Path,
) -> None:
    """After a failure (a store failing, say) the same fetch is not started again at once,
    which would spin; after a fetch that ended, the sender's next message goes now."""
    r = receiver(tmp_path)
    item = AttachmentFetch("01a20000-0000-7000-8000-000000000000", "MEX", 0)

    async def fails(nc: object, item: AttachmentFetch) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    async def ends(nc: object, item: AttachmentFetch) -> None:
        return None

    for one, wakes in ((fails, False), (ends, True)):
        r._wake.clear()
        r._one = one  # type: ignore[method-assign]
        r._fetching[item.sender] = asyncio.current_task()  # type: ignore[assignment]
        await r._fetch(None, item)  # type: ignore[arg-type]
        assert r._wake.is_set() is wakes
        assert item.sender not in r._fetching


async def test_stop_ends_the_loop_even_without_its_cancellation(tmp_path: Path) -> None:
    """A cancellation can be lost inside a library's wait_for on Python 3.11: the node's stop
    also sets a flag the loop reads at its next turn."""
    r = receiver(tmp_path)
    task = asyncio.create_task(r.run())
    await asyncio.sleep(0)  # the loop is waiting for a wake or the poll
    r.stop()
    await asyncio.wait_for(task, 5)
    assert task.done() and not task.cancelled()


async def test_at_most_sixteen_senders_fetch_at_once_and_the_next_goes_when_one_ends(
    tmp_path: Path,
) -> None:
    """Each fetch holds up to a window of segments in memory: 20 senders with files due start
    16 fetches, and a 17th starts once one of them ends."""
    parties = ["BRA", *OAS_MEMBER_STATES[:21]]
    parties = list(dict.fromkeys(parties))[:21]  # BRA and 20 senders
    net = Network.of(tmp_path, parties)
    for sender in parties[1:]:
        received_from(net, sender, 1)
    r = AttachmentReceiver(
        NodeSettings(party="BRA", home=tmp_path / "BRA-home"), net["BRA"], _no_quarantine,
        lambda: None,
    )  # fmt: skip
    r._nc = object()  # type: ignore[assignment]  # no hub: the fetches below never use it
    release = asyncio.Event()
    started: list[str] = []

    async def held_open(nc: object, item: AttachmentFetch) -> None:
        started.append(item.sender)
        await release.wait()
        net["BRA"].store.attachment_fetches.settle(item.msg_id, now=T0)

    r._one = held_open  # type: ignore[method-assign]
    assert await r.fetch_round() is True
    await asyncio.sleep(0)  # the tasks run up to their wait
    assert len(started) == MAX_SENDERS_FETCHING == 16
    assert await r.fetch_round() is False  # no room
    release.set()
    await asyncio.gather(*r._fetching.values())
    assert await r.fetch_round() is True  # the other four now
    await asyncio.gather(*r._fetching.values())
    assert sorted(started) == sorted(parties[1:])
