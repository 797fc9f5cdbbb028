"""Questions to the audit log, typed at the edge: every bad request answered with a reason code."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.audit import AuditEvent, EventType, QueryError
from services.audit.log import AuditLog
from services.audit.queries import AlarmLimits, Questions
from services.core.encoding import uuid7
from tests.builders import NOW, directory_of, party


def stored(i: int, sender: str = "MEX", recipient: str = "USA") -> AuditEvent:
    return AuditEvent(
        event_id=uuid7(), event=EventType.STORED, msg_id=uuid7(), kind="info.trafficking_routes",
        sender=sender, recipients=[recipient], actor=recipient, handling="H2", confidential=True,
        envelope_sha256=hashlib.sha256(i.to_bytes(4, "big")).hexdigest(),
        signature_sha256=hashlib.sha256(b"s").hexdigest(), occurred_at=NOW,
    )  # fmt: skip


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.sqlite")


@pytest.fixture
def questions(log: AuditLog) -> Questions:
    d = directory_of(party("MEX"), party("USA"))
    return Questions(log, lambda: d, lambda: None, AlarmLimits(per_minute=3, per_day=5),
                     clock=lambda: NOW)  # fmt: skip


def ask(q: Questions, asker: str, body: bytes | dict[str, Any]) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return dict(json.loads(q.reply(asker, raw)))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\xff\xfe not json", QueryError.NOT_JSON),
        (b"[1, 2]", QueryError.NOT_AN_OBJECT),
        (b'"records"', QueryError.NOT_AN_OBJECT),
        (b"null", QueryError.NOT_AN_OBJECT),
        (b'{"op": "delete_everything"}', QueryError.UNKNOWN_OP),
        (b"{}", QueryError.UNKNOWN_OP),
        (b'{"op": "records", "limit": "many"}', QueryError.INVALID_REQUEST),
        (b'{"op": "records", "limit": 100000}', QueryError.INVALID_REQUEST),
        (b'{"op": "trail", "msg_id": "../../etc"}', QueryError.INVALID_REQUEST),
        (b'{"op": "checkpoint", "extra": 1}', QueryError.INVALID_REQUEST),
        (b'{"op": "consistency", "old": 3, "new": 9}', QueryError.BAD_RANGE),
        (b'{"op": "cosign", "note": "no note"}', QueryError.NOT_A_CHECKPOINT),
    ],
)
def test_a_bad_request_gets_an_error_reply_with_its_reason_code(
    questions: Questions, body: bytes, code: QueryError
) -> None:
    answer = ask(questions, "MEX", body)
    assert answer["code"] == code.value and answer["error"]


def test_records_are_paged_in_order_and_only_the_askers_own(
    questions: Questions, log: AuditLog
) -> None:
    for i in range(5):
        log.append(stored(i))
    log.append(stored(99, sender="COL", recipient="USA"))  # not MEX's
    pages, after = [], -1
    while True:
        answer = ask(questions, "MEX", {"op": "records", "after": after, "limit": 2})
        pages.append([e["envelope_sha256"] for e in answer["events"]])
        if "next_after" not in answer:
            break
        after = answer["next_after"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [sha for page in pages for sha in page] == [
        hashlib.sha256(i.to_bytes(4, "big")).hexdigest() for i in range(5)
    ]
    assert len(ask(questions, "USA", {"op": "records"})["events"]) == 6
    assert ask(questions, "COL", {"op": "records", "after": 4})["events"] != []  # its own, idx 5
    assert ask(questions, "COL", {"op": "records", "after": 5}) == {"events": []}


def test_a_partys_alarms_are_limited_in_rate_and_size(questions: Questions, log: AuditLog) -> None:
    assert ask(questions, "MEX", {"op": "alarm", "detail": "x" * 501})["code"] == "invalid_request"
    for _ in range(3):
        assert ask(questions, "MEX", {"op": "alarm", "detail": "fork"}) == {"ok": True}
    assert ask(questions, "MEX", {"op": "alarm", "detail": "fork"})["code"] == "rate_limited"
    assert ask(questions, "USA", {"op": "alarm", "detail": "fork"}) == {"ok": True}  # its own
    assert len(log.alarms()) == 4
    # a minute later MEX may raise more, up to its daily limit
    questions.clock = lambda: NOW + timedelta(minutes=2)
    assert ask(questions, "MEX", {"op": "alarm"}) == {"ok": True}
    assert ask(questions, "MEX", {"op": "alarm"}) == {"ok": True}
    assert ask(questions, "MEX", {"op": "alarm"})["code"] == "rate_limited"  # five a day


def test_a_trail_of_someone_elses_message_is_refused_with_its_code(
    questions: Questions, log: AuditLog
) -> None:
    event = stored(1)
    log.append(event)
    answer = ask(questions, "COL", {"op": "trail", "msg_id": event.msg_id})
    assert answer["code"] == "not_yours"
    assert ask(questions, "MEX", {"op": "trail", "msg_id": uuid7()})["code"] == "no_such_message"
