"""The audit service killed, away, or its file edited: nothing lost, nothing twice, found out."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

from schemas import HandlingCode
from schemas.registry import example_body
from services.audit.log import AuditLog
from services.cli.main import main
from services.core import connection
from services.core.merkle import MerkleTree, leaf_hash
from services.hub import provision
from tests.support.audit import audit_backlog, audit_process, running_audit
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node

REPORT = example_body("info.concealment_methods")
#: The first leaf of a message handled H1: lowering it to H0 is the edit an insider would want.
H1_LEAF = (
    "SELECT idx, leaf FROM leaves WHERE instr(leaf, CAST('\"H1\"' AS BLOB)) > 0"
    " ORDER BY idx LIMIT 1"
)
FAST = {"witness_interval_s": 0.3}


def leaves(hub: Hub) -> int:
    if not hub.home.audit_log_path.exists():
        return 0
    log = AuditLog(hub.home.audit_log_path)
    try:
        return log.size
    finally:
        log.close()


def send(node, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = [node.core.compose(REPORT, ["USA"], handling=HandlingCode.H1).msg_id for _ in range(n)]
    node.outbox.wake()
    return ids


def assert_log_is_whole(hub: Hub, expected: int) -> None:
    log = AuditLog(hub.home.audit_log_path)
    try:
        assert log.size == expected
        identities = log.db.execute("SELECT COUNT(DISTINCT identity) FROM leaves").fetchone()[0]
        assert identities == expected  # no leaf twice
        assert [r[0] for r in log.db.execute("SELECT idx FROM leaves ORDER BY idx")] == list(
            range(expected)
        )  # no gap
    finally:
        log.close()
    assert main(["audit", "--hub-home", str(hub.home.root), "verify"]) == 0


async def test_audit_killed_mid_stream_resumes_with_no_gap_and_no_duplicate(
    hub: Hub, tmp_path: Path
) -> None:
    n = 120  # each: stored at USA, delivered by USA, USA's receipt stored at MEX
    # What the killed service had fetched but not acknowledged comes back after ack_wait.
    hub.policy = provision.Policy(ack_wait_s=2.0)
    await hub.provision()
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path):
        with audit_process(hub) as audit:
            send(mex, n)
            await eventually(lambda: leaves(hub) >= 60, timeout=60, what="a first part")
            os.kill(audit.pid, signal.SIGKILL)
            audit.wait()
        assert leaves(hub) < 3 * n, "the audit service finished before it could be killed"
        with audit_process(hub):
            await eventually(lambda: leaves(hub) == 3 * n, timeout=90, what="the rest")
    assert_log_is_whole(hub, 3 * n)


async def test_audit_away_while_messages_flow_catches_up(hub: Hub, tmp_path: Path) -> None:
    async with running_node(hub, "MEX", tmp_path) as mex, running_node(hub, "USA", tmp_path) as usa:
        ids = send(mex, 25)
        await eventually(lambda: all(usa.store.has_message(i) for i in ids), what="delivered")
        assert leaves(hub) == 0  # nobody is recording yet
        async with running_audit(hub):
            await eventually(lambda: leaves(hub) == 75, timeout=60, what="the backlog recorded")
    assert_log_is_whole(hub, 75)


def rewrite_history(path: Path) -> None:
    """What an insider with the file could do: edit a leaf and recompute every node over it."""
    db = sqlite3.connect(path)
    idx, leaf = db.execute(H1_LEAF).fetchone()
    db.execute("UPDATE leaves SET leaf = ? WHERE idx = ?", (leaf.replace(b'"H1"', b'"H0"'), idx))
    tree = MerkleTree()
    for (data,) in db.execute("SELECT leaf FROM leaves ORDER BY idx"):
        tree.append_hash(leaf_hash(bytes(data)))
    db.execute("DELETE FROM nodes")
    for level, row in enumerate(tree.store.levels):  # type: ignore[attr-defined]
        db.executemany(
            "INSERT INTO nodes VALUES (?, ?, ?)", [(level, i, h) for i, h in enumerate(row)]
        )
    db.execute("DELETE FROM checkpoints")  # and hide the checkpoints that gave it away
    db.commit()
    db.close()


async def test_an_edited_log_is_found_by_verify_and_by_the_witnesses(
    hub: Hub, tmp_path: Path
) -> None:
    async with (
        running_node(hub, "MEX", tmp_path, **FAST) as mex,
        running_node(hub, "USA", tmp_path, **FAST) as usa,
    ):
        async with running_audit(hub) as audit:
            send(mex, 3)
            try:
                await eventually(lambda: audit.log.size == 9, what="three messages recorded")
            except AssertionError:
                rows = audit.log.db.execute("SELECT idx, identity, event FROM leaves").fetchall()
                async with connection.connect(hub.url, hub.home.user_seed("AUDIT", "audit")) as nc:
                    si = await nc.jetstream().stream_info("AUDIT")
                backlog = await audit_backlog(hub)
                raise AssertionError(
                    f"{audit.log.size} leaves: {rows}; stream {si.state.messages} msgs, sources "
                    f"{[(x.name, x.lag, x.error) for x in si.sources or []]}; consumers "
                    f"(pending, unacknowledged) {backlog}"
                ) from None
            await eventually(lambda: len(audit.log.cosignatures()) >= 2, what="witnessed")
        # a clumsy edit: one leaf changed, nothing else
        db = sqlite3.connect(hub.home.audit_log_path)
        idx, leaf = db.execute(H1_LEAF).fetchone()
        db.execute(
            "UPDATE leaves SET leaf = ? WHERE idx = ?", (leaf.replace(b'"H1"', b'"H0"'), idx)
        )
        db.commit()
        db.close()
        assert main(["audit", "--hub-home", str(hub.home.root), "verify"]) == 1
        # a careful one: every node recomputed, the old checkpoints removed; the log goes on
        rewrite_history(hub.home.audit_log_path)
        async with running_audit(hub) as audit:
            send(mex, 1)
            await eventually(lambda: audit.log.size >= 12, timeout=60, what="the log going on")
            await eventually(
                lambda: (
                    any(a[1] == "audit" for a in mex.store.alerts())
                    and any(a[1] == "audit" for a in usa.store.alerts())
                ),
                what="both witnesses raising the alarm",
            )
            alert = next(a for a in mex.store.alerts() if a[1] == "audit")
            # the witness held an earlier size (not extended) or this very size (another tree)
            assert "does not extend" in alert[2] or "two different trees" in alert[2]
    # the cosignatures the witnesses gave before no longer match: and the alarms are on record
    assert main(["audit", "--hub-home", str(hub.home.root), "verify"]) == 1
