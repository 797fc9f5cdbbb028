"""Controlled delivery (Art. XVIII) message by message, through the pure decide function: who
proposes, consents, hands over, intercepts and closes, to whom, and the steps that cross, without
a store, a broker or a clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest

from services.node.workflows.controlled_delivery import Operation, Phase, decide, operation_key
from services.node.workflows.errors import IllegalTransition, NotYet
from services.node.workflows.steps import Step
from tests.unit.workflow_steps import NOW, body, step

OID = "CD-MEX-2026-019"  # the example proposal: MEX proposes, GTM -> MEX -> USA
KEY = operation_key("MEX", OID)
OTHERS = {"MEX": ["GTM", "USA"], "GTM": ["MEX", "USA"], "USA": ["MEX", "GTM"]}


def msg(sender: str, kind: str, party: str, to: list[str] | None = None, **changes: object) -> Step:
    at = changes.pop("after", timedelta(0))
    assert isinstance(at, timedelta)
    return step(sender, OTHERS[sender] if to is None else to, body(kind, **changes), party=party,
                after=at)  # fmt: skip


def take(cases: Mapping[str, Operation], s: Step) -> dict[str, Operation]:
    decision = decide(cases, s)
    assert decision.effects.follow_ups == ()  # a message never makes a node send by itself
    return {**cases, **{save.key: save.state for save in decision.saves}}


def active(party: str) -> dict[str, Operation]:
    cases = take({}, msg("MEX", "delivery.proposal", party))
    for state in ("GTM", "USA"):
        cases = take(cases, msg(state, "delivery.consent", party, after=timedelta(hours=1)))
    assert cases[KEY].phase is Phase.ACTIVE
    return cases


def test_a_proposal_goes_to_every_other_participant_and_no_one_else() -> None:
    [save] = decide({}, msg("MEX", "delivery.proposal", "USA")).saves
    assert save.key == KEY and save.open and save.case_id == OID
    assert save.state.phase is Phase.PROPOSED and save.state.awaiting == ["GTM", "USA"]
    with pytest.raises(IllegalTransition, match="a proposal goes to GTM, USA, not GTM"):
        decide({}, msg("MEX", "delivery.proposal", "MEX", to=["GTM"]))
    with pytest.raises(IllegalTransition, match="not GTM, PAN, USA"):
        decide({}, msg("MEX", "delivery.proposal", "MEX", to=["GTM", "USA", "PAN"]))


def test_a_proposal_by_a_state_not_taking_part_or_made_twice_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="takes part in its operation"):
        decide({}, msg("COL", "delivery.proposal", "USA", to=["MEX", "GTM", "USA"]))
    cases = take({}, msg("MEX", "delivery.proposal", "MEX"))
    with pytest.raises(IllegalTransition, match="already proposed"):
        decide(cases, msg("MEX", "delivery.proposal", "MEX"))


def test_every_step_of_the_operation_goes_to_all_the_other_participants() -> None:
    cases = take({}, msg("MEX", "delivery.proposal", "USA"))
    with pytest.raises(IllegalTransition, match="goes to MEX, USA, not MEX"):
        decide(cases, msg("GTM", "delivery.consent", "USA", to=["MEX"]))


def test_a_consent_that_overtook_the_proposal_waits_and_an_officers_own_is_refused() -> None:
    with pytest.raises(NotYet, match=f"no operation {OID} proposed"):
        decide({}, msg("GTM", "delivery.consent", "USA"))
    with pytest.raises(IllegalTransition) as refused:
        decide({}, msg("USA", "delivery.consent", "USA"))
    assert not isinstance(refused.value, NotYet)


def test_a_hand_over_is_reported_by_one_of_its_two_states() -> None:
    cases = active("MEX")
    with pytest.raises(IllegalTransition, match="one of its two states"):
        decide(cases, msg("USA", "delivery.handover", "MEX"))  # GTM -> MEX, reported by USA
    [save] = decide(cases, msg("GTM", "delivery.handover", "MEX")).saves
    assert save.state.custody == "MEX"


def test_a_hand_over_before_the_last_consent_arrived_waits() -> None:
    cases = take({}, msg("MEX", "delivery.proposal", "USA"))
    cases = take(cases, msg("USA", "delivery.consent", "USA"))
    with pytest.raises(NotYet, match="not active"):
        decide(cases, msg("GTM", "delivery.handover", "USA"))


def test_the_proposer_closes_no_earlier_than_the_last_step_and_the_case_closes() -> None:
    cases = take(active("MEX"), msg("GTM", "delivery.handover", "MEX"))  # dated 2026-12-03
    early = msg("MEX", "delivery.closure", "MEX", closed_at="2026-12-01T00:00:00Z",
                after=timedelta(days=30))  # fmt: skip
    with pytest.raises(IllegalTransition, match="dated before the operation's last step"):
        decide(cases, early)
    with pytest.raises(IllegalTransition, match=r"the proposing state \(MEX\) closes it"):
        decide(cases, msg("USA", "delivery.closure", "MEX", after=timedelta(days=30)))
    closure = msg("MEX", "delivery.closure", "MEX", after=timedelta(days=30))
    [save] = decide(cases, closure).saves
    assert save.state.phase is Phase.CLOSED and not save.open


def test_a_closure_is_never_dated_after_it_was_sent() -> None:
    closure = msg("MEX", "delivery.closure", "USA", after=timedelta(days=3))  # says 2026-12-06
    [save] = decide(active("USA"), closure).saves
    assert save.state.closed_at == NOW + timedelta(days=3)
