"""The node's side of the audit: signed events queued for the audit service (``audit_outbox``,
written in the transaction of the fact each records) and the last checkpoint it witnessed."""

from __future__ import annotations

import time
from collections.abc import Sequence

from services.node.store.db import Repository
from services.node.store.records import Event


class AuditOutbox(Repository):
    def queue(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO audit_outbox (event_id, payload, state, next_attempt_at)"
                " VALUES (?, ?, 'pending', ?)",
                [(event_id, payload, time.time()) for event_id, payload in events],
            )

    def due(self, now: float, limit: int) -> list[tuple[str, bytes, int]]:
        """(event id, payload, attempts) of the events due for publishing."""
        rows = self._db.execute(
            "SELECT event_id, payload, attempts FROM audit_outbox WHERE state = 'pending'"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [(str(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def next_due_at(self) -> float | None:
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM audit_outbox WHERE state = 'pending'"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_sent(self, event_ids: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE audit_outbox SET state = 'sent' WHERE event_id = ?",
                [(e,) for e in event_ids],
            )

    def mark_retry(self, retries: Sequence[tuple[str, float]]) -> None:
        """(event_id, next attempt) of events a round could not publish, in one commit."""
        with self._tx() as db:
            db.executemany(
                "UPDATE audit_outbox SET attempts = attempts + 1, next_attempt_at = ?"
                " WHERE event_id = ?",
                [(at, event_id) for event_id, at in retries],
            )

    def pending(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM audit_outbox WHERE state = 'pending'"
        ).fetchone()
        return int(row[0])


class Witnessed(Repository):
    def get(self) -> str | None:
        """The latest checkpoint note this node verified, if any."""
        row = self._db.execute("SELECT note FROM witnessed ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def set(self, size: int, note: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM witnessed")
            db.execute("INSERT INTO witnessed (size, note) VALUES (?, ?)", (size, note))
