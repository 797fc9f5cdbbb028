"""The controlled-delivery workflow (Art. XVIII): consent case by case, custody, closure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter

from schemas.controlled_delivery import ClosureOutcome, InterceptionDecision
from services.node.workflows.controlled_delivery import (
    Closed,
    Consented,
    Declined,
    HandedOver,
    Intercepted,
    Operation,
    Phase,
    apply,
    proposed,
    timeline_lines,
)
from services.node.workflows.errors import IllegalTransition, NotYet

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
ROUTE = [("COL", "PAN"), ("PAN", "MEX")]


def op():  # type: ignore[no-untyped-def]
    return proposed("CD-2026-014", "COL", ["COL", "PAN", "MEX"], ROUTE, T0 - timedelta(hours=1))


def active():  # type: ignore[no-untyped-def]
    o = apply(op(), Consented("PAN", T0))
    return apply(o, Consented("MEX", T0 + timedelta(hours=1)))


def test_active_only_with_every_consent() -> None:
    o = apply(op(), Consented("PAN", T0))
    assert o.phase is Phase.PROPOSED and o.awaiting == ["MEX"]
    with pytest.raises(IllegalTransition, match="not active"):
        apply(o, HandedOver("COL", "PAN", T0, True))
    assert active().phase is Phase.ACTIVE


def test_one_decline_ends_it() -> None:
    o = apply(apply(op(), Consented("PAN", T0)), Declined("MEX", T0))
    assert o.phase is Phase.DECLINED and o.declined_by == "MEX"
    with pytest.raises(IllegalTransition, match="MEX has already answered"):
        apply(o, Consented("MEX", T0))
    with pytest.raises(IllegalTransition, match="PAN has already answered"):
        apply(o, Declined("PAN", T0))


def test_answers_crossing_a_decline_end_the_same_at_every_participant() -> None:
    declined_first = apply(
        apply(op(), Declined("MEX", T0 + timedelta(hours=1))), Consented("PAN", T0)
    )
    consented_first = apply(
        apply(op(), Consented("PAN", T0)), Declined("MEX", T0 + timedelta(hours=1))
    )
    assert declined_first == consented_first and declined_first.phase is Phase.DECLINED
    # two declines crossing: the earlier one is the decline, wherever it arrived first
    a = apply(apply(op(), Declined("MEX", T0 + timedelta(hours=2))), Declined("PAN", T0))
    b = apply(apply(op(), Declined("PAN", T0)), Declined("MEX", T0 + timedelta(hours=2)))
    assert a == b and a.declined_by == "PAN"


def test_a_proposal_is_withdrawn_by_aborting_it_and_nothing_else_closes_it_early() -> None:
    o = apply(op(), Closed("COL", ClosureOutcome.ABORTED, T0))
    assert o.phase is Phase.CLOSED and o.outcome is ClosureOutcome.ABORTED
    with pytest.raises(IllegalTransition, match="only an active operation is closed"):
        apply(op(), Closed("COL", ClosureOutcome.COMPLETED, T0))


def test_custody_follows_the_route_and_the_timeline_records_everything() -> None:
    o = apply(active(), HandedOver("COL", "PAN", T0 + timedelta(days=1), True))
    o = apply(o, Intercepted("PAN", InterceptionDecision.ITEMS_SUBSTITUTED, T0 + timedelta(days=1)))
    o = apply(o, HandedOver("PAN", "MEX", T0 + timedelta(days=2), False))
    o = apply(o, Closed("COL", ClosureOutcome.INTERDICTED, T0 + timedelta(days=3)))
    assert o.phase is Phase.CLOSED and o.custody == "MEX"
    assert [(what, dict(params)) for *_, what, params in o.timeline] == [
        ("proposed", {"party": "COL"}),
        ("consent", {"party": "PAN"}),
        ("consent", {"party": "MEX"}),
        ("active", {}),
        ("custody", {"src": "COL", "dst": "PAN"}),
        ("interception", {"party": "PAN", "decision": "items_substituted"}),
        ("custody_seals_broken", {"src": "PAN", "dst": "MEX"}),
        ("closed", {"outcome": "interdicted"}),
    ]
    assert [line.split(" ", 1)[1] for line in timeline_lines(o)][-2:] == [
        "custody PAN -> MEX, SEALS NOT INTACT",
        "closed: interdicted",
    ]


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (Consented("BRA", T0), "not a participant"),
        (Consented("COL", T0), "not a participant"),  # the proposer does not consent to itself
        (HandedOver("PAN", "MEX", T0, True), "does not hold"),
        (HandedOver("COL", "MEX", T0, True), "not a leg"),
        (Intercepted("MEX", InterceptionDecision.CONTINUE_INTACT, T0), "does not hold"),
        (Closed("PAN", ClosureOutcome.COMPLETED, T0), "proposing state"),
    ],
)
def test_illegal_transitions_are_refused(event: object, error: str) -> None:
    o = active() if not isinstance(event, Consented) else op()
    with pytest.raises(IllegalTransition, match=error):
        apply(o, event)  # type: ignore[arg-type]


def test_a_route_through_a_state_not_asked_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="not asked: PAN"):
        proposed("CD-1", "COL", ["COL", "MEX"], ROUTE)


def test_an_abort_crossing_the_last_consent_ends_the_same_at_every_participant() -> None:
    abort = Closed("COL", ClosureOutcome.ABORTED, T0 + timedelta(minutes=30))
    late_consent = Consented("MEX", T0 + timedelta(hours=1))  # sent before MEX heard of it
    # at MEX: its consent made the operation active, then the abort arrived
    at_mex = apply(apply(apply(op(), Consented("PAN", T0)), late_consent, crossing=False), abort)
    # at COL and PAN: the abort, then MEX's consent crossing it
    at_col = apply(apply(apply(op(), Consented("PAN", T0)), abort), late_consent)
    assert at_mex == at_col and at_col.phase is Phase.CLOSED
    assert "active" not in [what for _, _, what, _ in at_col.timeline]


def test_an_abort_crossing_a_decline_ends_the_same_at_every_participant() -> None:
    abort = Closed("COL", ClosureOutcome.ABORTED, T0 + timedelta(hours=1))
    decline = Declined("PAN", T0 + timedelta(hours=2))
    at_col = apply(apply(op(), abort), decline)  # the decline crossed the abort
    at_pan = apply(apply(op(), decline, crossing=False), abort)
    assert at_col == at_pan and at_col.phase is Phase.CLOSED and at_col.declined_by == "PAN"
    # but an operation that was never active is not closed as completed
    with pytest.raises(IllegalTransition, match="only an active operation is closed"):
        apply(apply(op(), decline), Closed("COL", ClosureOutcome.COMPLETED, T0))


def test_a_hand_over_crossing_an_abort_is_taken_at_every_participant_whatever_its_date() -> None:
    # MEX's consent (10:30) makes the operation active at MEX, which hands over at 12:00 before
    # COL's abort of 11:00 (sent before MEX's consent reached COL) arrives
    consent = Consented("MEX", T0 + timedelta(minutes=150))
    abort = Closed("COL", ClosureOutcome.ABORTED, T0 + timedelta(hours=3))
    handover = HandedOver("COL", "PAN", T0 + timedelta(hours=4), True)
    base = apply(op(), Consented("PAN", T0))
    at_mex = apply(apply(apply(base, consent, crossing=False), handover, crossing=False), abort)
    at_col = apply(apply(apply(base, abort), consent), handover, sender="PAN")
    assert at_mex == at_col and at_col.custody == "PAN"
    # but the proposer's own steps must be dated before its own closure
    with pytest.raises(IllegalTransition, match="not active"):
        apply(apply(apply(base, consent), abort), handover, sender="COL")


def test_a_step_reaching_a_closed_operation_before_the_last_consent_waits_for_it() -> None:
    abort = Closed("COL", ClosureOutcome.ABORTED, T0 + timedelta(hours=3))
    handover = HandedOver("COL", "PAN", T0 + timedelta(hours=2), True)
    closed = apply(apply(op(), Consented("PAN", T0)), abort)
    with pytest.raises(NotYet):  # MEX's consent, dated before the abort, may be on its way
        apply(closed, handover, sender="PAN")
    ran = apply(closed, Consented("MEX", T0 + timedelta(hours=1)))
    assert apply(ran, handover, sender="PAN").custody == "PAN"


def test_an_operation_stored_with_english_timeline_lines_reads_back_as_codes() -> None:
    # stores written before the entries were codes hold (when, rank, English line)
    o = apply(active(), HandedOver("COL", "PAN", T0 + timedelta(days=1), False))
    stored = json.loads(TypeAdapter(Operation).dump_json(o))
    stored["timeline"] = [[at, rank, line.split(" ", 1)[1]]
                          for (at, rank, *_), line in zip(stored["timeline"], timeline_lines(o),
                                                          strict=True)]  # fmt: skip
    assert TypeAdapter(Operation).validate_json(json.dumps(stored)) == o
