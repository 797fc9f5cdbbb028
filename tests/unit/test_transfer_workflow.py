"""The licensed-transfer workflow (Art. IX): every transition, the illegal ones, the deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.registry import example_body
from schemas.transfers import Decision, TransferNotice
from services.node.workflows.tracing import IllegalTransition
from services.node.workflows.transfers import (
    AlertReceiptOverdue,
    Confirmed,
    Dispatched,
    Received,
    SendDiscrepancy,
    Stage,
    Tick,
    apply,
    notified,
)

NOTICE = example_body("transfer.notice")
assert isinstance(NOTICE, TransferNotice)


def start() -> tuple:  # type: ignore[type-arg]
    t = notified(NOTICE, exporter="USA")
    return t, t.importer, t.transit


def authorized():  # type: ignore[no-untyped-def]
    t, importer, transit = start()
    t, _ = apply(t, Confirmed(importer, Decision.AUTHORIZED))
    for state in transit:
        t, _ = apply(t, Confirmed(state, Decision.AUTHORIZED))
    return t


def test_authorized_for_dispatch_only_with_every_confirmation() -> None:
    t, importer, transit = start()
    assert t.stage is Stage.NOTIFIED and t.missing_confirmations == [importer, *transit]
    with pytest.raises(IllegalTransition, match="waiting for"):
        apply(t, Dispatched("USA", t.dispatched))
    t, _ = apply(t, Confirmed(importer, Decision.AUTHORIZED))
    for state in transit:
        assert t.stage is Stage.NOTIFIED
        with pytest.raises(IllegalTransition, match=state):
            apply(t, Dispatched("USA", t.dispatched))  # IX.3: the transit state first
        t, _ = apply(t, Confirmed(state, Decision.AUTHORIZED))
    assert t.stage is Stage.AUTHORIZED


def test_a_refusal_stops_the_transfer() -> None:
    t, importer, _ = start()
    t, _ = apply(t, Confirmed(importer, Decision.REFUSED))
    assert t.stage is Stage.REFUSED and t.refused_by == importer
    with pytest.raises(IllegalTransition):
        apply(t, Dispatched("USA", t.dispatched))
    with pytest.raises(IllegalTransition, match="already confirmed"):
        apply(t, Confirmed(importer, Decision.AUTHORIZED))


def test_answers_crossing_a_refusal_leave_every_party_with_the_same_transfer() -> None:
    t, importer, transit = start()
    refused_first, _ = apply(t, Confirmed(importer, Decision.REFUSED))
    # the transit state authorized before it heard of the refusal: recorded, still refused
    with pytest.raises(IllegalTransition, match="before dispatch"):
        apply(refused_first, Confirmed(transit[0], Decision.AUTHORIZED))  # its own officer, after
    refused_first, _ = apply(
        refused_first, Confirmed(transit[0], Decision.AUTHORIZED), crossing=True
    )
    authorized_first, _ = apply(t, Confirmed(transit[0], Decision.AUTHORIZED))
    authorized_first, _ = apply(
        authorized_first, Confirmed(importer, Decision.REFUSED), crossing=True
    )
    assert refused_first == authorized_first and refused_first.stage is Stage.REFUSED
    # two refusals crossing: the same one named at every party
    a, _ = apply(t, Confirmed(importer, Decision.REFUSED))
    a, _ = apply(a, Confirmed(transit[0], Decision.REFUSED), crossing=True)
    b, _ = apply(t, Confirmed(transit[0], Decision.REFUSED))
    b, _ = apply(b, Confirmed(importer, Decision.REFUSED), crossing=True)
    assert a == b and a.refused_by == min(importer, transit[0])


def test_receipt_matching_the_dispatch_closes_it_and_a_difference_is_reported() -> None:
    t, _ = apply(authorized(), Dispatched("USA", dict(authorized().dispatched)))
    done, fx = apply(t, Received(t.importer, dict(t.dispatched)))
    assert done.stage is Stage.RECEIVED and fx == []
    line, quantity = next(iter(t.dispatched.items()))
    short, fx = apply(t, Received(t.importer, {**t.dispatched, line: quantity - 2}))
    assert short.stage is Stage.DISCREPANCY
    assert fx == [SendDiscrepancy("USA", ((line, quantity, quantity - 2),))]


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (Confirmed("BRA", Decision.AUTHORIZED), "neither the importing nor a transit"),
        (Dispatched("MEX", {}), "only the exporting state"),
        (Received("USA", {}), "only the importing state"),
    ],
)
def test_illegal_transitions_are_refused_with_a_clear_error(event: object, error: str) -> None:
    t, _, _ = start()
    with pytest.raises(IllegalTransition, match=error):
        apply(t, event)  # type: ignore[arg-type]


def test_receiving_before_dispatch_is_refused() -> None:
    t = authorized()
    with pytest.raises(IllegalTransition, match="nothing dispatched"):
        apply(t, Received(t.importer, dict(t.dispatched)))


def test_an_overdue_receipt_is_alerted_once_after_the_expected_arrival() -> None:
    t, _ = apply(authorized(), Dispatched("USA", dict(authorized().dispatched)))
    arrival = datetime.combine(t.expected_arrival, datetime.min.time(), UTC)
    assert apply(t, Tick(arrival + timedelta(hours=23)))[1] == []
    t, fx = apply(t, Tick(arrival + timedelta(days=2)))
    assert fx == [AlertReceiptOverdue(t.transfer_id, 2)]
    assert apply(t, Tick(arrival + timedelta(days=5)))[1] == []
