"""Art. XII through the nodes: MEX supplies information to USA; USA asks MEX's consent to share it
with COL or to use it in court, tells MEX before disclosing it; BRA is a third state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas import HandlingCode
from schemas.audit import EventType
from services.core.encoding import uuid7
from services.core.events import open_event
from services.node.core import Action, Article12Refusal, NodeCore
from tests.support.casework import Network
from tests.unit.test_casework import (
    actions,
    assert_refused_to_officer,
    assert_rejected,
    envelope,
    make,
    network,
)

H1, H2 = HandlingCode.H1, HandlingCode.H2


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return network(tmp_path)


def supply(net: Network, handling: HandlingCode, confidential: bool = False) -> str:
    """MEX sends USA a trafficking-routes report; returns its msg_id."""
    body = make("info.trafficking_routes")
    h = net["MEX"].compose(body, ["USA"], handling=handling, confidential=confidential)
    net.deliver()
    return h.msg_id


def ask(net: Network, subject: str, use: str, recipients: tuple[str, ...] = ()) -> str:
    """USA asks MEX's consent for ``use`` of ``subject`` (sharing: with ``recipients``)."""
    body = make(
        "confidentiality.consent_request",
        subject_msg_id=subject,
        use=use,
        proposed_recipients=list(recipients),
    )
    msg_id = net["USA"].reply(subject, body).msg_id
    assert actions(net.deliver(), "confidentiality.consent_request") == [Action.ACK]
    return msg_id


def answer(net: Network, request: str, subject: str, decision: str = "granted") -> str:
    body = consent_answer(request, subject, decision)
    msg_id = net["MEX"].reply(request, body).msg_id
    assert actions(net.deliver(), "confidentiality.consent_answer") == [Action.ACK]
    return msg_id


def consent_answer(request: str, subject: str, decision: str = "granted") -> Any:
    extra = {"reason": "Source protection."} if decision == "refused" else {}
    return make(
        "confidentiality.consent_answer",
        request_msg_id=request,
        subject_msg_id=subject,
        decision=decision,
        conditions=[],
        **extra,
    )


def refusal(action: Any) -> Article12Refusal:
    with pytest.raises(Article12Refusal) as info:
        action()
    return info.value


def events(core: NodeCore) -> list[Any]:
    """The audit events the node queued, each checked against its signature."""
    return [
        open_event(payload, core.party, core.directory)
        for _, payload, _ in core.store.due_events(float("inf"), 1000)
    ]


# -- forwarding (onward sharing) -------------------------------------------------------------------


def test_forwarding_an_h2_message_without_consent_is_refused_with_the_rule_and_the_remedy(
    net: Network,
) -> None:
    subject = supply(net, H2)
    before = len(net["USA"].store.messages(direction="out"))
    refused = refusal(lambda: net["USA"].forward(subject, ["COL"], "hsi.analyst.04"))
    assert (refused.refused.rule, refused.refused.remedy) == ("h2_onward", "ask_sharing")
    assert refused.refused.params == {"originator": "MEX", "states": ("COL",)}
    assert len(net["USA"].store.messages(direction="out")) == before


def test_forwarding_is_allowed_after_consent_for_exactly_the_states_consented_to(
    net: Network,
) -> None:
    subject = supply(net, H2)
    request = ask(net, subject, "onward_sharing", ("COL",))
    refusal(lambda: net["USA"].forward(subject, ["COL"], "hsi.analyst.04"))  # not answered yet
    answer(net, request, subject, "granted")

    copy = net["USA"].forward(subject, ["COL"], "hsi.analyst.04")
    assert (copy.recipients, copy.handling) == (["COL"], H2)
    assert actions(net.deliver(), "info.trafficking_routes") == [Action.ACK]
    for to in (["BRA"], ["COL", "BRA"]):
        refused = refusal(lambda to=to: net["USA"].forward(subject, to, "hsi.analyst.04"))
        assert "BRA" in refused.refused.params["states"]  # type: ignore[operator]


