"""The audit log in SQLite: one leaf per event, the tree's complete subtrees, signed checkpoints
and the witnesses' cosignatures.

A leaf is the event's canonical JSON (metadata only, never a body). Appending is idempotent on
the event's identity, so a redelivered message or a restart adds nothing twice. ``verify``
recomputes the whole tree from the leaves and checks every stored node and every checkpoint: an
edited row is found.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from schemas.audit import AuditEvent, Leaf, UnreadableEnvelope
from services.core.checkpoint import (
    Checkpoint,
    NoteError,
    parse_checkpoint,
    sign_checkpoint,
    signed_by,
)
from services.core.events import parse_leaf
from services.core.merkle import MemoryStore, MerkleTree, leaf_hash

#: How often ``verify`` reports its progress, in leaves.
PROGRESS_EVERY = 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (
    idx          INTEGER PRIMARY KEY,
    identity     TEXT NOT NULL UNIQUE,   -- what makes the event the same event
    leaf         BLOB NOT NULL,          -- the event's canonical JSON
    msg_id       TEXT NOT NULL,
    sender       TEXT NOT NULL,
    recipients   TEXT NOT NULL,          -- comma-separated party codes
    actor        TEXT NOT NULL,
    event        TEXT NOT NULL,
    occurred_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS leaves_msg ON leaves (msg_id);
-- the envelope hash that ends a `stored/<recipient>/<sha256>` identity: node events are
-- attributed by it, one lookup per event (a LIKE on the identity would scan the whole log)
CREATE INDEX IF NOT EXISTS leaves_by_sha ON leaves (substr(identity, -64));
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarms (at TEXT NOT NULL, witness TEXT NOT NULL, detail TEXT NOT NULL);
-- a witness's alarms are limited per party in time: counted by this index
CREATE INDEX IF NOT EXISTS alarms_by_witness ON alarms (witness, at);
CREATE TABLE IF NOT EXISTS cosignatures (
    size INTEGER NOT NULL, witness TEXT NOT NULL, note TEXT NOT NULL, PRIMARY KEY (size, witness)
);
"""


def identity_of(event: Leaf) -> str:
    """An event's identity: the same fact reported twice is one leaf."""
    return event.event_id


def index_columns(event: Leaf) -> tuple[str, str, str, str]:
    """(msg_id, actor, event, occurred_at) as the leaves table indexes a leaf. An unreadable
    envelope names no message: its own event id stands in the msg_id column."""
    if isinstance(event, UnreadableEnvelope):
        return event.event_id, event.actor, event.event, event.occurred_at.isoformat()
    return event.msg_id, event.actor, event.event.value, event.occurred_at.isoformat()


