"""Statistics for the hemispheric study, from the audit log's metadata alone (never a body):
messages by family and month, and tracing requests (Art. XIII.3) per requested state with their
response times; exported as CSV.

A tracing request is counted where the audit log recorded it ``stored`` in the requested state's
inbox; it is answered when that state's node filed its ``replied`` event on it. Due dates travel
inside the encrypted body, so the secretariat cannot see them: a missed due date shows as the
``tracing.overdue`` notice the requesting node sends once it has passed (its kind is metadata).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import statistics
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from services.secretariat.audit_desk import open_read_only

# A leaf's kind is in its JSON; the column read as text (SQLite 3.45+ would take a BLOB as JSONB).
_KIND = "json_extract(CAST(leaf AS TEXT), '$.kind')"


class FamilyMonth(BaseModel):
    model_config = ConfigDict(frozen=True)

    month: str  # YYYY-MM
    family: str  # the kind's family: info, tracing, transfer, delivery, ...
    messages: int


class TracingStat(BaseModel):
    """Tracing requests one state received, and how it answered them."""

    model_config = ConfigDict(frozen=True)

    state: str
    requests: int
    answered: int
    unanswered: int
    overdue_notices: int  # the requesting states' notices that a due date passed
    median_hours: float | None
    mean_hours: float | None
    max_hours: float | None


class Statistics(BaseModel):
    model_config = ConfigDict(frozen=True)

    by_family_month: list[FamilyMonth]
    tracing: list[TracingStat]


def _hours(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


def _by_family_month(db: sqlite3.Connection) -> list[FamilyMonth]:
    rows = db.execute(
        f"SELECT substr(occurred_at, 1, 7) AS month, {_KIND} AS kind, COUNT(DISTINCT msg_id)"  # noqa: S608
        " FROM leaves WHERE event = 'stored' GROUP BY month, kind ORDER BY month, kind"
    ).fetchall()
    counts: dict[tuple[str, str], int] = {}
    for month, kind, n in rows:
        key = (str(month), str(kind).split(".", 1)[0])
        counts[key] = counts.get(key, 0) + int(n)
    return [FamilyMonth(month=m, family=f, messages=n) for (m, f), n in sorted(counts.items())]


def _tracing(db: sqlite3.Connection) -> list[TracingStat]:
    stored = db.execute(
        f"SELECT msg_id, actor, MIN(occurred_at) FROM leaves WHERE event = 'stored'"  # noqa: S608
        f" AND {_KIND} = 'tracing.request' GROUP BY msg_id, actor"
    ).fetchall()
    replied = {
        (str(m), str(a)): str(t)
        for m, a, t in db.execute(
            "SELECT msg_id, actor, MIN(occurred_at) FROM leaves WHERE event = 'replied'"
            " GROUP BY msg_id, actor"
        )
    }
    overdue: dict[str, int] = {}
    for actor, n in db.execute(
        f"SELECT actor, COUNT(DISTINCT msg_id) FROM leaves WHERE event = 'stored'"  # noqa: S608
        f" AND {_KIND} = 'tracing.overdue' GROUP BY actor"
    ):
        overdue[str(actor)] = int(n)
    per_state: dict[str, list[float | None]] = {}
    for msg_id, actor, at in stored:
        answer = replied.get((str(msg_id), str(actor)))
        hours = None if answer is None else max(0.0, _hours(str(at), answer))
        per_state.setdefault(str(actor), []).append(hours)
    out = []
    for state in sorted(set(per_state) | set(overdue)):
        times = [h for h in per_state.get(state, []) if h is not None]
        requests = len(per_state.get(state, []))
        out.append(
            TracingStat(
                state=state,
                requests=requests,
                answered=len(times),
                unanswered=requests - len(times),
                overdue_notices=overdue.get(state, 0),
                median_hours=round(statistics.median(times), 2) if times else None,
                mean_hours=round(statistics.fmean(times), 2) if times else None,
                max_hours=round(max(times), 2) if times else None,
            )
        )
    return out


def study_statistics(audit_log: Path) -> Statistics:
    """The study's aggregates from the audit log at ``audit_log`` (NO_AUDIT_LOG if absent)."""
    db = open_read_only(audit_log)
    try:
        return Statistics(by_family_month=_by_family_month(db), tracing=_tracing(db))
    finally:
        db.close()


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def messages_csv(stats: Statistics) -> str:
    """Messages by month and family, one row each (CSV, RFC 4180)."""
    return _csv(
        ["month", "family", "messages"],
        [[r.month, r.family, r.messages] for r in stats.by_family_month],
    )


def tracing_csv(stats: Statistics) -> str:
    """Tracing requests per requested state and their response times in hours (CSV)."""
    fields = list(TracingStat.model_fields)
    return _csv(fields, [[getattr(r, f) for f in fields] for r in stats.tracing])