def test_forwarding_stays_refused_after_the_originator_refuses(net: Network) -> None:
    subject = supply(net, H2)
    request = ask(net, subject, "onward_sharing", ("COL",))
    answer(net, request, subject, "refused")
    refusal(lambda: net["USA"].forward(subject, ["COL"], "hsi.analyst.04"))
    record = net["USA"].casework.handling_record(subject, "USA")
    assert record is not None and [a.answered for a in record.asked] == [True]


def test_a_consent_answer_without_a_request_is_refused_and_rejected(net: Network) -> None:
    subject = supply(net, H2)
    body = consent_answer(uuid7(), subject)
    assert_refused_to_officer(
        net["MEX"], "no consent request", lambda: net["MEX"].compose(body, ["USA"], handling=H1)
    )
    assert_rejected(net, "MEX", "USA", envelope(net, "MEX", ["USA"], body), "no consent request")
    refusal(lambda: net["USA"].forward(subject, ["COL"], "hsi.analyst.04"))


def test_a_consent_answer_for_a_message_the_answerer_did_not_originate_is_refused_and_rejected(
    net: Network,
) -> None:
    subject = supply(net, H2)
    request = ask(net, subject, "onward_sharing", ("COL",))
    body = consent_answer(request, subject)
    assert_refused_to_officer(
        net["COL"], "not a message of ours", lambda: net["COL"].compose(body, ["USA"], handling=H1)
    )
    data = envelope(net, "COL", ["USA"], body)
    assert_rejected(net, "COL", "USA", data, f"{subject} is not a message received from COL")
    refusal(lambda: net["USA"].forward(subject, ["COL"], "hsi.analyst.04"))


def test_a_second_answer_to_one_consent_request_is_refused_and_rejected(net: Network) -> None:
    subject = supply(net, H2)
    request = ask(net, subject, "onward_sharing", ("COL",))
    answer(net, request, subject, "refused")
    body = consent_answer(request, subject, "granted")
    assert_refused_to_officer(net["MEX"], "was answered", lambda: net["MEX"].reply(request, body))
    assert_rejected(net, "MEX", "USA", envelope(net, "MEX", ["USA"], body), "was answered")
    refusal(lambda: net["USA"].forward(subject, ["COL"], "hsi.analyst.04"))


# -- export (disclosure outside the network) -----------------------------------------------------


def test_exporting_an_h1_message_for_judicial_use_needs_the_originators_permission(
    net: Network,
) -> None:
    subject = supply(net, H1)
    refused = refusal(lambda: net["USA"].export(subject, "ausa.whitman", judicial=True))
    assert (refused.refused.rule, refused.refused.remedy) == ("h1_judicial", "ask_judicial")
    assert refused.refused.params == {"originator": "MEX"}
    assert net["USA"].export(subject, "hsi.analyst.04", judicial=False).header.msg_id == subject

    request = ask(net, subject, "judicial_use")
    refusal(lambda: net["USA"].export(subject, "ausa.whitman", judicial=True))
    answer(net, request, subject, "granted")
    assert net["USA"].export(subject, "ausa.whitman", judicial=True).header.msg_id == subject


def test_exporting_a_confidential_message_needs_a_disclosure_notice_first(net: Network) -> None:
    subject = supply(net, H1, confidential=True)
    refused = refusal(lambda: net["USA"].export(subject, "ausa.whitman", judicial=False))
    assert (refused.refused.rule, refused.refused.remedy) == ("confidential", "send_notice")

    notice = make("confidentiality.disclosure_notice", subject_msg_id=subject)
    net["USA"].reply(subject, notice)
    # queued is not told: MEX has not got it yet
    refusal(lambda: net["USA"].export(subject, "ausa.whitman", judicial=False))
    assert actions(net.deliver(), "confidentiality.disclosure_notice") == [Action.ACK]
    assert net["USA"].export(subject, "ausa.whitman", judicial=False).header.msg_id == subject
    record = net["MEX"].casework.handling_record(subject, "USA")
    assert record is not None and len(record.notices) == 1  # the originator knows


