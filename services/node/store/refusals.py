"""What this node refused (``rejections``) and what an operator must look at (``alerts``)."""

from __future__ import annotations

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

    def mark_quarantined(self, stream_seq: int, envelope_sha256: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE rejections SET quarantined = 1"
                " WHERE stream_seq = ? AND envelope_sha256 = ?",
                (stream_seq, envelope_sha256),
            )

    def at(self, stream_seq: int, envelope_sha256: str) -> dict[str, Any] | None:
        """The refusal of this very envelope at this sequence, if we refused it before."""
        row = self._db.execute(
            "SELECT * FROM rejections WHERE stream_seq = ? AND envelope_sha256 = ?",
            (stream_seq, envelope_sha256),
        ).fetchone()
        return None if row is None else dict(row)

    def all(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM rejections ORDER BY stream_seq").fetchall()
        return [dict(r) for r in rows]


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
