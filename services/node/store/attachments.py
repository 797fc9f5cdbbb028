"""Attachments of received messages waiting to be fetched (``attachment_fetches``), and what
became of them: fetched (the receipt was queued) or refused (with its reason code)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.node.store.db import Repository, iso


@dataclass(frozen=True)
class AttachmentFetch:
    """A message whose attachments are to be fetched, and how often that was tried."""

    msg_id: str
    sender: str
    attempts: int


class AttachmentFetches(Repository):
    def add(self, msg_id: str, sender: str, *, now: datetime) -> None:
        """Queue the attachments of ``msg_id`` for fetching (once)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO attachment_fetches (msg_id, sender, state, next_attempt_at,"
                " at) VALUES (?, ?, 'pending', ?, ?)",
                (msg_id, sender, now.timestamp(), iso(now)),
            )

    def due(self, now: float, limit: int) -> list[AttachmentFetch]:
        rows = self._db.execute(
            "SELECT msg_id, sender, attempts FROM attachment_fetches WHERE state = 'pending' "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [AttachmentFetch(r[0], r[1], r[2]) for r in rows]

    def retry(self, msg_id: str, at: float, detail: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE attachment_fetches SET attempts = attempts + 1, next_attempt_at = ?, "
                "detail = ? WHERE msg_id = ?",
                (at, detail, msg_id),
            )

    def settle(
        self, msg_id: str, *, now: datetime, reason: str | None = None, detail: str | None = None
    ) -> None:
        """Fetched (no ``reason``) or refused with ``reason``."""
        state = "fetched" if reason is None else "refused"
        with self._tx() as db:
            db.execute(
                "UPDATE attachment_fetches SET state = ?, reason = ?, detail = ?, at = ? "
                "WHERE msg_id = ?",
                (state, reason, detail, iso(now), msg_id),
            )

    def status(self, msg_id: str) -> tuple[str, str | None, str | None] | None:
        """(state, reason, detail) of ``msg_id``'s attachments; None if it has none to fetch."""
        row = self._db.execute(
            "SELECT state, reason, detail FROM attachment_fetches WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])
