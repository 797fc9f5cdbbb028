"""The hemispheric study's aggregates, computed from audit metadata in a real SQLite audit log."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.audit import AuditEvent, EventType
from services.audit.log import AuditLog
from services.core.encoding import uuid7
from services.secretariat.errors import ErrorCode, SecretariatError
from services.secretariat.statistics import messages_csv, study_statistics, tracing_csv

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def event(
    kind: str, event: EventType, msg_id: str, sender: str, to: str, actor: str, at: datetime
) -> AuditEvent:
    """An audit event as the log records it: metadata and hashes, no body."""
    return AuditEvent(
        event_id=uuid7(), event=event, msg_id=msg_id, kind=kind, sender=sender,
        recipients=[to], actor=actor, handling="H0", confidential=False,
        envelope_sha256=uuid.uuid4().hex * 2, signature_sha256=uuid.uuid4().hex * 2,
        occurred_at=at,
    )  # fmt: skip


def message(log: AuditLog, kind: str, sender: str, to: str, at: datetime) -> str:
    """A message stored in ``to``'s inbox (and sent): its msg_id."""
    msg_id = uuid7()
    log.append(event(kind, EventType.SENT, msg_id, sender, to, sender, at))
    log.append(event(kind, EventType.STORED, msg_id, sender, to, to, at))
    return msg_id


def replied(log: AuditLog, msg_id: str, sender: str, by: str, at: datetime) -> None:
    log.append(event("tracing.request", EventType.REPLIED, msg_id, sender, by, by, at))


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.sqlite")


def test_messages_are_counted_once_per_message_by_family_and_month(log: AuditLog) -> None:
    message(log, "info.trafficking_routes", "MEX", "USA", T0)
    message(log, "info.concealment_methods", "USA", "MEX", T0 + timedelta(days=1))
    message(log, "tracing.request", "MEX", "USA", T0 + timedelta(days=30))
    stats = study_statistics(log_path(log))
    got = [(r.month, r.family, r.messages) for r in stats.by_family_month]
    assert got == [("2026-10", "info", 2), ("2026-11", "tracing", 1)]


def test_tracing_response_times_and_overdue_notices_are_per_requested_state(
    log: AuditLog,
) -> None:
    a = message(log, "tracing.request", "MEX", "USA", T0)
    b = message(log, "tracing.request", "MEX", "USA", T0)
    message(log, "tracing.request", "COL", "USA", T0)  # never answered
    c = message(log, "tracing.request", "USA", "COL", T0)
    replied(log, a, "MEX", "USA", T0 + timedelta(hours=10))
    replied(log, a, "MEX", "USA", T0 + timedelta(hours=50))  # a second answer: the first counts
    replied(log, b, "MEX", "USA", T0 + timedelta(hours=30))
    replied(log, c, "USA", "COL", T0 + timedelta(hours=4))
    message(log, "tracing.overdue", "COL", "USA", T0 + timedelta(days=8))
    by_state = {t.state: t for t in study_statistics(log_path(log)).tracing}
    usa = by_state["USA"]
    assert (usa.requests, usa.answered, usa.unanswered, usa.overdue_notices) == (3, 2, 1, 1)
    assert (usa.median_hours, usa.mean_hours, usa.max_hours) == (20.0, 20.0, 30.0)
    col = by_state["COL"]
    assert (col.requests, col.answered, col.median_hours, col.overdue_notices) == (1, 1, 4.0, 0)
    assert "MEX" not in by_state  # asked, never asked of


def test_statistics_export_as_csv_with_a_header_row(log: AuditLog) -> None:
    a = message(log, "tracing.request", "MEX", "USA", T0)
    replied(log, a, "MEX", "USA", T0 + timedelta(hours=6))
    stats = study_statistics(log_path(log))
    rows = list(csv.reader(io.StringIO(messages_csv(stats))))
    assert rows == [["month", "family", "messages"], ["2026-10", "tracing", "1"]]
    tracing = list(csv.DictReader(io.StringIO(tracing_csv(stats))))
    assert tracing == [
        {"state": "USA", "requests": "1", "answered": "1", "unanswered": "0",
         "overdue_notices": "0", "median_hours": "6.0", "mean_hours": "6.0", "max_hours": "6.0"}
    ]  # fmt: skip


def test_statistics_without_an_audit_log_are_refused_with_a_code(tmp_path: Path) -> None:
    with pytest.raises(SecretariatError) as refused:
        study_statistics(tmp_path / "none.sqlite")
    assert refused.value.code is ErrorCode.NO_AUDIT_LOG


def log_path(log: AuditLog) -> Path:
    return Path(log.db.execute("PRAGMA database_list").fetchone()[2])
