"""Tracing (Art. XIII.3) message by message, through the pure decide functions: who files, who
answers, who reminds, to whom, and the deadlines, without a store, a broker or a clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest

from schemas import HandlingCode
from schemas.tracing import TracingOverdue, TracingReminder
from services.node.workflows.errors import IllegalTransition, NotYet
from services.node.workflows.steps import Step
from services.node.workflows.tracing import (
    DEFAULT_POLICY,
    Status,
    Trace,
    decide,
    keys,
    tick,
    trace_key,
    watches,
)
from tests.unit.workflow_steps import NOW, body, step

REQUEST = body("tracing.request")


def take(traces: Mapping[str, Trace | None], s: Step) -> dict[str, Trace | None]:
    """What a node holds after ``s``: the traces it had, with those ``s`` moved saved."""
    decision = decide({k: traces.get(k) for k in keys(s)}, s)
    assert decision.effects.follow_ups == ()  # a message never makes a node send by itself
    return {**traces, **{save.key: save.state for save in decision.saves}}


def filed(party: str = "MEX", to: tuple[str, ...] = ("USA", "AUT")) -> tuple[str, dict]:  # type: ignore[type-arg]
    s = step("MEX", to, REQUEST, party=party, case_id="MEX-FGR-2026-1187")
    return s.msg_id, take({}, s)


def test_the_requester_keeps_one_trace_per_state_asked_with_the_stated_due_date() -> None:
    s = step("MEX", ["USA", "AUT"], REQUEST, party="MEX", case_id="MEX-FGR-2026-1187")
    decision = decide({}, s)
    assert [save.key for save in decision.saves] == [
        trace_key(s.msg_id, "USA"),
        trace_key(s.msg_id, "AUT"),
    ]
    for save, state in zip(decision.saves, ("USA", "AUT"), strict=True):
        assert save.open and save.case_id == "MEX-FGR-2026-1187"
        assert save.state.requester == "MEX" and save.state.requested == state
        assert save.state.due_at == REQUEST.due_at and save.state.status is Status.FILED  # type: ignore[attr-defined]


def test_a_requested_state_keeps_only_its_own_trace() -> None:
    rid, traces = filed(party="USA")
    assert list(traces) == [trace_key(rid, "USA")]


def test_a_request_due_before_it_was_filed_is_refused() -> None:
    late = step("MEX", ["USA"], REQUEST, party="MEX", after=timedelta(days=8))
    with pytest.raises(IllegalTransition, match="due before it was filed"):
        decide({}, late)


def test_a_request_filed_twice_is_refused() -> None:
    rid, traces = filed()
    again = step("MEX", ["USA"], REQUEST, party="MEX", msg_id=rid)
    with pytest.raises(IllegalTransition, match="already filed"):
        decide(traces, again)


def test_the_requested_state_acknowledges_then_answers_and_the_trace_closes() -> None:
    rid, traces = filed()
    ack = step("USA", ["MEX"], body("tracing.acknowledgement", request_msg_id=rid), party="MEX",
               after=timedelta(hours=1))  # fmt: skip
    traces = take(traces, ack)
    assert traces[trace_key(rid, "USA")].status is Status.ACKNOWLEDGED  # type: ignore[union-attr]
    answer = step("USA", ["MEX"], body("tracing.response", request_msg_id=rid), party="MEX",
                  after=timedelta(days=2))  # fmt: skip
    decision = decide({k: traces.get(k) for k in keys(answer)}, answer)
    [save] = decision.saves
    assert save.state.status is Status.ANSWERED and not save.open
    assert save.state.answered_at == NOW + timedelta(days=2)  # the step's time, not a clock's


def test_an_answer_from_a_state_not_asked_is_refused() -> None:
    rid, traces = filed()
    answer = step("COL", ["MEX"], body("tracing.response", request_msg_id=rid), party="MEX")
    with pytest.raises(IllegalTransition, match=f"no tracing request {rid} to COL"):
        decide({k: traces.get(k) for k in keys(answer)}, answer)


def test_an_answer_goes_to_the_requester_and_no_one_else() -> None:
    rid, traces = filed(party="USA")
    answer = step("USA", ["MEX", "COL"], body("tracing.response", request_msg_id=rid),
                  party="USA")  # fmt: skip
    with pytest.raises(IllegalTransition, match="goes to MEX, not COL, MEX"):
        decide({k: traces.get(k) for k in keys(answer)}, answer)


def test_a_reminder_that_overtook_its_request_waits_and_an_officers_own_is_refused() -> None:
    reminder = body("tracing.reminder", request_msg_id="019ab5c2-7d10-7a3e-8f21-000000000abc")
    received = step("MEX", ["USA"], reminder, party="USA")
    with pytest.raises(NotYet):
        decide({}, received)
    own = step("MEX", ["USA"], reminder, party="MEX")
    with pytest.raises(IllegalTransition, match="no tracing request") as refused:
        decide({}, own)
    assert not isinstance(refused.value, NotYet)


def test_only_the_requester_reminds_and_only_the_state_asked() -> None:
    rid, traces = filed(party="USA")
    by_col = step("COL", ["USA"], body("tracing.reminder", request_msg_id=rid), party="USA")
    with pytest.raises(IllegalTransition, match=r"only the requesting state \(MEX\)"):
        decide({k: traces.get(k) for k in keys(by_col)}, by_col)
    rid, traces = filed(party="MEX")
    to_col = step("MEX", ["COL"], body("tracing.reminder", request_msg_id=rid), party="MEX")
    with pytest.raises(IllegalTransition, match="no tracing request"):
        decide({k: traces.get(k) for k in keys(to_col)}, to_col)


def test_no_reminder_after_the_answer_and_no_overdue_notice_before_the_due_date() -> None:
    rid, traces = filed()
    answer = step("USA", ["MEX"], body("tracing.response", request_msg_id=rid), party="MEX")
    answered = take(traces, answer)
    reminder = step("MEX", ["USA"], body("tracing.reminder", request_msg_id=rid), party="MEX")
    with pytest.raises(IllegalTransition, match="already answered"):
        decide(answered, reminder)
    early = step("MEX", ["USA"], body("tracing.overdue", request_msg_id=rid), party="MEX",
                 after=timedelta(days=6))  # fmt: skip
    with pytest.raises(IllegalTransition, match="not due until"):
        decide(traces, early)
    late = step("MEX", ["USA"], body("tracing.overdue", request_msg_id=rid), party="MEX",
                after=timedelta(days=7))  # fmt: skip
    [save] = decide(traces, late).saves
    assert save.state.overdue_sent


def test_the_deadlines_ask_the_requester_to_remind_then_to_notify_the_overdue() -> None:
    rid, traces = filed()
    key = trace_key(rid, "USA")
    trace = traces[key]
    assert trace is not None and watches(trace, "MEX") and not watches(trace, "USA")
    half = tick(key, trace, "MEX-FGR-2026-1187", NOW + timedelta(days=4), DEFAULT_POLICY)
    [reminder] = half.effects.follow_ups
    assert isinstance(reminder.body, TracingReminder) and reminder.body.sequence == 1
    assert reminder.to == ("USA",) and reminder.in_reply_to == rid
    assert reminder.handling is HandlingCode.H1 and reminder.case_id == "MEX-FGR-2026-1187"
    [save] = half.saves
    again = tick(key, save.state, None, NOW + timedelta(days=4, hours=1), DEFAULT_POLICY)
    assert again.effects.follow_ups == ()  # each deadline acts once
    due = tick(key, save.state, "MEX-FGR-2026-1187", NOW + timedelta(days=30), DEFAULT_POLICY)
    [overdue] = due.effects.follow_ups
    assert isinstance(overdue.body, TracingOverdue) and overdue.body.case_id == "MEX-FGR-2026-1187"
    assert due.saves[0].state.overdue_sent and due.saves[0].open
