"""What this node refused (``rejections``), the refused envelopes whose quarantine copy is still
to be filed (``quarantine_outbox``), and what an operator must look at (``alerts``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.node.store.db import Repository, iso


class Rejections(Repository):
    def record(
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
        answer_msg_id: str | None,
    ) -> bool:
        """Record the refusal of the envelope at ``stream_seq``, once: False when it was already
        recorded (a redelivery)."""
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
                    iso(now), answer_msg_id,
                ),
            )  # fmt: skip
            return True

    def mark_quarantined(self, refusals: Sequence[tuple[int, str]]) -> None:
        """(stream sequence, envelope hash) of refusals whose quarantine copy the hub stored."""
        with self._tx() as db:
            db.executemany(
                "UPDATE rejections SET quarantined = 1"
                " WHERE stream_seq = ? AND envelope_sha256 = ?",
                refusals,
            )

    def at(self, stream_seq: int, envelope_sha256: str) -> dict[str, Any] | None:
        """The refusal of this very envelope at this sequence, if we refused it before."""
        row = self._db.execute(
            "SELECT * FROM rejections WHERE stream_seq = ? AND envelope_sha256 = ?",
            (stream_seq, envelope_sha256),
        ).fetchone()
        return None if row is None else dict(row)

    def of_copy(self, envelope_sha256: str, publisher: str) -> dict[str, Any] | None:
        """The first refusal of this envelope published by ``publisher``, at any sequence: a
        copy sent again is not decided again (the first answer is the one that counts)."""
        row = self._db.execute(
            "SELECT * FROM rejections WHERE envelope_sha256 = ? AND publisher = ?"
            " ORDER BY rejected_at LIMIT 1",
            (envelope_sha256, publisher),
        ).fetchone()
        return None if row is None else dict(row)

    def all(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM rejections ORDER BY stream_seq").fetchall()
        return [dict(r) for r in rows]


@dataclass(frozen=True)
class QuarantineItem:
    """A refused envelope whose quarantine copy is still to be filed, with its refusal."""

    stream_seq: int
    envelope_sha256: str
    subject: str
    envelope: bytes
    attempts: int
    reason: str
    detail: str


class QuarantineOutbox(Repository):
    def hold(self, stream_seq: int, envelope_sha256: str, subject: str, envelope: bytes) -> None:
        """Keep a refused envelope until its copy is filed: once, and not after it was filed."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO quarantine_outbox (stream_seq, envelope_sha256, subject,"
                " envelope, held_at, next_attempt_at) SELECT ?, ?, ?, ?, ?, ? FROM rejections"
                " WHERE stream_seq = ? AND envelope_sha256 = ? AND quarantined = 0",
                # due at once, on the filer's own time (never a test's or a message's clock)
                (stream_seq, envelope_sha256, subject, envelope, now, now,
                 stream_seq, envelope_sha256),
            )  # fmt: skip

    def due(self, now: float, limit: int) -> list[QuarantineItem]:
        rows = self._db.execute(
            "SELECT q.stream_seq, q.envelope_sha256, q.subject, q.envelope, q.attempts,"
            " r.reason, r.detail FROM quarantine_outbox q JOIN rejections r"
            " USING (stream_seq, envelope_sha256) WHERE q.next_attempt_at <= ?"
            " ORDER BY q.next_attempt_at, q.stream_seq LIMIT ?",
            (now, limit),
        ).fetchall()
        return [QuarantineItem(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def next_due_at(self) -> float | None:
        row = self._db.execute("SELECT MIN(next_attempt_at) FROM quarantine_outbox").fetchone()
        return None if row[0] is None else float(row[0])

    def pending(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM quarantine_outbox").fetchone()[0])

    def oldest_held_at(self) -> float | None:
        """Since when the oldest copy not yet filed waits (Unix seconds), if any does."""
        row = self._db.execute("SELECT MIN(held_at) FROM quarantine_outbox").fetchone()
        return None if row[0] is None else float(row[0])

    def unfiled_without_envelope(self) -> int:
        """Refusals whose copy was never filed and whose envelope is not held: left by a node of
        schema 13 or older whose copy failed on a last attempt; `cifta node recover` files them
        (the inbox stream still holds the envelope for its retention)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM rejections r WHERE r.quarantined = 0 AND NOT EXISTS"
            " (SELECT 1 FROM quarantine_outbox q WHERE q.stream_seq = r.stream_seq"
            " AND q.envelope_sha256 = r.envelope_sha256)"
        ).fetchone()
        return int(row[0])

    def filed(self, refusals: Sequence[tuple[int, str]]) -> None:
        with self._tx() as db:
            db.executemany(
                "DELETE FROM quarantine_outbox WHERE stream_seq = ? AND envelope_sha256 = ?",
                refusals,
            )

    def retry(self, retries: Sequence[tuple[int, str, str, float]]) -> None:
        """(stream sequence, envelope hash, error, next attempt) of copies not filed this round."""
        with self._tx() as db:
            db.executemany(
                "UPDATE quarantine_outbox SET attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = ? WHERE stream_seq = ? AND envelope_sha256 = ?",
                [(error[:500], at, seq, sha) for seq, sha, error, at in retries],
            )


class Alerts(Repository):
    def record(self, source: str, detail: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO alerts (at, source, detail) VALUES (?, ?, ?)",
                (iso(now), source, detail),
            )

    def all(self) -> list[tuple[str, str, str]]:
        rows = self._db.execute("SELECT at, source, detail FROM alerts ORDER BY rowid").fetchall()
        return [(r[0], r[1], r[2]) for r in rows]
