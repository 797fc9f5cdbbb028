"""Article XII: confidentiality of supplied information, and onward sharing with consent.

A recipient forced by law to disclose a confidential message tells its supplier *before*
disclosing (disclosure notice). Forwarding an ``H2`` message, or using an ``H1`` message in judicial
proceedings, needs the provider's permission: consent request and answer. Every body names the
message concerned by its ``msg_id``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from schemas.base import (
    Body,
    LongText,
    MessageId,
    Officer,
    PartyCode,
    ShortText,
    Timestamp,
    examples,
)
from schemas.registry import body

_SUBJECT = "019ab4f0-2c31-7b55-9e02-6a1f3d7c8e90"


@body
class DisclosureNotice(Body):
    """XII: the recipient must disclose by law, and tells the supplier before it does."""

    KIND: ClassVar[str] = "confidentiality.disclosure_notice"
    model_config = examples(
        {
            "subject_msg_id": _SUBJECT,
            "legal_basis": "Court order under Fed. R. Crim. P. 16 in United States v. Doe, "
            "No. 4:26-cr-01187 (D. Ariz.)",
            "disclosed_to": "Defence counsel and the court",
            "planned_disclosure_at": "2026-12-15T17:00:00Z",
            "scope": "Route description and dates only; source evaluation withheld.",
            "officer": {
                "name": "AUSA K. Whitman",
                "position": "Assistant United States Attorney",
                "agency": "U.S. Attorney's Office, District of Arizona",
            },
        }
    )

    subject_msg_id: MessageId
    legal_basis: LongText
    disclosed_to: ShortText
    planned_disclosure_at: Timestamp
    scope: LongText
    officer: Officer


class IntendedUse(StrEnum):
    ONWARD_SHARING = "onward_sharing"  # with the other States Parties named
    JUDICIAL_USE = "judicial_use"
    EXTERNAL_DISCLOSURE = "external_disclosure"  # out of the network, to an authority at home


@body
class ConsentRequest(Body):
    """Ask the provider's permission to share a message onward or to use it in court."""

    KIND: ClassVar[str] = "confidentiality.consent_request"
    model_config = examples(
        {
            "subject_msg_id": _SUBJECT,
            "use": "onward_sharing",
            "proposed_recipients": ["PAN"],
            "purpose": "Panama customs hold a related container at Colón; the route report "
            "would let them target the consolidator.",
        }
    )

    subject_msg_id: MessageId
    use: IntendedUse
    proposed_recipients: Annotated[list[PartyCode], Field(max_length=60)] = []
    purpose: LongText

    @model_validator(mode="after")
    def _recipients_for_sharing(self) -> ConsentRequest:
        if self.use is IntendedUse.ONWARD_SHARING and not self.proposed_recipients:
            raise ValueError("onward sharing names the proposed recipients")
        return self


class ConsentDecision(StrEnum):
    GRANTED = "granted"
    GRANTED_WITH_CONDITIONS = "granted_with_conditions"
    REFUSED = "refused"


@body
class ConsentAnswer(Body):
    """The provider's answer to a consent request."""

    KIND: ClassVar[str] = "confidentiality.consent_answer"
    model_config = examples(
        {
            "request_msg_id": "019ab5d1-0a2b-7c3d-8e4f-5a6b7c8d9e0f",
            "subject_msg_id": _SUBJECT,
            "decision": "granted_with_conditions",
            "conditions": ["Panama may not share further", "Source evaluation removed"],
            "valid_until": "2027-06-30T00:00:00Z",
        }
    )

    request_msg_id: MessageId
    subject_msg_id: MessageId
    decision: ConsentDecision
    conditions: Annotated[list[ShortText], Field(max_length=20)] = []
    reason: LongText | None = None
    valid_until: Timestamp | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ConsentAnswer:
        if self.decision is ConsentDecision.GRANTED_WITH_CONDITIONS and not self.conditions:
            raise ValueError("granted_with_conditions states the conditions")
        if self.decision is not ConsentDecision.GRANTED_WITH_CONDITIONS and self.conditions:
            raise ValueError("conditions only go with granted_with_conditions")
        return self