def test_each_art12_step_is_audited_naming_the_message_it_concerns(net: Network) -> None:
    subject = supply(net, H2, confidential=True)
    request = ask(net, subject, "onward_sharing", ("COL",))
    answer(net, request, subject, "granted")
    # sharing with COL is not taking it out of the network: that is asked for on its own
    refusal(lambda: net["USA"].export(subject, "ausa.whitman", judicial=False))
    answer(net, ask(net, subject, "external_disclosure"), subject, "granted")
    net["USA"].reply(subject, make("confidentiality.disclosure_notice", subject_msg_id=subject))
    net.deliver()
    net["USA"].forward(subject, ["COL"], "hsi.analyst.04")
    net["USA"].export(subject, "ausa.whitman", judicial=False)

    art12 = {
        EventType.CONSENT_REQUESTED,
        EventType.CONSENT_ANSWERED,
        EventType.DISCLOSURE_NOTIFIED,
        EventType.FORWARDED,
        EventType.EXPORTED,
    }
    at_usa = [e for e in events(net["USA"]) if e.event in art12]
    at_mex = [e for e in events(net["MEX"]) if e.event in art12]
    assert sorted(e.event for e in at_usa) == sorted(
        [
            EventType.CONSENT_REQUESTED,  # onward sharing
            EventType.CONSENT_REQUESTED,  # external disclosure
            EventType.DISCLOSURE_NOTIFIED,
            EventType.FORWARDED,
            EventType.EXPORTED,
        ]
    )
    assert [e.event for e in at_mex] == [EventType.CONSENT_ANSWERED] * 2
    for e in at_usa + at_mex:
        assert (e.msg_id, e.kind, e.sender, e.recipients) == (
            subject,
            "info.trafficking_routes",
            "MEX",
            ["USA"],
        )
    officers = {e.event: e.officer for e in at_usa}
    assert (officers[EventType.FORWARDED], officers[EventType.EXPORTED]) == (
        "hsi.analyst.04",
        "ausa.whitman",
    )


def test_a_forwarded_copy_keeps_the_rules_and_the_provider_of_the_message_it_copies(
    net: Network,
) -> None:
    subject = supply(net, H1, confidential=True)
    ask(net, subject, "onward_sharing", ("COL",))
    request = [m.msg_id for m in net["USA"].store.messages(kind="confidentiality.consent_request")]
    answer(net, request[0], subject, "granted")
    copy = net["USA"].forward(subject, ["COL"], "hsi.analyst.04").msg_id
    net.deliver()
    # the copy is USA's outgoing message, but exporting it is exporting MEX's information
    refused = refusal(lambda: net["USA"].export(copy, "ausa.whitman", judicial=True))
    assert refused.refused.rule == "h1_judicial" and refused.refused.params["originator"] == "MEX"
    # COL asks USA (the copy's sender) for consent to share it further: only MEX can give it
    body = make("confidentiality.consent_request", subject_msg_id=copy, use="onward_sharing",
                proposed_recipients=["BRA"])  # fmt: skip
    data = envelope(net, "COL", ["USA"], body)
    assert_rejected(net, "COL", "USA", data, f"forwarded copy of message {subject}: ask MEX")


def test_an_export_that_could_not_be_written_is_not_on_record(net: Network) -> None:
    subject = supply(net, H1)

    def disk_full(_: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        net["USA"].export(subject, "ausa.whitman", judicial=False, write=disk_full)
    assert EventType.EXPORTED not in {e.event for e in events(net["USA"])}
    net["USA"].export(subject, "ausa.whitman", judicial=False, write=lambda _: None)
    assert EventType.EXPORTED in {e.event for e in events(net["USA"])}
