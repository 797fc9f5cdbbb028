"""The evaluation endpoint's decisions, without a broker: a fixed clock, a real register."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas import ReasonCode
from schemas.audit import AuditEvent, EventType
from schemas.lookup import REQUEST_FORMAT, EvaluationReply, EvaluationRequest
from services.core.encoding import b64u, unb64u, uuid7
from services.core.events import SignedEvent
from services.core.keys import NodeKeys
from services.core.oprf import blind, finalize
from services.node.lookup_service import Budget, LookupResponder
from services.node.records import REGISTER_FILE, Register

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def responder(
    tmp_path: Path, keys: NodeKeys, budget: Budget
) -> tuple[LookupResponder, list[AuditEvent], Clock]:
    filed: list[AuditEvent] = []

    def file_events(events: list[tuple[str, bytes]]) -> None:
        for _, data in events:
            filed.append(
                AuditEvent.model_validate_json(unb64u(SignedEvent.model_validate_json(data).event))
            )

    clock = Clock()
    register = Register(tmp_path / REGISTER_FILE, keys.lookup)
    return LookupResponder("USA", lambda: keys, register, file_events, clock, budget), filed, clock


def request(element: bytes) -> bytes:
    return (
        EvaluationRequest(format=REQUEST_FORMAT, request_id=uuid7(), blinded=b64u(element))
        .model_dump_json()
        .encode()
    )


def test_an_evaluation_verifies_and_is_filed_naming_the_asker_only(tmp_path: Path) -> None:
    keys = NodeKeys.generate("USA")
    r, filed, _ = responder(tmp_path, keys, Budget(10, 3600))
    b = blind(b"cifta-lookup-v1\x00GLOCK\x008XKM417")
    reply = EvaluationReply.model_validate_json(r.answer("MEX", request(b.element)))
    assert keys.lookup is not None and reply.oprf_kid == keys.lookup.public().kid
    out = finalize(
        b, unb64u(reply.evaluated or ""), unb64u(reply.proof or ""), keys.lookup.public()
    )
    assert out == keys.lookup.output(b"cifta-lookup-v1\x00GLOCK\x008XKM417")
    [event] = filed
    assert (event.event, event.sender, event.actor, event.kind) == (
        EventType.LOOKUP_EVALUATED,
        "MEX",
        "USA",
        "lookup.evaluation",
    )
    assert b"GLOCK" not in event.model_dump_json().encode()


def test_bad_requests_are_refused_with_their_reason(tmp_path: Path) -> None:
    keys = NodeKeys.generate("USA")
    r, filed, _ = responder(tmp_path, keys, Budget(10, 3600))
    cases = {
        b"not json": ReasonCode.LOOKUP_MALFORMED,
        b"x" * 600: ReasonCode.LOOKUP_MALFORMED,  # oversized: refused unread
        request(b"\xff" * 32): ReasonCode.LOOKUP_MALFORMED,  # not a group element
    }
    for payload, reason in cases.items():
        assert EvaluationReply.model_validate_json(r.answer("MEX", payload)).refused is reason
    assert [e.reason for e in filed] == list(cases.values())
    no_key, _, _ = responder(tmp_path / "nokey", replace(keys, lookup=None), Budget(10, 3600))
    got = EvaluationReply.model_validate_json(no_key.answer("MEX", request(blind(b"x").element)))
    assert got.refused is ReasonCode.LOOKUP_UNAVAILABLE


def test_the_budget_slides_and_says_when_to_ask_again(tmp_path: Path) -> None:
    keys = NodeKeys.generate("USA")
    r, _, clock = responder(tmp_path, keys, Budget(2, 3600))
    element = blind(b"x").element
    for minutes in (0, 10):
        clock.now = T0 + timedelta(minutes=minutes)
        assert (
            EvaluationReply.model_validate_json(r.answer("MEX", request(element))).refused is None
        )
    clock.now = T0 + timedelta(minutes=30)
    over = EvaluationReply.model_validate_json(r.answer("MEX", request(element)))
    assert over.refused is ReasonCode.LOOKUP_OVER_BUDGET
    assert over.retry_after_s == 30 * 60  # when the evaluation at minute 0 leaves the window
    # another asker has its own budget
    assert EvaluationReply.model_validate_json(r.answer("COL", request(element))).refused is None
    clock.now = T0 + timedelta(minutes=61)
    assert EvaluationReply.model_validate_json(r.answer("MEX", request(element))).refused is None
    # a node restarted reads the window back from its register
    again, _, clock2 = responder(tmp_path, keys, Budget(2, 3600))
    clock2.now = T0 + timedelta(minutes=62)
    refused = EvaluationReply.model_validate_json(again.answer("MEX", request(element)))
    assert refused.refused is ReasonCode.LOOKUP_OVER_BUDGET


def test_refusals_past_the_budget_are_counted_but_not_filed(tmp_path: Path) -> None:
    keys = NodeKeys.generate("USA")
    r, filed, _ = responder(tmp_path, keys, Budget(3, 3600))
    element = blind(b"x").element
    for _ in range(50):
        r.answer("MEX", request(element))
    r.refuse_busy("MEX")
    r.flush()
    stats = Register(tmp_path / REGISTER_FILE, keys.lookup).statistics()
    assert stats.evaluated_by_asker == {"MEX": 3} and stats.refused_by_asker == {"MEX": 48}
    refused = [e for e in filed if e.event is EventType.REJECTED]
    assert len(refused) == 3  # filed up to the budget's worth per window, the rest counted
