"""The ``messages`` table (envelopes sealed at rest), what recipients answered (``deliveries``)
and who opened what (``opens``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from services.core.envelope import ProtectedHeader
from services.node.store.db import Repository, iso
from services.node.store.records import Outcome, RecipientStatus, StoredMessage


class Messages(Repository):
    def insert(
        self,
        h: ProtectedHeader,
        *,
        direction: str,
        envelope: bytes,
        envelope_sha256: str,
        stored_at: datetime,
        local_copy: bytes | None = None,
        stream_seq: int | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO messages (msg_id, direction, kind, sender, recipients, handling,"
                " confidential, case_id, in_reply_to, created_at, stored_at, envelope,"
                " envelope_sha256, local_copy, stream_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    h.msg_id, direction, h.kind, h.sender, json.dumps(h.recipients),
                    h.handling.value, int(h.confidential), h.case_id, h.in_reply_to,
                    iso(h.created_at), iso(stored_at), envelope, envelope_sha256, local_copy,
                    stream_seq,
                ),
            )  # fmt: skip

    def record_outcome(self, o: Outcome) -> None:
        """A recipient's receipt or rejection of one of our messages (the first one counts)."""
        with self._tx() as db:
            sent = db.execute(
                "SELECT envelope_sha256 FROM messages WHERE msg_id = ? AND direction = 'out'",
                (o.msg_id,),
            ).fetchone()
            matches = sent is not None and sent[0] == o.envelope_sha256
            db.execute(
                "INSERT OR IGNORE INTO deliveries (msg_id, recipient, status, reason, detail, at,"
                " answer_msg_id, hash_matches) VALUES (?,?,?,?,?,?,?,?)",
                (o.msg_id, o.recipient, o.status, o.reason, o.detail, iso(o.at),
                 o.answer_msg_id, int(matches)),
            )  # fmt: skip
            # answered: nothing more is awaited, and a sending again that is queued and not yet
            # published stays unpublished (reception awareness, services/node/outbox.py)
            db.execute(
                "UPDATE outbox SET answer_due_at = NULL,"
                " resends = resends - (state = 'pending' AND resends > 0),"
                " state = CASE WHEN state = 'pending' AND resends > 0 THEN 'sent' ELSE state END"
                " WHERE msg_id = ? AND recipient = ?",
                (o.msg_id, o.recipient),
            )

    def first_answer(self, msg_id: str, recipient: str) -> str | None:
        """The msg_id of ``recipient``'s answer to our ``msg_id`` that counts (its first)."""
        row = self._db.execute(
            "SELECT answer_msg_id FROM deliveries WHERE msg_id = ? AND recipient = ?",
            (msg_id, recipient),
        ).fetchone()
        return None if row is None else row[0]

    def record_open(self, msg_id: str, officer: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO opens (msg_id, officer, at) VALUES (?, ?, ?)",
                (msg_id, officer, iso(now)),
            )
            db.execute(
                "UPDATE messages SET first_read_at = ? WHERE msg_id = ? AND first_read_at IS NULL",
                (iso(now), msg_id),
            )

    def opens(self, msg_id: str) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT officer, at FROM opens WHERE msg_id = ? ORDER BY rowid", (msg_id,)
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def get(self, msg_id: str) -> StoredMessage | None:
        row = self._db.execute("SELECT * FROM messages WHERE msg_id = ?", (msg_id,)).fetchone()
        return None if row is None else StoredMessage.from_row(row)

    def envelope_hash(self, msg_id: str) -> str | None:
        row = self._db.execute(
            "SELECT envelope_sha256 FROM messages WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def with_hash(self, envelope_sha256: str) -> tuple[str, str, int | None] | None:
        """(msg_id, kind, inbox stream sequence) of the stored message whose envelope has this
        hash, if any."""
        row = self._db.execute(
            "SELECT msg_id, kind, stream_seq FROM messages WHERE envelope_sha256 = ? LIMIT 1",
            (envelope_sha256,),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), row[2])

    def listing(
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

    def ids_matching(self, fragment: str, limit: int = 20) -> list[str]:
        """The msg_ids that begin or end with ``fragment`` (short ids, pasted prefixes)."""
        escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(
            "SELECT msg_id FROM messages WHERE msg_id LIKE ? ESCAPE '\\' OR msg_id LIKE ? "
            "ESCAPE '\\' ORDER BY created_at, msg_id LIMIT ?",
            (f"{escaped}%", f"%{escaped}", limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def ids_of_families(self, families: Sequence[str]) -> list[str]:
        """The msg_ids of every stored message of these families, in the order this node took
        them (sent or accepted): the order its procedures saw them in. Not by ``created_at``,
        which is each sender's own clock and may put an answer before its request."""
        where = " OR ".join("kind LIKE ?" for _ in families)
        rows = self._db.execute(
            f"SELECT msg_id FROM messages WHERE {where} ORDER BY rowid",  # noqa: S608
            [f"{f}.%" for f in families],
        ).fetchall()
        return [str(r[0]) for r in rows]

    def of_families(self, families: Sequence[str]) -> list[StoredMessage]:
        """Every stored message of these families, in the order of :meth:`ids_of_families`."""
        where = " OR ".join("kind LIKE ?" for _ in families)
        rows = self._db.execute(
            f"SELECT * FROM messages WHERE {where} ORDER BY rowid",  # noqa: S608
            [f"{f}.%" for f in families],
        ).fetchall()
        return [StoredMessage.from_row(r) for r in rows]

    def recipient_statuses(self, msg_id: str) -> list[RecipientStatus]:
        """Where one of our messages stands with each recipient: queued, sent, answered."""
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
