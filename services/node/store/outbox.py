"""The ``outbox`` table: one row per (message, recipient) until the recipient's inbox stream
acknowledged it (transactional outbox: queued in the transaction that stores the message)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from services.node.store.db import Repository, iso
from services.node.store.records import OutboxItem


class Outbox(Repository):
    def queue(self, msg_id: str, recipients: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO outbox (msg_id, recipient, state, next_attempt_at)"
                " VALUES (?, ?, 'pending', ?)",
                # due at once, on the publisher's own time (never a test's or a message's clock)
                [(msg_id, r, time.time()) for r in recipients],
            )

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

    def mark_sent(self, acks: Sequence[tuple[str, str, int]], now: datetime) -> None:
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
