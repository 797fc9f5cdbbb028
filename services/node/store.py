"""The node's SQLite store (WAL): messages sealed at rest, the transactional outbox, what the
recipients answered, what this node refused, and who opened what.

Messages are kept as envelopes: an inbound one exactly as received (sealed to this node); an
outbound one as sent plus a *local copy* sealed to this node's own key, so the sender can read what
it sent. Nothing in this file is plaintext but routing and handling metadata.

Every method is one transaction and never awaits, so concurrent handlers on one event loop cannot
interleave inside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.core.envelope import ProtectedHeader

SCHEMA_VERSION = 8

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE messages (
        msg_id           TEXT PRIMARY KEY,
        direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind             TEXT NOT NULL,
        sender           TEXT NOT NULL,
        recipients       TEXT NOT NULL,   -- JSON array of party codes
        handling         TEXT NOT NULL,
        confidential     INTEGER NOT NULL,
        case_id          TEXT,
        in_reply_to      TEXT,
        created_at       TEXT NOT NULL,
        stored_at        TEXT NOT NULL,   -- inbound: the broker's storage time
        envelope         BLOB NOT NULL,
        envelope_sha256  TEXT NOT NULL,
        local_copy       BLOB,            -- outbound: the same body sealed to this node
        stream_seq       INTEGER,         -- inbound: sequence in this node's inbox stream
        first_read_at    TEXT
    );
    CREATE INDEX messages_case ON messages (case_id, created_at);
    CREATE INDEX messages_listing ON messages (direction, kind, created_at);

    CREATE TABLE outbox (
        msg_id           TEXT NOT NULL REFERENCES messages (msg_id),
        recipient        TEXT NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'sent')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL,   -- monotonic-free: Unix seconds
        last_error       TEXT,
        sent_at          TEXT,
        stream_seq       INTEGER,         -- the PubAck's sequence in the recipient's inbox
        PRIMARY KEY (msg_id, recipient)
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

    CREATE TABLE deliveries (            -- what each recipient answered about our messages
        msg_id           TEXT NOT NULL,
        recipient        TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('delivered', 'rejected')),
        reason           TEXT,
        detail           TEXT,
        at               TEXT NOT NULL,
        answer_msg_id    TEXT NOT NULL,
        hash_matches     INTEGER NOT NULL, -- the answer names the envelope we sent, byte for byte
        PRIMARY KEY (msg_id, recipient)
    );

    CREATE TABLE rejections (            -- envelopes this node refused
        stream_seq       INTEGER PRIMARY KEY,
        publisher        TEXT NOT NULL,   -- the sending account, as the broker guarantees it
        envelope_sha256  TEXT NOT NULL,
        msg_id           TEXT,
        kind             TEXT,
        reason           TEXT NOT NULL,
        detail           TEXT NOT NULL,
        rejected_at      TEXT NOT NULL,
        answer_msg_id    TEXT,            -- our signed rejection, if we sent one
        quarantined      INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE opens (                 -- every time an officer opened a message
        msg_id           TEXT NOT NULL REFERENCES messages (msg_id),
        officer          TEXT NOT NULL,
        at               TEXT NOT NULL
    );
    """,
    2: """
    CREATE INDEX messages_by_hash ON messages (envelope_sha256);
    """,
    # A refusal is identified by the stream sequence AND the envelope's hash: sequences start
    # again if an inbox stream is ever recreated or restored from an older backup.
    3: """
    CREATE TABLE rejections_v3 (
        stream_seq       INTEGER NOT NULL,
        publisher        TEXT NOT NULL,
        envelope_sha256  TEXT NOT NULL,
        msg_id           TEXT,
        kind             TEXT,
        reason           TEXT NOT NULL,
        detail           TEXT NOT NULL,
        rejected_at      TEXT NOT NULL,
        answer_msg_id    TEXT,
        quarantined      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (stream_seq, envelope_sha256)
    );
    INSERT INTO rejections_v3 SELECT stream_seq, publisher, envelope_sha256, msg_id, kind, reason,
        detail, rejected_at, answer_msg_id, quarantined FROM rejections;
    DROP TABLE rejections;
    ALTER TABLE rejections_v3 RENAME TO rejections;
    """,
    5: """
    CREATE TABLE audit_outbox (          -- signed events for the audit service, with their fact
        event_id         TEXT PRIMARY KEY,
        payload          BLOB NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'sent')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL
    );
    CREATE INDEX audit_outbox_due ON audit_outbox (state, next_attempt_at);
    CREATE TABLE witnessed (             -- the latest audit checkpoint this node verified
        size             INTEGER NOT NULL,
        note             TEXT NOT NULL
    );
    """,
    # The Convention's procedures (services/node/casework.py): one row per tracing request and
    # requested state, licensed transfer, controlled delivery, and received message under Art. XII
    # consent. Derived from the messages: `cifta node rebuild-casework` makes it again from them.
    6: """
    CREATE TABLE casework (
        family           TEXT NOT NULL,   -- tracing, transfer, delivery, confidentiality
        key              TEXT NOT NULL,
        state            TEXT NOT NULL,   -- JSON of the workflow's state
        open             INTEGER NOT NULL, -- it still has deadlines to watch
        case_id          TEXT,
        updated_at       TEXT NOT NULL,
        PRIMARY KEY (family, key)
    );
    CREATE INDEX casework_open ON casework (open, family);
    """,
    # Copies this node forwarded under Art. XII, and the received message each copies: the copy's
    # envelope does not say it (its sender is this node), so the rules and the originator of the
    # original follow the copy from here (an export of the copy, a consent asked about it).
    7: """
    CREATE TABLE forwards (
        copy_msg_id      TEXT PRIMARY KEY REFERENCES messages (msg_id),
        original_msg_id  TEXT NOT NULL REFERENCES messages (msg_id),
        officer          TEXT NOT NULL,
        at               TEXT NOT NULL
    );
    """,
    # Deliveries that cannot be decided yet (services/node/parking.py), acknowledged at the hub
    # and kept here under their publisher's budget; and facts the node keeps about itself (its
    # clock's offset from the hub's, measured by the running node, read by every command).
    8: """
    CREATE TABLE parked (
        stream_seq       INTEGER NOT NULL,
        envelope_sha256  TEXT NOT NULL,
        publisher        TEXT NOT NULL,   -- the account that published it (a broker fact)
        subject          TEXT NOT NULL,
        data             BLOB NOT NULL,
        stored_at        TEXT NOT NULL,   -- the hub's storage time
        reason           TEXT NOT NULL,   -- why it waits: unknown_sender_key, illegal_transition
        detail           TEXT NOT NULL,
        case_id          TEXT,            -- from the clear header, to wake it when its case moves
        attempts         INTEGER NOT NULL,
        parked_at        REAL NOT NULL,   -- Unix seconds
        next_attempt_at  REAL NOT NULL,
        PRIMARY KEY (stream_seq, envelope_sha256)
    );
    CREATE INDEX parked_due ON parked (next_attempt_at);
    CREATE INDEX parked_publisher ON parked (publisher);
    CREATE INDEX parked_case ON parked (case_id);
    CREATE TABLE node_state (
        name             TEXT PRIMARY KEY,
        value            TEXT NOT NULL,   -- JSON
        at               TEXT NOT NULL
    );
    """,
    4: """
    CREATE TABLE alerts (                -- what an operator must look at: a forged or replayed
        at               TEXT NOT NULL,   -- directory entry, for instance
        source           TEXT NOT NULL,
        detail           TEXT NOT NULL
    );
    """,
}


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Outgoing:
    """A sealed message about to be stored and queued for its recipients."""

    header: ProtectedHeader
    envelope: bytes
    envelope_sha256: str
    local_copy: bytes | None  # our own copy of the content key (``pack_copy``)


