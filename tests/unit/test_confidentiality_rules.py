"""Article XII as the node enforces it: forwarding, judicial use, disclosure notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import HandlingCode
from schemas.confidentiality import ConsentDecision, IntendedUse
from services.node.workflows.confidentiality import (
    Consent,
    Received,
    Refused,
    may_export,
    may_forward,
)

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def received(handling: HandlingCode, confidential: bool = False, **kw: object) -> Received:
    return Received("MEX", handling, confidential, **kw)  # type: ignore[arg-type]


def test_an_h2_message_cannot_be_forwarded_without_consent() -> None:
    refused = may_forward(received(HandlingCode.H2), ["COL"], T0)
    assert refused == Refused("h2_onward", "ask_sharing", {"originator": "MEX", "states": ("COL",)})
    assert may_forward(received(HandlingCode.H0), ["COL"], T0) is None


def test_consent_covers_the_recipients_it_names_until_it_lapses() -> None:
    consent = Consent(IntendedUse.ONWARD_SHARING, ConsentDecision.GRANTED, frozenset({"COL"}),
                      valid_until=T0 + timedelta(days=30))  # fmt: skip
    m = received(HandlingCode.H2, consents=(consent,))
    assert may_forward(m, ["COL"], T0) is None
    assert may_forward(m, ["COL", "BRA"], T0) is not None  # BRA was not in the consent
    assert may_forward(m, ["COL"], T0 + timedelta(days=31)) is not None  # lapsed
    refused = Consent(IntendedUse.ONWARD_SHARING, ConsentDecision.REFUSED, frozenset({"COL"}))
    assert may_forward(received(HandlingCode.H2, consents=(refused,)), ["COL"], T0) is not None


def test_h1_judicial_use_needs_permission() -> None:
    assert may_export(received(HandlingCode.H1), judicial=True, at=T0) == Refused(
        "h1_judicial", "ask_judicial", {"originator": "MEX"}
    )
    assert may_export(received(HandlingCode.H1), judicial=False, at=T0) is None
    permit = Consent(IntendedUse.JUDICIAL_USE, ConsentDecision.GRANTED_WITH_CONDITIONS)
    assert may_export(received(HandlingCode.H1, consents=(permit,)), judicial=True, at=T0) is None


def test_a_confidential_message_is_disclosed_only_after_a_disclosure_notice() -> None:
    refused = may_export(received(HandlingCode.H0, True), judicial=False, at=T0)
    assert refused == Refused("confidential", "send_notice", {"originator": "MEX"})
    notified = received(HandlingCode.H0, True, disclosure_notice_delivered=True)
    assert may_export(notified, judicial=False, at=T0) is None


def test_a_confidential_message_is_forwarded_only_with_consent_and_never_back_to_its_source() -> (
    None
):
    refused = may_forward(received(HandlingCode.H0, True), ["COL"], T0)
    assert refused is not None and (refused.rule, refused.remedy) == ("confidential", "ask_sharing")
    consent = Consent(IntendedUse.ONWARD_SHARING, ConsentDecision.GRANTED, frozenset({"COL"}))
    assert may_forward(received(HandlingCode.H0, True, consents=(consent,)), ["COL"], T0) is None
    assert may_forward(received(HandlingCode.H0), ["MEX"], T0) == Refused(  # its own
        "nothing_to_forward", "originator_has_it", {"originator": "MEX"}
    )


def test_an_h2_message_leaves_the_network_only_with_the_providers_consent() -> None:
    refused = may_export(received(HandlingCode.H2), judicial=False, at=T0)
    assert refused == Refused(
        "h2_onward", "ask_use", {"originator": "MEX", "use": "external_disclosure"}
    )
    sharing = Consent(IntendedUse.ONWARD_SHARING, ConsentDecision.GRANTED, frozenset({"COL"}))
    # a consent to share with COL does not let it out of the network to anyone
    assert may_export(received(HandlingCode.H2, consents=(sharing,)), judicial=False, at=T0)
    outside = Consent(IntendedUse.EXTERNAL_DISCLOSURE, ConsentDecision.GRANTED)
    assert may_export(received(HandlingCode.H2, consents=(outside,)), judicial=False, at=T0) is None
    judicial = Consent(IntendedUse.JUDICIAL_USE, ConsentDecision.GRANTED)
    m = received(HandlingCode.H2, consents=(judicial,))
    assert may_export(m, judicial=True, at=T0) is None
    assert may_export(m, judicial=False, at=T0) is not None  # permission for court use only
