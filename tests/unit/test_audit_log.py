"""The audit log in SQLite: idempotent appends, checkpoints, and tampering found by verify."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from schemas.audit import AuditEvent, EventType
from services.audit.log import AuditLog
from services.core.checkpoint import cosign
from services.core.encoding import uuid7
from services.core.merkle import MerkleTree, leaf_hash, verify_inclusion

ORIGIN = "cifta-exchange.example.org/audit"


def event(n: int, kind: EventType = EventType.STORED) -> AuditEvent:
    return AuditEvent(
        event_id=uuid7(), event=kind, msg_id=uuid7(), kind="info.trafficking_routes",
        sender="MEX", recipients=["USA", "COL"], actor="USA", handling="H2", confidential=True,
        envelope_sha256=hashlib.sha256(bytes([n])).hexdigest(),
        signature_sha256=hashlib.sha256(b"s" + bytes([n])).hexdigest(),
        occurred_at=datetime.now(UTC),
    )  # fmt: skip


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.sqlite")


def test_an_event_reported_twice_is_one_leaf(log: AuditLog) -> None:
    e = event(1)
    assert log.append(e) == (0, True)
    assert log.append(e) == (0, False)
    assert log.size == 1


def test_the_log_survives_a_reopen_and_keeps_growing(tmp_path: Path) -> None:
    first = AuditLog(tmp_path / "a.sqlite")
    for i in range(5):
        first.append(event(i))
    root = first.tree.root()
    first.close()
    again = AuditLog(tmp_path / "a.sqlite")
    assert again.size == 5 and again.tree.root() == root
    again.append(event(9))
    assert again.tree.root(5) == root


def test_an_append_reads_no_node_back_from_the_file(tmp_path: Path) -> None:
    # The left siblings an append hashes with were written by the appends before it: they are
    # read from memory, so a growing log costs its writes only (the same tree as in memory).
    first = AuditLog(tmp_path / "a.sqlite")
    for i in range(3):
        first.append(event(i))
    first.close()
    log = AuditLog(tmp_path / "a.sqlite")  # reopened: the first sibling must come from the file
    statements: list[str] = []
    log.db.set_trace_callback(statements.append)
    memory = MerkleTree()
    for i in range(3):
        memory.append(log.leaf(i))
    for i in range(3, 70):
        log.append(event(i))
        memory.append(log.leaf(i))
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT HASH FROM NODES")]
    assert len(reads) == 2  # (0, 2) and (1, 0): written before the reopen
    assert log.tree.root() == memory.root()


def test_inclusion_proofs_come_from_the_stored_tree(log: AuditLog) -> None:
    events = [event(i) for i in range(11)]
    for e in events:
        log.append(e)
    for i in range(11):
        leaf = log.leaf(i)
        assert verify_inclusion(
            leaf_hash(leaf), i, 11, log.tree.inclusion_proof(i), log.tree.root()
        )


def test_verify_finds_an_edited_row_a_forged_checkpoint_and_a_false_cosignature(
    log: AuditLog, tmp_path: Path
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    witness = ed25519.Ed25519PrivateKey.generate()
    for i in range(6):
        log.append(event(i))
    cp = log.checkpoint(ORIGIN, key)
    log.add_cosignature(cp.size, "witness/MEX", cosign(cp.note, "witness/MEX", witness))
    witnesses = {"witness/MEX": witness.public_key()}
    assert log.verify(ORIGIN, key.public_key(), witnesses) == []

    db = sqlite3.connect(tmp_path / "audit.sqlite")  # someone with the file edits a leaf
    leaf = db.execute("SELECT leaf FROM leaves WHERE idx = 2").fetchone()[0]
    db.execute("UPDATE leaves SET leaf = ? WHERE idx = 2", (leaf.replace(b"H2", b"H0"),))
    db.commit()
    problems = [p.what for p in log.verify(ORIGIN, key.public_key(), witnesses)]
    assert "node (0, 2) does not match its leaves" in problems
    assert f"checkpoint {cp.size} does not match the leaves" in problems
    assert "witness/MEX cosigned a root the leaves do not give" in problems

    other = ed25519.Ed25519PrivateKey.generate()
    db.execute("UPDATE leaves SET leaf = ? WHERE idx = 2", (leaf,))
    forged = log.tree.root()
    from services.core.checkpoint import sign_checkpoint

    db.execute("UPDATE checkpoints SET note = ? WHERE size = ?",
               (sign_checkpoint(ORIGIN, 6, forged, ORIGIN, other).note, cp.size))  # fmt: skip
    db.commit()
    assert [p.what for p in log.verify(ORIGIN, key.public_key(), witnesses)] == [
        "checkpoint 6 is not signed by the log"
    ]


def test_a_states_records_are_the_messages_it_sent_or_received(log: AuditLog) -> None:
    mine = event(1)
    others = event(2).model_copy(update={"sender": "BRA", "recipients": ["ARG"], "actor": "ARG"})
    log.append(mine)
    log.append(others)
    assert [e.event_id for _, e in log.events("COL")] == [mine.event_id]
    assert [e.event_id for _, e in log.events("ARG")] == [others.event_id]
    assert len(log.events()) == 2


def test_verify_flags_unknown_witnesses_bad_cosignatures_and_edited_columns(
    log: AuditLog, tmp_path: Path
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    witness, impostor = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    for i in range(3):
        log.append(event(i))
    cp = log.checkpoint(ORIGIN, key)
    log.add_cosignature(cp.size, "witness/MEX", cosign(cp.note, "witness/MEX", impostor))
    log.add_cosignature(cp.size, "witness/ZZZ", cosign(cp.note, "witness/ZZZ", impostor))
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("UPDATE leaves SET actor = 'COL' WHERE idx = 0")  # widen who sees it
    db.commit()
    problems = {
        p.what for p in log.verify(ORIGIN, key.public_key(), {"witness/MEX": witness.public_key()})
    }
    assert problems == {
        "cosignature of witness/MEX on 3 does not verify",
        "a cosignature by witness/ZZZ, not a known witness",
        "leaf 0's index columns differ from the leaf",
    }


def test_an_inclusion_proof_for_a_negative_index_is_refused() -> None:
    assert not verify_inclusion(leaf_hash(b"x"), -1, 1, [], leaf_hash(b"x"))


def test_a_group_sqlite_rolled_back_by_itself_is_never_committed_as_if_it_landed(
    log: AuditLog,
) -> None:
    """A full disk or an I/O error can end SQLite's transaction by itself: the records of the
    open group are gone, and the service must not be told they were committed."""
    log.begin()
    log.append(event(1), identity="e1")
    log.db.execute("ROLLBACK")  # what SQLite does on its own after SQLITE_FULL
    with pytest.raises(sqlite3.OperationalError, match="rolled back"):
        log.commit()
    with pytest.raises(sqlite3.OperationalError, match="rolled back"):
        log.begin()  # nothing new joins a group that is gone
    log.rollback()
    assert log.size == 0
    log.begin()
    log.append(event(2), identity="e2")
    log.commit()
    assert log.size == 1


def test_a_record_failing_after_sqlite_ended_the_group_leaves_no_leaf_in_memory(
    log: AuditLog,
) -> None:
    # The record's savepoint is gone with the transaction SQLite ended by itself: undoing it
    # fails, and the tree must still be read again from the file, not keep the leaf it appended
    # (the nodes last written are kept in memory, and a root would be served from them).
    log.begin()
    with log.batch():
        log.append(event(1), identity="e1")
    with pytest.raises(sqlite3.OperationalError), log.batch():
        log.append(event(2), identity="e2")
        log.db.execute("ROLLBACK")  # what SQLite does on its own after SQLITE_FULL
        raise OSError("the record's processing failed")
    assert log.size == 0
    assert log.tree.root() == MerkleTree().root()
    log.rollback()


class _CommitFails:
    """The log's connection, whose COMMIT fails as on a full disk: SQLite rolls back, raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT":
            self._db.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


