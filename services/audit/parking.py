"""Records the audit service cannot resolve yet, parked in its own SQLite, with a budget per party.

A record waiting for something (an event naming an envelope the log has not recorded, an envelope
or an event signed by a key the directory does not know yet) is acknowledged at the hub and kept
here, so that it never holds the consumer's in-flight window (design section 5: no state may
delay the audit log). Each party's parked records count against that party's budget alone
(count, bytes, age); what does not fit, or waits too long, is given up and recorded as what it is.

``party_alarms`` counts, per party and per minute, what the service refused or gave up on: one
row per (party, what, minute), so that a flood adds a counter, not a row per record.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS parked (
    id          INTEGER PRIMARY KEY,
    party       TEXT NOT NULL,           -- whose budget it counts against
    waits_for   TEXT NOT NULL,           -- 'envelope/<sha256>' or 'key/<party>/<kid>'
    what        TEXT NOT NULL,           -- what it is recorded as if given up
    subject     TEXT NOT NULL,
    data        BLOB NOT NULL,
    stored_at   TEXT NOT NULL,           -- the broker's storage time
    stream_seq  INTEGER NOT NULL UNIQUE, -- a redelivered record is parked once
    parked_at   REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_by_party ON parked (party);
CREATE INDEX IF NOT EXISTS parked_by_wait ON parked (waits_for);
CREATE INDEX IF NOT EXISTS parked_by_time ON parked (next_try);
CREATE TABLE IF NOT EXISTS party_alarms (
    party       TEXT NOT NULL,
    what        TEXT NOT NULL,
    minute      TEXT NOT NULL,           -- the UTC minute the row counts
    count       INTEGER NOT NULL,
    first_seq   INTEGER NOT NULL,        -- the AUDIT stream sequences it covers
    last_seq    INTEGER NOT NULL,
    PRIMARY KEY (party, what, minute)
) WITHOUT ROWID;
"""

_SELECT = (
    "SELECT id, party, waits_for, what, subject, data, stored_at, stream_seq, parked_at, attempts"
    " FROM parked WHERE "
)


@dataclass(frozen=True)
class Budget:
    """How much one party may have parked, and for how long."""

    max_parked: int = 256  # records per party
    max_bytes: int = 16 * 1024 * 1024  # their bytes, per party
    max_age_s: float = 600.0  # then given up
    first_retry_s: float = 1.0  # then doubling, on the schedule
    max_retry_s: float = 60.0
    #: unmatched leaves per party per minute; beyond it the party's alarm row counts them
    unmatched_per_minute: int = 60

    def retry_delay(self, attempts: int) -> float:
        return float(min(self.first_retry_s * 2 ** max(attempts - 1, 0), self.max_retry_s))


@dataclass(frozen=True)
class Parked:
    id: int
    party: str
    waits_for: str
    what: str
    subject: str
    data: bytes
    stored_at: datetime
    stream_seq: int
    parked_at: float
    attempts: int


@dataclass(frozen=True)
class PartyAlarm:
    party: str
    what: str
    minute: str
    count: int
    first_seq: int
    last_seq: int


def _parked(row: Any) -> Parked:
    i, party, waits, what, subject, data, stored_at, seq, parked_at, attempts = row
    return Parked(
        int(i), str(party), str(waits), str(what), str(subject), bytes(data),
        datetime.fromisoformat(str(stored_at)), int(seq), float(parked_at), int(attempts),
    )  # fmt: skip


