"""The records register of blind lookup (docs/lookup.md, section 3), and its counters.

One SQLite file beside the node's store (``lookup.sqlite``, mode 0600, WAL): the state's own
records it is willing to flag, each sealed at rest (AES-256-GCM under the register key of the
node's key file, the record id as associated data), so neither this file nor its backups hold a
serial number in the clear; an HMAC fingerprint under the same key refuses duplicates. Beside
them, counts only: who asked this node to evaluate and when (never what), and how many lookups
this node made and how many states answered with a hit.
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from hashlib import sha256
from pathlib import Path

from services.core.encoding import uuid7
from services.core.normalise import Firearm
from services.core.oprf import LookupKeys

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE records (
    record_id    TEXT PRIMARY KEY,
    category     TEXT NOT NULL,
    fingerprint  TEXT NOT NULL UNIQUE,  -- HMAC-SHA256(register key, lookup input)
    sealed       BLOB NOT NULL,         -- the marks, AES-256-GCM under the register key
    added_at     TEXT NOT NULL,
    added_by     TEXT NOT NULL
);
CREATE TABLE register_log (            -- who changed or read the register, and how much
    at           TEXT NOT NULL,
    officer      TEXT NOT NULL,
    action       TEXT NOT NULL,
    count        INTEGER NOT NULL
);
CREATE TABLE evaluations (             -- answering side: who asked, when, what became of it
    at           REAL NOT NULL,
    asker        TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('evaluated', 'refused')),
    count        INTEGER NOT NULL DEFAULT 1  -- a flood's refusals, written in aggregate
);
CREATE INDEX evaluations_asker ON evaluations (asker, at);
CREATE TABLE lookups (                 -- asking side: counts only, never the firearm
    at           REAL NOT NULL,
    officer      TEXT NOT NULL,
    asked        INTEGER NOT NULL,
    hits         INTEGER NOT NULL
);
"""


class Category(StrEnum):
    """Why the state flags a record (the issue's four registers)."""

    SEIZED = "seized"
    LOST_STOLEN = "lost_stolen"
    TRACED = "traced"
    EXPORTED = "exported"  # exported under licence (Art. IX)


@dataclass(frozen=True)
class Record:
    record_id: str
    category: Category
    firearm: Firearm
    reference: str
    added_at: str
    added_by: str


@dataclass(frozen=True)
class Statistics:
    """Counts a console may show: no firearm, no query, only who and how many."""

    evaluated_by_asker: dict[str, int]
    refused_by_asker: dict[str, int]
    lookups_made: int
    lookups_with_hits: int
    records: int


REGISTER_FILE = "lookup.sqlite"


class NoLookupKey(Exception):
    """The node's key file holds no lookup key: it can neither keep records nor answer."""


class DuplicateRecord(ValueError):
    """The register already holds a record with these marks."""


class Register:
    """One node's ``lookup.sqlite``."""

    def __init__(self, path: Path, keys: LookupKeys | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._keys = keys
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 10000")  # the CLI and the node share the file
        # as the node's store: a commit survives the process being killed, not a power cut
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._tx() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @property
    def keys(self) -> LookupKeys:
        if self._keys is None:
            raise NoLookupKey("this node's key file holds no lookup key")
        return self._keys

    def _fingerprint(self, firearm: Firearm) -> str:
        return hmac.new(self.keys.register_key, firearm.lookup_input(), sha256).hexdigest()

    # -- the register ---------------------------------------------------------------------------

    def add(
        self,
        entries: Sequence[tuple[Firearm, Category, str]],
        officer: str,
        now: datetime,
    ) -> list[str]:
        """Add records (firearm, category, the state's own reference) in one transaction: all or
        none. Raise :class:`DuplicateRecord` naming the first mark already held."""
        ids: list[str] = []
        with self._tx() as db:
            for firearm, category, reference in entries:
                record_id = uuid7(int(now.timestamp() * 1000))
                plain = json.dumps({**firearm.__dict__, "reference": reference}).encode()
                try:
                    db.execute(
                        "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                        (record_id, category.value, self._fingerprint(firearm),
                         self.keys.seal(plain, record_id.encode()), now.isoformat(), officer),
                    )  # fmt: skip
                except sqlite3.IntegrityError:
                    raise DuplicateRecord(f"{firearm.make} {firearm.serial}") from None
                ids.append(record_id)
            _log(db, officer, "add", len(ids), now)
        return ids

    def remove(self, record_ids: Sequence[str], officer: str, now: datetime) -> int:
        with self._tx() as db:
            removed = sum(
                db.execute("DELETE FROM records WHERE record_id = ?", (rid,)).rowcount
                for rid in record_ids
            )
            _log(db, officer, "remove", removed, now)
        return removed

    def records(self, officer: str, now: datetime) -> list[Record]:
        """Every record, opened; the reading is logged with the officer's name."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT record_id, category, sealed, added_at, added_by FROM records"
                " ORDER BY rowid"  # the order they were added in
            ).fetchall()
            _log(db, officer, "read", len(rows), now)
        return [self._open(*row) for row in rows]

    def _open(self, rid: str, category: str, sealed: bytes, at: str, by: str) -> Record:
        data = json.loads(self.keys.open(sealed, rid.encode()))
        reference = data.pop("reference")
        return Record(rid, Category(category), Firearm(**data), reference, at, by)

    def lookup_inputs(self) -> list[bytes]:
        """The OPRF input of every record (to build the filter), opened in memory only."""
        rows = self._db.execute("SELECT record_id, category, sealed, added_at, added_by"
                                " FROM records").fetchall()  # fmt: skip
        return [self._open(*row).firearm.lookup_input() for row in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    # -- counters ------------------------------------------------------------------------------

    def evaluation_times(self, asker: str, since: float) -> list[float]:
        """When ``asker``'s evaluations since ``since`` were made, oldest first."""
        rows = self._db.execute(
            "SELECT at FROM evaluations WHERE asker = ? AND at >= ? AND outcome = ? ORDER BY at",
            (asker, since, "evaluated"),
        )
        return [float(at) for (at,) in rows]

    def record_evaluation(self, asker: str, at: float, outcome: str, count: int = 1) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO evaluations VALUES (?, ?, ?, ?)", (at, asker, outcome, count))

    def record_lookup(self, officer: str, at: float, asked: int, hits: int) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO lookups VALUES (?, ?, ?, ?)", (at, officer, asked, hits))

    def statistics(self) -> Statistics:
        by: dict[str, dict[str, int]] = {"evaluated": {}, "refused": {}}
        for asker, outcome, n in self._db.execute(
            "SELECT asker, outcome, sum(count) FROM evaluations GROUP BY asker, outcome"
        ):
            by[outcome][asker] = n
        made, hits = self._db.execute(
            "SELECT count(*), coalesce(sum(hits > 0), 0) FROM lookups"
        ).fetchone()
        return Statistics(by["evaluated"], by["refused"], int(made), int(hits), self.count())


def _log(db: sqlite3.Connection, officer: str, action: str, count: int, now: datetime) -> None:
    db.execute(
        "INSERT INTO register_log VALUES (?, ?, ?, ?)",
        (now.astimezone(UTC).isoformat(), officer, action, count),
    )