class SqliteNodes:
    """The tree's complete subtrees, in the log's SQLite file.

    The two nodes last written at each level are kept in memory too: an append writes a node,
    then reads its left sibling (the one written before it at that level), and a root reads the
    right edge. Nodes never change once written; a rolled-back transaction is followed by a new
    ``SqliteNodes`` (``_reload``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        row = db.execute("SELECT COUNT(*) FROM nodes WHERE level = 0").fetchone()
        self._size = int(row[0])
        self._recent: dict[tuple[int, int], bytes] = {}  # (level, index) -> hash

    def size(self) -> int:
        return self._size

    def get(self, level: int, index: int) -> bytes:
        recent = self._recent.get((level, index))
        if recent is not None:
            return recent
        row = self.db.execute(
            "SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise KeyError((level, index))
        return bytes(row[0])

    def put(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        self.db.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
        for level, index, value in nodes:
            self._recent[level, index] = value
            self._recent.pop((level, index - 2), None)  # two per level: the last, its sibling
            if level == 0:
                self._size += 1


@dataclass(frozen=True)
class Problem:
    """Something ``verify`` found wrong."""

    what: str


class AuditLog:
    def __init__(self, path: Path) -> None:
        self._open_group = False  # begin() opened a transaction not yet committed
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.executescript(SCHEMA)
        self.nodes = SqliteNodes(self.db)
        self.tree = MerkleTree(self.nodes)
        self._savepoints = 0
        self._together = False  # inside ``together``: batches of an open group take no savepoint

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Append several events in one transaction (they all land, or none). Inside a
        transaction already open (``begin``: a group commit), a savepoint: a failure undoes
        this batch alone, and the whole group lands at its ``commit``. Inside ``together``, no
        savepoint: a failure undoes the whole group."""
        if self.db.in_transaction and self._together:
            try:
                yield
            except BaseException:
                self._abandon()  # the group with it: the caller takes its batches again
                raise
            return
        if self.db.in_transaction:
            self._savepoints += 1
            name = f"batch{self._savepoints}"
            self.db.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                try:  # SQLite may have ended the whole transaction itself (a full disk)
                    self.db.execute(f"ROLLBACK TO {name}")
                    self.db.execute(f"RELEASE {name}")
                finally:
                    self._reload()  # the tree as the file holds it, whatever happened
                raise
            self.db.execute(f"RELEASE {name}")
            return
        with self._own_transaction():
            yield

    @contextmanager
    def _own_transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE, then COMMIT. On any failure, the COMMIT's included (a full disk:
        SQLite rolls back by itself), the transaction is undone and the tree read again from
        what the file holds."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Roll back what is open, if anything, and read the tree again from the file."""
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
        finally:
            self._reload()

    @contextmanager
    def together(self) -> Iterator[None]:
        """Batches in the open group without a savepoint each, for a caller that can take the
        group's batches again: a failure undoes the whole group (``rollback`` before the next
        ``begin``). A savepoint makes SQLite keep the first image of every page a batch
        changes, which for one audit record is about as much work as the record itself."""
        self._together = True
        try:
            yield
        finally:
            self._together = False

    def begin(self) -> None:
        """Open a transaction for a group of batches, unless one is open (see ``commit``)."""
        if self._open_group and not self.db.in_transaction:
            raise sqlite3.OperationalError("the audit log's open group was rolled back")
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self._open_group = True

    def commit(self) -> None:
        """Make the open group durable (one fsync for all of it). Raises if SQLite ended the
        group's transaction by itself (a full disk, an I/O error): what it held is not there,
        and nothing of it may be acknowledged."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        elif self._open_group:  # until rollback() is called, nothing more is taken or committed
            raise sqlite3.OperationalError("the audit log's open group was rolled back")
        self._open_group = False

    def rollback(self) -> None:
        self._open_group = False
        self._abandon()

    def _reload(self) -> None:
        """The tree as the database holds it, after a rollback."""
        self.nodes = SqliteNodes(self.db)
        self.tree = MerkleTree(self.nodes)

    @property
    def size(self) -> int:
        return self.tree.size

    def append(
        self,
        event: Leaf,
        identity: str | None = None,
        parties: tuple[str, list[str]] | None = None,
    ) -> tuple[int, bool]:
        """Add the event's leaf unless one with the same identity is there (its event_id by
        default); (its index, whether it is new). ``parties`` (sender, recipients) files it
        under other parties than the event names (for access: who may see it)."""
        if parties is None and isinstance(event, UnreadableEnvelope):
            parties = (event.actor, [event.actor])  # no header: filed under its reporter
        sender, recipients = parties or (event.sender, event.recipients)  # type: ignore[union-attr]
        identity = identity or identity_of(event)
        # model_dump_json(exclude_none=True), as the bytes it encodes to
        leaf = type(event).__pydantic_serializer__.to_json(event, exclude_none=True)
        msg_id, actor, kind, at = index_columns(event)
        # its own transaction unless it is part of a batch or a group (whose failure undoes it)
        with nullcontext() if self.db.in_transaction else self._own_transaction():
            index = self.tree.size
            # one statement both checks and inserts: the same identity again changes nothing
            inserted = self.db.execute(
                "INSERT INTO leaves (idx, identity, leaf, msg_id, sender, recipients, actor, event,"
                " occurred_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (identity) DO NOTHING",
                (index, identity, leaf, msg_id, sender, ",".join(recipients), actor, kind, at),
            ).rowcount
            if inserted:
                self.tree.append_hash(leaf_hash(leaf))  # the leaf's index is the tree's size
            else:
                row = self.db.execute(
                    "SELECT idx FROM leaves WHERE identity = ?", (identity,)
                ).fetchone()
                index = int(row[0])
        return index, bool(inserted)

    def stored_leaf(self, envelope_sha256: str) -> AuditEvent | None:
        """The ``stored`` event of an envelope, built from its verified signed header."""
        row = self.db.execute(
            "SELECT leaf FROM leaves WHERE substr(identity, -64) = ? AND identity LIKE ? LIMIT 1",
            (envelope_sha256, f"stored/%/{envelope_sha256}"),
        ).fetchone()
        return None if row is None else AuditEvent.model_validate_json(row[0])

    def leaf(self, index: int) -> bytes:
        row = self.db.execute("SELECT leaf FROM leaves WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise KeyError(index)
        return bytes(row[0])

    def leaves_of(self, msg_id: str) -> list[tuple[int, AuditEvent]]:
        """The events of one message (an unreadable envelope names none)."""
        rows = self.db.execute(
            "SELECT idx, leaf FROM leaves WHERE msg_id = ? AND event != 'unreadable' ORDER BY idx",
            (msg_id,),
        ).fetchall()
        return [(int(i), AuditEvent.model_validate_json(leaf)) for i, leaf in rows]

    def events(
        self, party: str | None = None, *, after: int = -1, limit: int | None = None
    ) -> list[tuple[int, Leaf]]:
        """Every leaf, or those filed under ``party`` (messages it sent or received, what it
        reported alone), by index: ``limit`` leaves after index ``after``, paged in SQL."""
        where, params = "idx > ?", [after]
        if party is not None:
            where += " AND (sender = ? OR ',' || recipients || ',' LIKE ?)"
            params += [party, f"%,{party},%"]  # type: ignore[list-item]
        sql = f"SELECT idx, leaf FROM leaves WHERE {where} ORDER BY idx"  # noqa: S608 (constants)
        if limit is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        rows = self.db.execute(sql, params).fetchall()
        return [(int(i), parse_leaf(leaf)) for i, leaf in rows]

    def trail(self, msg_id: str, party: str | None) -> dict[str, Any]:
        """A message's events with inclusion proofs against the latest checkpoint; only for a
        party that sent or received it (``party`` None: the secretariat, who sees all)."""
        events = self.leaves_of(msg_id)
        if not events:
            return {"error": "no such message"}
        if party is not None and party not in self._parties_of(msg_id):
            return {"error": "not a message of yours"}
        # the checkpoint to prove it against: one that covers every event of the message, the
        # latest the witnesses cosigned if there is one
        need = max(i for i, _ in events) + 1
        covering = [c for c in self.checkpoints() if c.size >= need]
        cosigned = {size for size, _, _ in self.cosignatures()}
        witnessed = [c for c in covering if c.size in cosigned]
        latest = witnessed[-1] if witnessed else (covering[-1] if covering else None)
        if latest is None:
            return {"error": "no checkpoint yet"}
        proven = [
            {
                "index": index,
                "leaf": base64.b64encode(self.leaf(index)).decode(),
                "path": [h.hex() for h in self.tree.inclusion_proof(index, latest.size)],
            }
            for index, _ in events
            if index < latest.size  # later events are proven by the next checkpoint
        ]
        witnesses = [w for size, w, _ in self.cosignatures() if size == latest.size]
        return {"checkpoint": latest.note, "events": proven, "witnesses": witnesses}

    def _parties_of(self, msg_id: str) -> set[str]:
        """Who may see a message's trail: as its leaves are filed (stored leaves: the signed
        envelope's sender and recipients; an unverified report: its reporter alone)."""
        parties: set[str] = set()
        for sender, recipients in self.db.execute(
            "SELECT sender, recipients FROM leaves WHERE msg_id = ?", (msg_id,)
        ):
            parties |= {sender, *recipients.split(",")}
        return parties

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoint(self, origin: str, key: ed25519.Ed25519PrivateKey) -> Checkpoint:
        """Sign and store the current tree head (once per size)."""
        size = self.size
        latest = self.latest_checkpoint()
        if latest is not None and latest.size == size:
            return latest
        cp = sign_checkpoint(origin, size, self.tree.root(size), origin, key)
        self.db.execute(
            "INSERT OR IGNORE INTO checkpoints (size, note) VALUES (?, ?)", (size, cp.note)
        )
        return cp

    def latest_checkpoint(self) -> Checkpoint | None:
        row = self.db.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else parse_checkpoint(row[0])

    def checkpoints(self) -> list[Checkpoint]:
        rows = self.db.execute("SELECT note FROM checkpoints ORDER BY size").fetchall()
        return [parse_checkpoint(r[0]) for r in rows]

    def add_cosignature(self, size: int, witness: str, note: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO cosignatures (size, witness, note) VALUES (?, ?, ?)",
            (size, witness, note),
        )

    def add_alarm(self, witness: str, detail: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO alarms (at, witness, detail) VALUES (?, ?, ?)",
            (at.isoformat(), witness, detail),
        )

    def alarms_since(self, witness: str, since: datetime) -> int:
        """How many alarms ``witness`` raised at or after ``since`` (for its rate limit)."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM alarms WHERE witness = ? AND at >= ?",
            (witness, since.isoformat()),
        ).fetchone()
        return int(row[0])

    def alarms(self) -> list[tuple[str, str, str]]:
        rows = self.db.execute("SELECT at, witness, detail FROM alarms ORDER BY rowid").fetchall()
        return [(str(a), str(w), str(d)) for a, w, d in rows]

    def cosignatures(self) -> list[tuple[int, str, str]]:
        rows = self.db.execute(
            "SELECT size, witness, note FROM cosignatures ORDER BY size"
        ).fetchall()
        return [(int(s), str(w), str(n)) for s, w, n in rows]

    # -- verification --------------------------------------------------------------------------

    def verify(
        self,
        origin: str,
        log_key: ed25519.Ed25519PublicKey,
        witnesses: dict[str, ed25519.Ed25519PublicKey | list[ed25519.Ed25519PublicKey]]
        | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Problem]:
        """Recompute the whole tree from the leaves; check every node, checkpoint and
        cosignature. An empty list means the log is intact. ``progress(done, total)`` is told
        of the leaves recomputed, every ``PROGRESS_EVERY`` and at the end."""
        problems: list[Problem] = []
        fresh = MerkleTree(MemoryStore())
        rows = self.db.execute(
            "SELECT idx, leaf, msg_id, actor, event, occurred_at FROM leaves ORDER BY idx"
        ).fetchall()
        for expected, (idx, leaf, msg_id, actor, kind, at) in enumerate(rows):
            if progress is not None and expected % PROGRESS_EVERY == 0:
                progress(expected, len(rows))
            if idx != expected:
                problems.append(Problem(f"leaf {expected} is missing"))
                break
            fresh.append(bytes(leaf))
            # the columns must say what the leaf says
            if (msg_id, actor, kind, at) != index_columns(parse_leaf(leaf)):
                problems.append(Problem(f"leaf {idx}'s index columns differ from the leaf"))
        if progress is not None:
            progress(len(rows), len(rows))
        stored = self.db.execute("SELECT level, idx, hash FROM nodes").fetchall()
        for level, idx, h in stored:
            try:
                if fresh.store.get(level, idx) != bytes(h):
                    problems.append(Problem(f"node ({level}, {idx}) does not match its leaves"))
            except IndexError:
                problems.append(Problem(f"node ({level}, {idx}) has no leaves"))
        for cp_row in self.db.execute("SELECT size, note FROM checkpoints").fetchall():
            size, note = int(cp_row[0]), str(cp_row[1])
            try:
                cp = parse_checkpoint(note)
            except NoteError:
                problems.append(Problem(f"checkpoint {size} does not parse"))
                continue
            if not signed_by(note, origin, log_key):
                problems.append(Problem(f"checkpoint {size} is not signed by the log"))
            if cp.size > fresh.size or fresh.root(cp.size) != cp.root:
                problems.append(Problem(f"checkpoint {size} does not match the leaves"))
        for size, witness, note in self.cosignatures():
            known = (witnesses or {}).get(witness)
            if known is None:
                problems.append(Problem(f"a cosignature by {witness}, not a known witness"))
                continue
            keys = known if isinstance(known, list) else [known]  # a witness may have rotated
            if not any(signed_by(note, witness, k) for k in keys):
                problems.append(Problem(f"cosignature of {witness} on {size} does not verify"))
            elif parse_checkpoint(note).root != (fresh.root(size) if size <= fresh.size else b""):
                problems.append(Problem(f"{witness} cosigned a root the leaves do not give"))
        return problems
