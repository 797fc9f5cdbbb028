"""Faults with SIGKILL: the hub, a node mid-batch, the hub unreachable when an officer sends.

In each, every message ends up stored exactly once at each recipient, every receipt once at the
sender, and the tests count them.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from schemas import HandlingCode
from schemas.registry import example_body
from services.hub import provision
from services.node.app import NodeRuntime
from services.node.store import Store
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node
from tests.support.processes import cifta_process

REPORT = example_body("info.concealment_methods")


def queue(node: NodeRuntime, n: int, to: list[str]) -> list[str]:
    ids = [
        node.core.compose(REPORT, to, handling=HandlingCode.H1, case_id=f"CASE-{i}").msg_id
        for i in range(n)
    ]
    node.outbox.wake()
    return ids


def stored_in(home: Path) -> int:
    store = Store(home / "store.sqlite")
    try:
        return len(store.messages(direction="in"))
    finally:
        store.close()


def receipts(node: NodeRuntime, ids: list[str], recipient: str) -> int:
    return sum(
        1
        for msg_id in ids
        for s in node.store.recipient_statuses(msg_id)
        if s.recipient == recipient and s.state == "delivered"
    )


def assert_exactly_once(node: NodeRuntime, ids: list[str]) -> None:
    incoming = node.store.messages(direction="in")
    assert sorted(m.msg_id for m in incoming) == sorted(ids)  # each once, none missing, no extra
    assert node.store.rejections() == []  # no duplicate was mistaken for a replay


async def test_hub_killed_and_restarted_with_messages_pending(hub: Hub, tmp_path: Path) -> None:
    # Acknowledgements lost with the hub come back as redeliveries after ack_wait (the node
    # recognises them and acknowledges again); a short one lets the test see the inbox drain.
    hub.policy = provision.Policy(ack_wait_s=2.0)
    await hub.provision()
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        first = queue(mex, 60, ["USA", "COL"])
        await eventually(lambda: receipts(mex, first, "USA") >= 10, what="some traffic")
        hub.kill()  # mid-stream: publishes, deliveries and receipts in flight
        second = queue(mex, 20, ["USA", "COL"])  # sent while the hub is down
        hub.restart_on_same_port()
        ids = first + second
        await eventually(lambda: receipts(mex, ids, "USA") == 80, timeout=60, what="USA receipts")
        assert_exactly_once(usa, ids)

        async def all_queued_for_col() -> bool:  # MEX's COL legs retry on their own schedule
            return (await hub.status("COL")).pending == 80

        await eventually(all_queued_for_col, what="every message waiting for COL at the hub")

        async with running_node(hub, "COL", tmp_path) as col:
            await eventually(lambda: receipts(mex, ids, "COL") == 80, timeout=60, what="COL")
            assert_exactly_once(col, ids)

        async def drained(state: str) -> bool:
            return (await hub.status(state)).lag == 0

        await eventually(lambda: drained("USA"), timeout=30, what="USA's inbox drained")
        assert_exactly_once(usa, ids)  # the redeliveries added nothing


@contextmanager
def node_process(hub: Hub, party: str, root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``cifta node run`` as its own process, so that it can be SIGKILLed."""
    settings = hub.node_settings(party, root)
    settings.save()
    home = settings.home
    with cifta_process(["node", "run", "--home", str(home)], home / "node.log") as proc:
        yield proc


async def test_node_killed_mid_batch_stores_every_message_once(hub: Hub, tmp_path: Path) -> None:
    total = 300
    # What the killed node had fetched but not acknowledged comes back after ack_wait; a short
    # one keeps the test quick (production: 30 s).
    hub.policy = provision.Policy(ack_wait_s=2.0)
    await hub.provision("USA")
    async with running_node(hub, "MEX", tmp_path) as mex:
        ids = queue(mex, total, ["USA"])
        await eventually(
            lambda: all(s.state == "sent" for i in ids for s in mex.store.recipient_statuses(i)),
            timeout=60, what="all published",
        )  # fmt: skip
        home = tmp_path / "USA"
        with node_process(hub, "USA", tmp_path) as usa:
            await eventually(lambda: stored_in(home) >= 40, timeout=60, what="a first batch")
            os.kill(usa.pid, signal.SIGKILL)
            usa.wait()
        interrupted_at = stored_in(home)
        assert interrupted_at < total, "the node finished before it could be killed mid-batch"
        with node_process(hub, "USA", tmp_path):
            await eventually(lambda: stored_in(home) == total, timeout=90, what="the rest")
            await eventually(
                lambda: receipts(mex, ids, "USA") == total, timeout=60, what="receipts"
            )

            async def all_acknowledged() -> bool:
                # a delivery is acknowledged after its group commits, and the context's end
                # SIGKILLs the node: wait for the acks, or those in flight come back later
                return (await hub.status("USA")).lag == 0

            await eventually(all_acknowledged, timeout=60, what="every delivery acknowledged")
        store = Store(home / "store.sqlite")
        try:
            assert sorted(m.msg_id for m in store.messages(direction="in")) == sorted(ids)
            assert store.rejections() == []
        finally:
            store.close()
    status = await hub.status("USA")
    assert status.lag == 0 and status.stored == total


async def test_officer_sends_while_the_hub_is_unreachable(hub: Hub, tmp_path: Path) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        hub.kill()
        ids = queue(mex, 15, ["USA"])
        await eventually(
            lambda: all(
                s.state == "pending" and s.attempts >= 1 and s.last_error
                for i in ids
                for s in mex.store.recipient_statuses(i)
            ),
            what="failed attempts recorded while the hub is down",
        )
        hub.restart_on_same_port()
        await eventually(lambda: receipts(mex, ids, "USA") == 15, timeout=60, what="delivery")
        assert_exactly_once(usa, ids)
