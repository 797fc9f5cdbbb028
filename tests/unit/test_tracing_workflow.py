"""The tracing workflow's state machine: addressing, every transition, every deadline, stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.registry import example_body
from schemas.tracing import Outcome, Priority, TracingRequest
from services.node.workflows.tracing import (
    Acknowledged,
    Answered,
    IllegalTransition,
    SendOverdue,
    SendReminder,
    Status,
    Tick,
    TracingPolicy,
    apply,
    file,
    requested_states,
    stats,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REQUEST = example_body("tracing.request")
assert isinstance(REQUEST, TracingRequest)


def urgent() -> TracingRequest:
    return REQUEST.model_copy(
        update={"priority": Priority.URGENT, "urgency_justification": "armed group still active"}
    )


def test_without_a_named_state_it_goes_to_the_makers_and_the_last_importers_country() -> None:
    assert requested_states(REQUEST, [], "MEX") == ["AUT", "USA"]
    assert requested_states(REQUEST, ["COL"], "MEX") == ["COL"]
    assert requested_states(REQUEST, [], "USA") == ["AUT"]  # not to itself
    with pytest.raises(IllegalTransition, match="no state to ask"):
        requested_states(REQUEST, ["MEX"], "MEX")


def test_the_due_date_follows_the_priority() -> None:
    assert file("m1", REQUEST, "MEX", "USA", T0).due_at == T0 + timedelta(days=7)
    assert file("m1", urgent(), "MEX", "USA", T0).due_at == T0 + timedelta(hours=24)
    custom = TracingPolicy(urgent=timedelta(hours=12))
    assert file("m1", urgent(), "MEX", "USA", T0, custom).due_at == T0 + timedelta(hours=12)


def test_acknowledged_then_answered() -> None:
    t = file("m1", REQUEST, "MEX", "USA", T0)
    t, fx = apply(t, Acknowledged("USA", T0 + timedelta(hours=2)))
    assert (t.status, fx) == (Status.ACKNOWLEDGED, [])
    t, fx = apply(t, Answered("USA", Outcome.FOUND, T0 + timedelta(days=3)))
    assert t.status is Status.ANSWERED and t.outcome is Outcome.FOUND and t.answered_on_time


def test_an_answer_without_acknowledgement_acknowledges_too() -> None:
    t, _ = apply(file("m1", REQUEST, "MEX", "USA", T0), Answered("USA", Outcome.PARTIAL, T0))
    assert t.acknowledged_at == T0 and t.status is Status.ANSWERED


def test_an_acknowledgement_overtaken_by_the_answer_is_absorbed() -> None:
    t = file("m1", REQUEST, "MEX", "USA", T0)
    t, _ = apply(t, Answered("USA", Outcome.FOUND, T0 + timedelta(hours=2)))
    t, _ = apply(t, Acknowledged("USA", T0 + timedelta(hours=1)))  # sent first, arrived second
    assert t.status is Status.ANSWERED and t.acknowledged_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ([Acknowledged("COL", T0)], "COL was not asked"),
        ([Answered("AUT", Outcome.FOUND, T0)], "AUT was not asked"),
        ([Acknowledged("USA", T0), Acknowledged("USA", T0)], "already acknowledged"),
        (
            [Answered("USA", Outcome.FOUND, T0), Acknowledged("USA", T0 + timedelta(hours=1))],
            "already answered",
        ),
        ([Answered("USA", Outcome.FOUND, T0), Answered("USA", Outcome.FOUND, T0)], "already"),
    ],
)
def test_illegal_transitions_are_refused(events: list, error: str) -> None:  # type: ignore[type-arg]
    t = file("m1", REQUEST, "MEX", "USA", T0)
    with pytest.raises(IllegalTransition, match=error):
        for e in events:
            t, _ = apply(t, e)


def test_reminders_before_the_due_date_and_one_overdue_notice_after_it() -> None:
    t = file("m1", REQUEST, "MEX", "USA", T0)  # due T0 + 7 days
    t, fx = apply(t, Tick(T0 + timedelta(days=3)))
    assert fx == []
    t, fx = apply(t, Tick(T0 + timedelta(days=3, hours=12)))  # half way
    assert fx == [SendReminder("USA", "m1", t.due_at, 1)]
    t, fx = apply(t, Tick(T0 + timedelta(days=4)))
    assert fx == []  # each reminder once
    t, fx = apply(t, Tick(T0 + timedelta(days=6)))  # 85 %
    assert fx == [SendReminder("USA", "m1", t.due_at, 2)]
    t, fx = apply(t, Tick(T0 + timedelta(days=7)))
    assert fx == [SendOverdue("USA", "m1", t.due_at)] and t.overdue(T0 + timedelta(days=7))
    t, fx = apply(t, Tick(T0 + timedelta(days=9)))
    assert fx == []  # one overdue notice
    t, fx = apply(t, Answered("USA", Outcome.NOT_FOUND, T0 + timedelta(days=9)))
    assert not t.answered_on_time


def test_deadlines_that_fell_due_while_the_node_was_down_fire_once_at_the_next_tick() -> None:
    t = file("m1", urgent(), "MEX", "USA", T0)
    t, fx = apply(t, Tick(T0 + timedelta(hours=23)))  # both reminders missed: one goes
    assert fx == [SendReminder("USA", "m1", t.due_at, 2)]
    t, fx = apply(t, Tick(T0 + timedelta(hours=30)))
    assert fx == [SendOverdue("USA", "m1", t.due_at)]


def test_an_answered_trace_sends_nothing_more() -> None:
    t, _ = apply(file("m1", REQUEST, "MEX", "USA", T0), Answered("USA", Outcome.FOUND, T0))
    assert apply(t, Tick(T0 + timedelta(days=30)))[1] == []


def test_statistics_per_state() -> None:
    now = T0 + timedelta(days=20)
    traces = []
    for i, days in enumerate([1, 2, 3, 4, 10]):  # USA answers five, the last one late
        t = file(f"u{i}", REQUEST, "MEX", "USA", T0)
        t, _ = apply(t, Answered("USA", Outcome.FOUND, T0 + timedelta(days=days)))
        traces.append(t)
    traces.append(file("c1", REQUEST, "MEX", "COL", T0))  # COL: overdue, unanswered
    traces.append(file("a1", REQUEST, "MEX", "AUT", now - timedelta(days=1)))  # AUT: not yet due
    col, aut, usa = (
        sorted(stats(traces, now), key=lambda s: s.state != "COL")[0],
        *sorted([s for s in stats(traces, now) if s.state != "COL"], key=lambda s: s.state),
    )
    assert (usa.received, usa.answered) == (5, 5)
    assert usa.median_response == timedelta(days=3)
    assert usa.p90_response == timedelta(days=10)
    assert usa.on_time_share == pytest.approx(0.8)
    assert usa.outcomes == {"found": 5}
    assert (col.received, col.answered, col.on_time_share) == (1, 0, 0.0)
    assert aut.on_time_share is None  # nothing to judge yet