class Parking:
    """The parked records and the party alarms, in the audit log's SQLite file (the caller's
    transaction: a record is parked, or released, together with what it led to)."""

    def __init__(self, db: sqlite3.Connection, budget: Budget) -> None:
        self.db = db
        self.budget = budget
        db.executescript(SCHEMA)

    def park(
        self, party: str, waits_for: str, what: str, subject: str, data: bytes,
        stored_at: datetime, stream_seq: int, now: float,
    ) -> tuple[bool, list[Parked]]:  # fmt: skip
        """Park one record within ``party``'s budget: (whether it is parked, the party's oldest
        records it displaced, for the caller to give up). The newest are kept: a legitimate
        record waits a moment for the envelope right behind it, a flood's records wait for
        nothing, so under a flood the oldest are the flood's."""
        if len(data) > self.budget.max_bytes:
            return False, []
        if self.db.execute("SELECT 1 FROM parked WHERE stream_seq = ?", (stream_seq,)).fetchone():
            return True, []  # delivered again: parked already
        count, size = self.usage(party)
        evicted: list[Parked] = []
        while count >= self.budget.max_parked or size + len(data) > self.budget.max_bytes:
            [oldest] = self._select("party = ? ORDER BY id LIMIT 1", (party,))
            self.release(oldest)
            evicted.append(oldest)
            count, size = count - 1, size - len(oldest.data)
        self.db.execute(
            "INSERT INTO parked (party, waits_for, what, subject, data, stored_at,"
            " stream_seq, parked_at, next_try) VALUES (?,?,?,?,?,?,?,?,?)",
            (party, waits_for, what, subject, data, stored_at.isoformat(), stream_seq, now,
             now + self.budget.retry_delay(1)),
        )  # fmt: skip
        return True, evicted

    def usage(self, party: str) -> tuple[int, int]:
        """(records, bytes) ``party`` has parked."""
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(data)), 0) FROM parked WHERE party = ?",
            (party,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM parked").fetchone()[0])

    def _select(self, where: str, params: tuple[object, ...]) -> list[Parked]:
        rows = self.db.execute(_SELECT + where, params).fetchall()  # constant text, bound values
        return [_parked(r) for r in rows]

    def waiting_for(self, key: str, limit: int = 1024) -> list[Parked]:
        return self._select("waits_for = ? ORDER BY id LIMIT ?", (key, limit))

    def waiting_for_keys(self, limit: int = 1024) -> list[Parked]:
        """Those waiting for a signing key (retried when the directory changes)."""
        return self._select("waits_for LIKE 'key/%' ORDER BY id LIMIT ?", (limit,))

    def due(self, now: float, limit: int) -> list[Parked]:
        return self._select("next_try <= ? ORDER BY next_try LIMIT ?", (now, limit))

    def expired(self, p: Parked, now: float) -> bool:
        return now >= p.parked_at + self.budget.max_age_s

    def postpone(self, p: Parked, now: float) -> None:
        """The next scheduled try, never later than the end of the record's age budget."""
        attempts = p.attempts + 1
        delay = self.budget.retry_delay(attempts + 1)  # parking waited the first delay
        next_try = min(now + delay, p.parked_at + self.budget.max_age_s)
        self.db.execute(
            "UPDATE parked SET attempts = ?, next_try = ? WHERE id = ?", (attempts, next_try, p.id)
        )

    def release(self, p: Parked) -> None:
        self.db.execute("DELETE FROM parked WHERE id = ?", (p.id,))

    # -- party alarms ------------------------------------------------------------------------

    def note_alarm(self, party: str, what: str, stream_seq: int, at: datetime) -> None:
        """Count one record ``party`` is answerable for under ``what``, in this minute's row."""
        minute = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
        self.db.execute(
            "INSERT INTO party_alarms (party, what, minute, count, first_seq, last_seq)"
            " VALUES (?,?,?,1,?,?) ON CONFLICT (party, what, minute) DO UPDATE SET"
            " count = count + 1, first_seq = MIN(first_seq, excluded.first_seq),"
            " last_seq = MAX(last_seq, excluded.last_seq)",
            (party, what, minute, stream_seq, stream_seq),
        )

    def party_alarms(self, party: str | None = None) -> list[PartyAlarm]:
        sql = "SELECT party, what, minute, count, first_seq, last_seq FROM party_alarms"
        rows = (
            self.db.execute(sql + " WHERE party = ? ORDER BY minute, what", (party,)).fetchall()
            if party
            else self.db.execute(sql + " ORDER BY minute, party, what").fetchall()
        )
        return [
            PartyAlarm(str(p), str(w), str(m), int(c), int(f), int(la))
            for p, w, m, c, f, la in rows
        ]