@dataclass(frozen=True)
class Outcome:
    """What a recipient's receipt or rejection says about one of our messages."""

    msg_id: str
    recipient: str
    status: str  # delivered, rejected
    reason: str | None
    detail: str | None
    at: datetime
    answer_msg_id: str
    envelope_sha256: str  # of the envelope the recipient got: must be the one we sent


_KID_LEN = 32


def pack_copy(kid: str, wrapped: bytes) -> bytes:
    """The sender's copy of a content key, as stored: key id, then the wrapped key."""
    return kid.encode("ascii") + wrapped


def unpack_copy(blob: bytes) -> tuple[str, bytes]:
    return blob[:_KID_LEN].decode("ascii"), blob[_KID_LEN:]


@dataclass(frozen=True)
class StoredMessage:
    msg_id: str
    direction: str
    kind: str
    sender: str
    recipients: list[str]
    handling: str
    confidential: bool
    case_id: str | None
    in_reply_to: str | None
    created_at: str
    stored_at: str
    envelope: bytes
    envelope_sha256: str
    local_copy: bytes | None
    stream_seq: int | None
    first_read_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredMessage:
        data = dict(row)
        data["recipients"] = json.loads(data["recipients"])
        data["confidential"] = bool(data["confidential"])
        return cls(**data)


