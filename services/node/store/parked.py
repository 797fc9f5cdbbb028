"""The ``parked`` table: deliveries that cannot be decided yet, acknowledged at the hub and kept
here under their publisher's budget (the policy is ``services/node/parking.py``)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.node.store.db import Repository, iso, parse_iso


class _Budget(Protocol):
    @property
    def max_age_s(self) -> float: ...
    @property
    def max_attempts(self) -> int: ...


@dataclass(frozen=True)
class Parked:
    stream_seq: int
    envelope_sha256: str
    publisher: str
    subject: str
    data: bytes
    stored_at: datetime
    reason: str
    detail: str
    case_id: str | None
    attempts: int
    parked_at: float
    scheduled_at: float

    def scheduled(self, now: float) -> bool:
        """Whether a try now is one its schedule asked for (woken early, it does not count)."""
        return now >= self.scheduled_at

    def expired(self, budget: _Budget, now: float) -> bool:
        """Whether this is its last chance: refused if it cannot be decided now. Only the age and
        the scheduled tries count: wake-ups (a directory update, a message of its case) do not
        use up its attempts."""
        last_try = self.scheduled(now) and self.attempts + 1 >= budget.max_attempts
        return now - self.parked_at >= budget.max_age_s or last_try

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Parked:
        return cls(
            stream_seq=int(row["stream_seq"]),
            envelope_sha256=str(row["envelope_sha256"]),
            publisher=str(row["publisher"]),
            subject=str(row["subject"]),
            data=bytes(row["data"]),
            stored_at=parse_iso(row["stored_at"]),
            reason=str(row["reason"]),
            detail=str(row["detail"]),
            case_id=row["case_id"],
            attempts=int(row["attempts"]),
            parked_at=float(row["parked_at"]),
            scheduled_at=float(row["scheduled_at"]),
        )


class ParkedTable(Repository):
    def holds(self, envelope_sha256: str, publisher: str) -> bool:
        """Whether an envelope of these bytes published by ``publisher`` is parked, at its
        sequence (redelivered) or another (a copy sent again waits with it, not in a place of
        its own)."""
        row = self._db.execute(
            "SELECT 1 FROM parked WHERE envelope_sha256 = ? AND publisher = ? LIMIT 1",
            (envelope_sha256, publisher),
        ).fetchone()
        return row is not None

    def usage(self, publisher: str) -> tuple[int, int]:
        """(envelopes, bytes) ``publisher`` has parked here."""
        count, used = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM parked WHERE publisher = ?",
            (publisher,),
        ).fetchone()
        return int(count), int(used)

    def add(
        self,
        *,
        stream_seq: int,
        envelope_sha256: str,
        publisher: str,
        subject: str,
        data: bytes,
        stored_at: datetime,
        reason: str,
        detail: str,
        case_id: str | None,
        parked_at: float,
        next_attempt_at: float,
    ) -> None:
        """Park an envelope (its first attempt made); parking it again changes nothing."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO parked (stream_seq, envelope_sha256, publisher, subject,"
                " data, stored_at, reason, detail, case_id, attempts, parked_at, scheduled_at,"
                " next_attempt_at) VALUES (?,?,?,?,?,?,?,?,?,1,?,?,?)",
                (
                    stream_seq, envelope_sha256, publisher, subject, data, iso(stored_at),
                    reason, detail[:500], case_id, parked_at, next_attempt_at, next_attempt_at,
                ),
            )  # fmt: skip

    def due(self, now: float, limit: int) -> list[Parked]:
        rows = self._db.execute(
            "SELECT * FROM parked WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Parked.from_row(r) for r in rows]

    def next_due_at(self) -> float | None:
        row = self._db.execute("SELECT MIN(next_attempt_at) FROM parked").fetchone()
        return None if row[0] is None else float(row[0])

    def make_due(
        self,
        at: float,
        *,
        reason: str | None = None,
        case_id: str | None = None,
        as_scheduled: bool = False,
    ) -> int:
        """Set the next attempt of those waiting for ``reason``, or of ``case_id``, to ``at``
        (``as_scheduled``: as if their schedule had come due, so that the try counts)."""
        where, args = [], []
        if reason is not None:
            where.append("reason = ?")
            args.append(reason)
        if case_id is not None:
            where.append("case_id = ?")
            args.append(case_id)
        sql = "UPDATE parked SET next_attempt_at = ?, scheduled_at = "
        sql += "?" if as_scheduled else "scheduled_at"
        if where:
            sql += " WHERE " + " AND ".join(where)
        values = (at, at) if as_scheduled else (at,)
        with self._tx() as db:
            return int(db.execute(sql, (*values, *args)).rowcount)

    def reschedule(self, p: Parked, attempts: int, next_attempt_at: float, detail: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE parked SET attempts = ?, scheduled_at = ?, next_attempt_at = ?,"
                " detail = ? WHERE stream_seq = ? AND envelope_sha256 = ?",
                (attempts, next_attempt_at, next_attempt_at, detail[:500], p.stream_seq,
                 p.envelope_sha256),
            )  # fmt: skip

    def remove(self, p: Parked) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM parked WHERE stream_seq = ? AND envelope_sha256 = ?",
                (p.stream_seq, p.envelope_sha256),
            )

    def by_publisher(self) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT publisher, COUNT(*) FROM parked GROUP BY publisher ORDER BY publisher"
        ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def all(self) -> list[Parked]:
        rows = self._db.execute("SELECT * FROM parked ORDER BY stream_seq").fetchall()
        return [Parked.from_row(r) for r in rows]
