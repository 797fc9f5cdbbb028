"""Article XII message by message, through the pure decide function: consent requests, answers
and disclosure notices between the holder and the originator of a received message, without a
store, a broker or a clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas import HandlingCode
from schemas.audit import EventType
from schemas.confidentiality import ConsentDecision, IntendedUse
from services.node.workflows.confidentiality import (
    Handling,
    Subject,
    decide,
    key,
    may_export,
    may_forward,
    received,
    record_key,
)
from services.node.workflows.errors import IllegalTransition
from services.node.workflows.steps import Noted, Step
from tests.unit.workflow_steps import NOW, body, step

SUBJECT = "019ab4f0-2c31-7b55-9e02-6a1f3d7c8e90"  # the registry examples' subject: MEX -> USA
AT_USA = Subject(direction="in", sender="MEX", recipients=("USA",), kind="info.trafficking_routes")
AT_MEX = Subject(direction="out", sender="MEX", recipients=("USA",), kind="info.trafficking_routes")


def ask(party: str, to: str = "MEX", **changes: object) -> Step:
    return step("USA", [to], body("confidentiality.consent_request", **changes), party=party)


def answer(request: Step, party: str, **changes: object) -> Step:
    b = body("confidentiality.consent_answer", request_msg_id=request.msg_id, **changes)
    return step("MEX", ["USA"], b, party=party, after=timedelta(hours=2))


def test_the_holders_request_is_recorded_and_is_an_audit_event_of_its_own_node_only() -> None:
    request = ask("USA")
    assert key(request) == record_key(SUBJECT, "USA")
    decision = decide(None, AT_USA, request)
    [save] = decision.saves
    assert save.key == record_key(SUBJECT, "USA") and not save.open
    assert (save.state.originator, save.state.holder) == ("MEX", "USA")
    assert [(a.msg_id, a.use, a.recipients) for a in save.state.asked] == [
        (request.msg_id, IntendedUse.ONWARD_SHARING, frozenset({"PAN"}))
    ]
    assert decision.effects.noted == (Noted(EventType.CONSENT_REQUESTED, SUBJECT),)
    assert decide(None, AT_MEX, ask("MEX")).effects.noted == ()  # the originator only records


def test_an_art_xii_step_goes_to_one_state_only() -> None:
    request = step("USA", ["MEX", "COL"], body("confidentiality.consent_request"), party="USA")
    with pytest.raises(IllegalTransition, match="one state only"):
        decide(None, AT_USA, request)


def test_the_subject_must_be_a_message_the_originator_sent_the_holder() -> None:
    with pytest.raises(IllegalTransition, match="not a message received from COL"):
        decide(None, AT_USA, ask("USA", to="COL"))
    with pytest.raises(IllegalTransition, match="not a message received from MEX"):
        decide(None, None, ask("USA"))
    at_col = Subject(direction="out", sender="MEX", recipients=("COL",), kind="info.routes")
    with pytest.raises(IllegalTransition, match="not a message of ours sent to USA"):
        decide(None, at_col, ask("MEX"))
    receipt = Subject(direction="in", sender="MEX", recipients=("USA",), kind="protocol.receipt")
    with pytest.raises(IllegalTransition, match=r"not subject to Art\. XII"):
        decide(None, receipt, ask("USA"))


def test_a_forwarded_copy_is_for_its_provider_to_decide() -> None:
    copy = Subject(direction="out", sender="MEX", recipients=("USA",), kind="info.routes",
                   copy_of="019ab4f0-0000-7000-8000-000000000001", provider="BRA")  # fmt: skip
    with pytest.raises(IllegalTransition, match=r"forwarded copy of message .*: ask BRA"):
        decide(None, copy, ask("MEX"))


def test_onward_sharing_names_third_states() -> None:
    with pytest.raises(IllegalTransition, match="names the third states"):
        decide(None, AT_USA, ask("USA", proposed_recipients=["MEX"]))


def test_an_answer_grants_what_was_asked_once_and_lifts_the_h2_rule() -> None:
    request = ask("USA")
    [asked] = decide(None, AT_USA, request).saves
    view = received("MEX", HandlingCode.H2, False, asked.state)
    assert may_forward(view, ["PAN"], NOW) is not None  # H2: not without the provider's consent
    decision = decide(asked.state, AT_USA, answer(request, "USA"))
    [save] = decision.saves
    [consent] = save.state.consents
    assert consent.decision is ConsentDecision.GRANTED_WITH_CONDITIONS
    assert consent.recipients == frozenset({"PAN"}) and save.state.asked[0].answered
    assert decision.effects.noted == ()  # received at the holder: the originator's event
    view = received("MEX", HandlingCode.H2, False, save.state)
    assert may_forward(view, ["PAN"], NOW) is None
    assert may_forward(view, ["PAN", "COL"], NOW) is not None  # only the states consented to
    with pytest.raises(IllegalTransition, match="was answered"):
        decide(save.state, AT_USA, answer(request, "USA"))


def test_an_answer_to_no_request_is_refused() -> None:
    with pytest.raises(IllegalTransition, match=r"no consent request .* to answer"):
        decide(Handling(SUBJECT, "MEX", "USA"), AT_USA, answer(ask("USA"), "USA"))


def test_a_disclosure_notice_is_recorded_for_the_holder() -> None:
    notice = step("USA", ["MEX"], body("confidentiality.disclosure_notice"), party="USA")
    decision = decide(None, AT_USA, notice)
    assert decision.saves[0].state.notices == (notice.msg_id,)
    assert decision.effects.noted == (Noted(EventType.DISCLOSURE_NOTIFIED, SUBJECT),)


def test_a_confidential_message_is_disclosed_only_once_the_notice_was_delivered() -> None:
    notice = step("USA", ["MEX"], body("confidentiality.disclosure_notice"), party="USA")
    [save] = decide(None, AT_USA, notice).saves
    sent = received("MEX", HandlingCode.H0, True, save.state, ["sent"])
    assert may_export(sent, judicial=False, at=NOW) is not None
    delivered = received("MEX", HandlingCode.H0, True, save.state, ["sent", "delivered"])
    assert may_export(delivered, judicial=False, at=NOW) is None
