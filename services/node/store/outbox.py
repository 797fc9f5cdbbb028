"""The ``outbox`` table: one row per (message, recipient) until the recipient's inbox stream
acknowledged it (transactional outbox: queued in the transaction that stores the message), then
until the recipient answered it (reception awareness, docs/envelope.md section 14: a message not
answered in time is queued again, the same bytes, up to a number of times)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from schemas.protocol import PROTOCOL_FAMILY, DeliveryReceipt, Rejection
from services.node.store.db import Repository, iso
from services.node.store.records import OutboxItem, Unanswered

#: The kinds no one answers (docs/envelope.md section 11): nothing is awaited for them.
_UNANSWERED_FAMILY = PROTOCOL_FAMILY + "%"
_ANSWERS = (DeliveryReceipt.KIND, Rejection.KIND)
#: How many times one answer is sent again at most, whatever its message's sender asks: more
#: than a sender sends again by default (5), and a bound on what a flood of copies costs.
MAX_ANSWERS_AGAIN = 8


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
            "SELECT o.msg_id, o.recipient, o.attempts, m.envelope, o.resends FROM outbox o"
            " JOIN messages m USING (msg_id)"
            " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
            " ORDER BY o.next_attempt_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [OutboxItem(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def next_due_at(self) -> float | None:
        """When the next publish falls due."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def next_answer_due_at(self) -> float | None:
        """When the next answer awaited falls due."""
        # Only sent rows await an answer (``send_again`` clears it): the partial index alone,
        # in its order, stops at the first row not answered meanwhile.
        row = self._db.execute(
            "SELECT o.answer_due_at FROM outbox o INDEXED BY outbox_answer_due"
            " WHERE o.answer_due_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.msg_id = o.msg_id AND d.recipient = o.recipient)"
            " ORDER BY o.answer_due_at LIMIT 1"
        ).fetchone()
        return None if row is None else float(row[0])

    def mark_sent(
        self,
        acks: Sequence[tuple[str, str, int]],
        now: datetime,
        answer_wait_s: float | None = None,
    ) -> None:
        """Mark (msg_id, recipient, stream sequence) sent on their PubAcks, in one transaction.

        With ``answer_wait_s``, the recipient's answer is awaited: if none is recorded within
        ``answer_wait_s`` times 2 to the power of the resends so far, the message is due to be
        sent again (``unanswered``). Nothing is awaited of a receipt or rejection (no one answers
        them) nor of a message answered already."""
        at = time.time()  # the publisher's own time, as for ``queue``
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox AS o SET state = 'sent', sent_at = ?, stream_seq = ?,"
                " attempts = attempts + 1, last_error = NULL, answer_due_at = CASE"
                "  WHEN ? IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.msg_id = o.msg_id"
                "   AND m.kind LIKE ?) OR EXISTS (SELECT 1 FROM deliveries d"
                "   WHERE d.msg_id = o.msg_id AND d.recipient = o.recipient) THEN NULL"
                "  ELSE ? + ? * (1 << o.resends) END"
                " WHERE msg_id = ? AND recipient = ?",
                [
                    (iso(now), seq, answer_wait_s, _UNANSWERED_FAMILY, at, answer_wait_s,
                     msg_id, recipient)
                    for msg_id, recipient, seq in acks
                ],
            )  # fmt: skip

    def unanswered(self, now: float, limit: int) -> list[Unanswered]:
        """Sent rows whose answer was due by ``now`` and has not come, oldest due first."""
        rows = self._db.execute(
            "SELECT o.msg_id, o.recipient, o.resends, o.sent_at FROM outbox o"
            " INDEXED BY outbox_answer_due WHERE o.answer_due_at <= ? AND NOT EXISTS (SELECT 1"
            " FROM deliveries d WHERE d.msg_id = o.msg_id AND d.recipient = o.recipient)"
            " ORDER BY o.answer_due_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Unanswered(r[0], r[1], r[2], r[3]) for r in rows]

    def send_again(self, rows: Sequence[tuple[str, str]], now: float) -> None:
        """Queue (msg_id, recipient) rows sent before to be published again at once, each as one
        more resend (a ``Nats-Msg-Id`` of its own, so that no stream takes it for the first)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, attempts = 0,"
                " resends = resends + 1, answer_due_at = NULL, last_error = NULL"
                " WHERE msg_id = ? AND recipient = ? AND state = 'sent'",
                [(now, msg_id, recipient) for msg_id, recipient in rows],
            )

    def stop_awaiting(self, rows: Sequence[tuple[str, str]]) -> None:
        """Await no answer any longer for (msg_id, recipient) rows: the sender gave up."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET answer_due_at = NULL WHERE msg_id = ? AND recipient = ?",
                rows,
            )

    def answer_again(self, msg_id: str, publisher: str, now: float) -> str | None:
        """Queue this node's answer to ``publisher``'s message ``msg_id`` to be sent again, if
        it was sent (``publisher`` sent the message again: it may not have had the answer), and
        not already ``MAX_ANSWERS_AGAIN`` times: a publisher flooding copies of its message gets
        that many answers more, not one per copy. Returns the answer's msg_id, or None if there
        is none to send again."""
        row = self._db.execute(
            "SELECT m.msg_id FROM messages m JOIN outbox o ON o.msg_id = m.msg_id"
            " WHERE m.in_reply_to = ? AND m.direction = 'out' AND m.kind IN (?, ?)"
            " AND o.recipient = ? AND o.state = 'sent' AND o.resends < ?"
            " ORDER BY m.rowid LIMIT 1",
            (msg_id, *_ANSWERS, publisher, MAX_ANSWERS_AGAIN),
        ).fetchone()
        if row is None:
            return None
        self.send_again([(row[0], publisher)], now)
        return str(row[0])

    def mark_retry(self, retries: Sequence[tuple[str, str, str, float]]) -> None:
        """(msg_id, recipient, error, next attempt) of publishes a round could not make, in one
        commit (while the hub is down, a round fails whole)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE msg_id = ? AND recipient = ? AND state = 'pending'",
                [(e[:500], at, msg_id, recipient) for msg_id, recipient, e, at in retries],
            )