@pytest.mark.parametrize("how", ["append", "batch"])
def test_a_failed_commit_leaves_the_tree_as_the_file_holds_it(log: AuditLog, how: str) -> None:
    log.append(event(1), identity="e1")
    real = log.db
    log.db = log.nodes.db = _CommitFails(real)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        if how == "append":
            log.append(event(2), identity="e2")
        else:
            with log.batch():
                log.append(event(2), identity="e2")
                log.append(event(3), identity="e3")
    log.db = log.nodes.db = real
    assert log.size == 1  # not the leaves whose transaction never landed
    log.append(event(4), identity="e4")  # the next leaf hashes with what the file holds
    memory = MerkleTree()
    for i in range(2):
        memory.append(log.leaf(i))
    assert log.tree.root() == memory.root()


def test_a_record_undone_in_its_savepoint_leaves_the_tree_as_the_database_holds_it(
    tmp_path: Path,
) -> None:
    # The nodes last written are also kept in memory (appends and roots read them): a leaf whose
    # savepoint is rolled back takes its nodes with it, and the next leaf is hashed with the
    # siblings in the file, as a reopened log (and verify, from the leaves) computes them.
    log = AuditLog(tmp_path / "audit.sqlite")
    kept = [event(n) for n in range(3)]
    log.begin()
    for e in kept:
        with log.batch():
            log.append(e)
    with pytest.raises(RuntimeError), log.batch():  # the 4th completes two subtrees, then fails
        log.append(event(3))
        raise RuntimeError("the record's processing failed after its append")
    with log.batch():
        log.append(event(4))
    log.commit()
    root, size = log.tree.root(), log.size
    log.close()
    reopened = AuditLog(tmp_path / "audit.sqlite")
    assert (size, reopened.size) == (4, 4)
    assert reopened.tree.root() == root
    assert reopened.verify(ORIGIN, ed25519.Ed25519PrivateKey.generate().public_key()) == []


def test_a_batch_failing_in_a_group_taken_together_undoes_the_whole_group(tmp_path: Path) -> None:
    # Without a savepoint per batch (``together``) a failure takes the whole open group with it:
    # nothing of it may be committed, the tree is what the file holds, and the log takes no
    # more until the caller has rolled back; then the group's batches can be taken again.
    log = AuditLog(tmp_path / "audit.sqlite")
    with log.batch():
        log.append(event(0))  # committed before the group
    log.begin()
    with log.together():
        for n in (1, 2):
            with log.batch():
                log.append(event(n))
        with pytest.raises(RuntimeError), log.batch():
            log.append(event(3))
            raise RuntimeError("the record's processing failed after its append")
    assert log.size == 1
    with pytest.raises(sqlite3.OperationalError, match="rolled back"):
        log.begin()
    log.rollback()
    log.begin()
    for n in (1, 2, 3):  # taken again, each in its own savepoint
        with log.batch():
            log.append(event(n))
    log.commit()
    root = log.tree.root()
    log.close()
    reopened = AuditLog(tmp_path / "audit.sqlite")
    assert reopened.size == 4 and reopened.tree.root() == root
    assert reopened.verify(ORIGIN, ed25519.Ed25519PrivateKey.generate().public_key()) == []