@dataclass(frozen=True)
class OutboxItem:
    msg_id: str
    recipient: str
    attempts: int
    envelope: bytes


@dataclass(frozen=True)
class RecipientStatus:
    recipient: str
    state: str  # pending, sent, delivered, rejected
    attempts: int
    last_error: str | None
    sent_at: str | None
    answered_at: str | None
    reason: str | None
    detail: str | None


class Store:
    """One node's SQLite file."""

    def __init__(self, path: Path, *, durable: bool = False, busy_timeout_s: float = 10.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # routing metadata and officers' names: owner only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a commit survives the process being killed (the fault tests do it); the
        # last commits may be lost to a power cut, as the hub's own JetStream store would lose
        # its unsynced writes. CIFTA_NODE_DURABLE_COMMITS turns FULL (fsync per commit) on.
        self._db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        # the CLI and the node share the file: wait that long for the other's write lock
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the node's other tables' repositories (reads)."""
        return self._db

    def tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One transaction, or a part of the enclosing one (for the other repositories)."""
        return self._tx()

    def probe(self) -> bool:
        """Whether the store can take a write now: a write transaction on a connection of its
        own, with a short wait for the lock, so that a failing store is told apart from a
        message that fails."""
        try:
            probe = sqlite3.connect(self.path, isolation_level=None, timeout=0.5)
        except sqlite3.Error:
            return False
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute(
                "INSERT OR REPLACE INTO node_state (name, value, at) VALUES ('probe', '1', ?)",
                (iso(datetime.now(UTC)),),
            )
            probe.execute("COMMIT")
            return True
        except sqlite3.Error:
            return False
        finally:
            probe.close()

    def set_state(self, name: str, value: object, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO node_state (name, value, at) VALUES (?, ?, ?)",
                (name, json.dumps(value), iso(now)),
            )

    def state(self, name: str) -> tuple[Any, datetime] | None:
        """A fact the node keeps about itself, and when it was written."""
        row = self._db.execute(
            "SELECT value, at FROM node_state WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), datetime.fromisoformat(row[1].replace("Z", "+00:00"))

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction; inside :meth:`transaction`, a part of that one."""
        if self._db.in_transaction:
            yield self._db  # the outer transaction commits or rolls back
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # never leave one open: the next would join it silently
                self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the enclosing transaction that is undone alone if it fails (one message of
        a group commit), or a transaction of its own outside one."""
        if not self._db.in_transaction:
            with self._tx():
                yield
            return
        self._db.execute("SAVEPOINT part")
        try:
            yield
        except BaseException:
            if self._db.in_transaction:  # some failures (a full disk) end the transaction
                self._db.execute("ROLLBACK TO part")
                self._db.execute("RELEASE part")
            raise
        self._db.execute("RELEASE part")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several store operations as one transaction (the write lock taken at once, so another
        process sharing the file, such as the officer's CLI, cannot interleave)."""
        with self._tx():
            yield

    def _migrate(self) -> None:
        with self._tx() as db:
            current = db.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"store schema {current} is newer than this software")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version}")

    # -- writing -------------------------------------------------------------------------------

    def _insert_message(
        self,
        db: sqlite3.Connection,
        h: ProtectedHeader,
        *,
        direction: str,
        envelope: bytes,
        envelope_sha256: str,
        stored_at: datetime,
        local_copy: bytes | None = None,
        stream_seq: int | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO messages (msg_id, direction, kind, sender, recipients, handling,"
            " confidential, case_id, in_reply_to, created_at, stored_at, envelope,"
            " envelope_sha256, local_copy, stream_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                h.msg_id, direction, h.kind, h.sender, json.dumps(h.recipients), h.handling.value,
                int(h.confidential), h.case_id, h.in_reply_to, iso(h.created_at),
                iso(stored_at), envelope, envelope_sha256, local_copy, stream_seq,
            ),
        )  # fmt: skip

    def add_outgoing(
        self, out: Outgoing, *, now: datetime, events: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Store a sealed outgoing message and queue it for every recipient, in one transaction."""
        with self._tx() as db:
            self._queue(db, out, now=now)
            self._queue_events(db, events)

    def add_incoming(
        self,
        h: ProtectedHeader,
        envelope: bytes,
        envelope_sha256: str,
        *,
        stored_at: datetime,
        stream_seq: int,
        answer: Outgoing | None,
        outcome: Outcome | None = None,
        now: datetime,
        events: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Store an accepted envelope and, in the same transaction, queue our signed receipt or
        record the outcome the envelope reports (when it is a receipt or a rejection)."""
        with self._tx() as db:
            self._insert_message(
                db, h, direction="in", envelope=envelope, envelope_sha256=envelope_sha256,
                stored_at=stored_at, stream_seq=stream_seq,
            )  # fmt: skip
            if answer is not None:
                self._queue(db, answer, now=now)
            if outcome is not None:
                self._record_outcome(db, outcome)
            self._queue_events(db, events)

    def _queue(self, db: sqlite3.Connection, out: Outgoing, *, now: datetime) -> None:
        h = out.header
        self._insert_message(
            db, h, direction="out", envelope=out.envelope, envelope_sha256=out.envelope_sha256,
            stored_at=now, local_copy=out.local_copy,
        )  # fmt: skip
        db.executemany(
            "INSERT INTO outbox (msg_id, recipient, state, next_attempt_at)"
            " VALUES (?, ?, 'pending', ?)",
            # due at once, on the publisher's own time (never a test's or a message's clock)
            [(h.msg_id, r, time.time()) for r in h.recipients],
        )

    def record_rejection(
        self,
        *,
        stream_seq: int,
        publisher: str,
        envelope_sha256: str,
        msg_id: str | None,
        kind: str | None,
        reason: str,
        detail: str,
        now: datetime,
        answer: Outgoing | None,
        events: Sequence[tuple[str, bytes]] = (),
    ) -> bool:
        """Record that we refused the envelope at ``stream_seq`` (once) and queue our answer.

        Returns False when it was already recorded (a redelivery): nothing is queued twice.
        """
        with self._tx() as db:
            if db.execute(
                "SELECT 1 FROM rejections WHERE stream_seq = ? AND envelope_sha256 = ?",
                (stream_seq, envelope_sha256),
            ).fetchone():
                return False
            db.execute(
                "INSERT INTO rejections (stream_seq, publisher, envelope_sha256, msg_id, kind,"
                " reason, detail, rejected_at, answer_msg_id) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    stream_seq, publisher, envelope_sha256, msg_id, kind, reason, detail,
                    iso(now), None if answer is None else answer.header.msg_id,
                ),
            )  # fmt: skip
            if answer is not None:
                self._queue(db, answer, now=now)
            self._queue_events(db, events)
            return True

    def mark_quarantined(
        self, stream_seq: int, envelope_sha256: str, events: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        with self._tx() as db:
            self._queue_events(db, events)
            db.execute(
                "UPDATE rejections SET quarantined = 1"
                " WHERE stream_seq = ? AND envelope_sha256 = ?",
                (stream_seq, envelope_sha256),
            )

    @staticmethod
    def _record_outcome(db: sqlite3.Connection, o: Outcome) -> None:
        """A recipient's receipt or rejection of one of our messages (the first one counts)."""
        sent = db.execute(
            "SELECT envelope_sha256 FROM messages WHERE msg_id = ? AND direction = 'out'",
            (o.msg_id,),
        ).fetchone()
        matches = sent is not None and sent[0] == o.envelope_sha256
        db.execute(
            "INSERT OR IGNORE INTO deliveries (msg_id, recipient, status, reason, detail, at,"
            " answer_msg_id, hash_matches) VALUES (?,?,?,?,?,?,?,?)",
            (o.msg_id, o.recipient, o.status, o.reason, o.detail, iso(o.at), o.answer_msg_id,
             int(matches)),
        )  # fmt: skip

    def record_alert(self, source: str, detail: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO alerts (at, source, detail) VALUES (?, ?, ?)",
                (iso(now), source, detail),
            )

    # -- casework -----------------------------------------------------------------------------

    def case(self, family: str, key: str) -> tuple[str, str | None] | None:
        """(state JSON, case_id) of one workflow."""
        row = self._db.execute(
            "SELECT state, case_id FROM casework WHERE family = ? AND key = ?", (family, key)
        ).fetchone()
        return None if row is None else (str(row[0]), row[1])

    def put_case(
        self, family: str, key: str, state: str, *, open: bool, case_id: str | None, now: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO casework (family, key, state, open, case_id, updated_at)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (family, key) DO UPDATE SET"
                " state = excluded.state, open = excluded.open, updated_at = excluded.updated_at",
                (family, key, state, int(open), case_id, iso(now)),
            )

    def cases(
        self, family: str, *, open_only: bool = False, key_suffix: str | None = None
    ) -> list[tuple[str, str, str | None]]:
        """(key, state JSON, case_id) of a family's workflows, oldest first; with ``key_suffix``,
        only those whose key ends with it (``<owner>/<id>``: the cases of one id)."""
        sql = "SELECT key, state, case_id FROM casework WHERE family = ?"
        args: list[object] = [family]
        if open_only:
            sql += " AND open = 1"
        if key_suffix is not None:
            sql += " AND substr(key, -?) = ?"
            args += [len(key_suffix), key_suffix]
        rows = self._db.execute(sql + " ORDER BY rowid", args).fetchall()
        return [(str(r[0]), str(r[1]), r[2]) for r in rows]

    def clear_cases(self) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM casework")

    def messages_of_families(self, families: Sequence[str]) -> list[StoredMessage]:
        """Every stored message of these families, in the order this node took them (sent or
        accepted): the order its procedures saw them in. Not by ``created_at``, which is each
        sender's own clock and may put an answer before its request."""
        where = " OR ".join("kind LIKE ?" for _ in families)
        rows = self._db.execute(
            f"SELECT * FROM messages WHERE {where} ORDER BY rowid",  # noqa: S608
            [f"{f}.%" for f in families],
        ).fetchall()
        return [StoredMessage.from_row(r) for r in rows]

    def add_forward(
        self, copy_msg_id: str, original_msg_id: str, officer: str, now: datetime
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO forwards (copy_msg_id, original_msg_id, officer, at) VALUES (?,?,?,?)",
                (copy_msg_id, original_msg_id, officer, iso(now)),
            )

    def original_of(self, copy_msg_id: str) -> str | None:
        """The received message a forwarded copy copies, if it is one."""
        row = self._db.execute(
            "SELECT original_msg_id FROM forwards WHERE copy_msg_id = ?", (copy_msg_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def add_events(self, events: Sequence[tuple[str, bytes]]) -> None:
        with self._tx() as db:
            self._queue_events(db, events)

    def alerts(self) -> list[tuple[str, str, str]]:
        rows = self._db.execute("SELECT at, source, detail FROM alerts ORDER BY rowid").fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def record_open(
        self, msg_id: str, officer: str, now: datetime, events: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        with self._tx() as db:
            self._queue_events(db, events)
            db.execute(
                "INSERT INTO opens (msg_id, officer, at) VALUES (?, ?, ?)",
                (msg_id, officer, iso(now)),
            )
            db.execute(
                "UPDATE messages SET first_read_at = ? WHERE msg_id = ? AND first_read_at IS NULL",
                (iso(now), msg_id),
            )

    @staticmethod
    def _queue_events(db: sqlite3.Connection, events: Sequence[tuple[str, bytes]]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO audit_outbox (event_id, payload, state, next_attempt_at)"
            " VALUES (?, ?, 'pending', ?)",
            [(event_id, payload, time.time()) for event_id, payload in events],
        )

    def due_events(self, now: float, limit: int) -> list[tuple[str, bytes, int]]:
        rows = self._db.execute(
            "SELECT event_id, payload, attempts FROM audit_outbox WHERE state = 'pending'"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [(str(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def event_sent(self, event_ids: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE audit_outbox SET state = 'sent' WHERE event_id = ?",
                [(e,) for e in event_ids],
            )

    def events_retry(self, retries: Sequence[tuple[str, float]]) -> None:
        """(event_id, next attempt) of events a round could not publish, in one commit."""
        with self._tx() as db:
            db.executemany(
                "UPDATE audit_outbox SET attempts = attempts + 1, next_attempt_at = ?"
                " WHERE event_id = ?",
                [(at, event_id) for event_id, at in retries],
            )

    def pending_events(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM audit_outbox WHERE state = 'pending'"
        ).fetchone()
        return int(row[0])

    def witnessed(self) -> str | None:
        row = self._db.execute("SELECT note FROM witnessed ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def set_witnessed(self, size: int, note: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM witnessed")
            db.execute("INSERT INTO witnessed (size, note) VALUES (?, ?)", (size, note))

    # -- the outbox ------------------------------------------------------------------------------

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        rows = self._db.execute(
            "SELECT o.msg_id, o.recipient, o.attempts, m.envelope FROM outbox o"
            " JOIN messages m USING (msg_id)"
            " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
            " ORDER BY o.next_attempt_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [OutboxItem(r[0], r[1], r[2], r[3]) for r in rows]

    def next_due_at(self) -> float | None:
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, acks: list[tuple[str, str, int]], now: datetime) -> None:
        """Mark (msg_id, recipient, stream sequence) sent on their PubAcks, in one transaction."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET state = 'sent', sent_at = ?, stream_seq = ?,"
                " attempts = attempts + 1, last_error = NULL WHERE msg_id = ? AND recipient = ?",
                [(iso(now), seq, msg_id, recipient) for msg_id, recipient, seq in acks],
            )

    def mark_retry(self, retries: Sequence[tuple[str, str, str, float]]) -> None:
        """(msg_id, recipient, error, next attempt) of publishes a round could not make, in one
        commit (while the hub is down, a round fails whole)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE msg_id = ? AND recipient = ? AND state = 'pending'",
                [(e[:500], at, msg_id, recipient) for msg_id, recipient, e, at in retries],
            )

    # -- reading ---------------------------------------------------------------------------------

    def message(self, msg_id: str) -> StoredMessage | None:
        row = self._db.execute("SELECT * FROM messages WHERE msg_id = ?", (msg_id,)).fetchone()
        return None if row is None else StoredMessage.from_row(row)

    def envelope_hash(self, msg_id: str) -> str | None:
        row = self._db.execute(
            "SELECT envelope_sha256 FROM messages WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def message_with_hash(self, envelope_sha256: str) -> tuple[str, str] | None:
        """(msg_id, kind) of the stored message whose envelope has this hash, if any."""
        row = self._db.execute(
            "SELECT msg_id, kind FROM messages WHERE envelope_sha256 = ? LIMIT 1",
            (envelope_sha256,),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def has_message(self, msg_id: str) -> bool:
        return self.envelope_hash(msg_id) is not None

    def messages(
        self,
        *,
        direction: str | None = None,
        case_id: str | None = None,
        kind: str | None = None,
        party: str | None = None,
        unread: bool = False,
        include_protocol: bool = False,
        limit: int = 1000,
    ) -> list[StoredMessage]:
        where, args = [], []
        if direction:
            where.append("direction = ?")
            args.append(direction)
        if case_id:
            where.append("case_id = ?")
            args.append(case_id)
        if kind:
            where.append("(kind = ? OR kind LIKE ?)")
            args += [kind, kind.rstrip(".*") + ".%"]
        if party:
            where.append(
                "(sender = ? OR EXISTS (SELECT 1 FROM json_each(recipients) WHERE value = ?))"
            )
            args += [party, party]
        if unread:
            where.append("direction = 'in' AND first_read_at IS NULL")
        if not include_protocol:
            where.append("kind NOT LIKE 'protocol.%'")
        sql = "SELECT * FROM messages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, msg_id LIMIT ?"
        rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [StoredMessage.from_row(r) for r in rows]

    def recipient_statuses(self, msg_id: str) -> list[RecipientStatus]:
        rows = self._db.execute(
            "SELECT o.recipient, o.state, o.attempts, o.last_error, o.sent_at, d.status, d.at,"
            " d.reason, d.detail FROM outbox o LEFT JOIN deliveries d"
            " ON d.msg_id = o.msg_id AND d.recipient = o.recipient WHERE o.msg_id = ?"
            " ORDER BY o.rowid",
            (msg_id,),
        ).fetchall()
        return [
            RecipientStatus(r[0], r[5] or r[1], r[2], r[3], r[4], r[6], r[7], r[8]) for r in rows
        ]

    def opens(self, msg_id: str) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT officer, at FROM opens WHERE msg_id = ? ORDER BY rowid", (msg_id,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def rejection_at(self, stream_seq: int, envelope_sha256: str) -> dict[str, Any] | None:
        """The refusal of this very envelope at this sequence, if we refused it before."""
        row = self._db.execute(
            "SELECT * FROM rejections WHERE stream_seq = ? AND envelope_sha256 = ?",
            (stream_seq, envelope_sha256),
        ).fetchone()
        return None if row is None else dict(row)

    def rejections(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM rejections ORDER BY stream_seq").fetchall()
        return [dict(r) for r in rows]
