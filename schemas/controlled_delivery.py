"""Article XVIII: controlled delivery, agreed case by case among the states concerned.

The proposing state sends a proposal to every participant; each consents or declines; the operation
becomes active only with every consent. Custody passes at borders (hand-over), the consignment may
be intercepted (let continue intact, items removed, items substituted) and the operation is closed.
Every body names the operation by the proposer's ``operation_id``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from schemas.base import (
    Body,
    CaseId,
    CountryCode,
    Items,
    LongText,
    MaybeItems,
    Officer,
    ShortText,
    Timestamp,
    WireModel,
    examples,
)
from schemas.information import TransportMode
from schemas.registry import body

_OPERATION = "CD-MEX-2026-019"
_Ids = Annotated[list[ShortText], Field(max_length=50)]


class Leg(WireModel):
    from_state: CountryCode
    to_state: CountryCode
    border_crossing: ShortText
    mode: TransportMode


class Window(WireModel):
    start: Timestamp
    end: Timestamp

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("window end must follow its start")
        return self


class Consignment(WireModel):
    description: LongText
    items: Items
    container_ids: _Ids = []
    seal_ids: _Ids = []


@body
class DeliveryProposal(Body):
    """A proposal to let a consignment continue under surveillance across the states concerned."""

    KIND: ClassVar[str] = "delivery.proposal"
    model_config = examples(
        {
            "operation_id": _OPERATION,
            "participants": ["MEX", "GTM", "USA"],
            "route": [
                {
                    "from_state": "GTM",
                    "to_state": "MEX",
                    "border_crossing": "Ciudad Hidalgo / Tecún Umán",
                    "mode": "road",
                },
                {
                    "from_state": "MEX",
                    "to_state": "USA",
                    "border_crossing": "Laredo",
                    "mode": "road",
                },
            ],
            "consignment": {
                "description": "Tractor-trailer declared as ceramic tiles; intelligence "
                "indicates 40 rifles concealed in pallets.",
                "items": [
                    {
                        "line": 1,
                        "category": "firearm",
                        "description": "AK-pattern rifle",
                        "quantity": 40,
                        "calibre": "7.62x39mm",
                    }
                ],
                "container_ids": ["TRLU 482211-7"],
                "seal_ids": ["GT-SAT-0099812"],
            },
            "window": {"start": "2026-12-02T00:00:00Z", "end": "2026-12-09T00:00:00Z"},
            "objective": "Identify the receiving network in Texas.",
            "contact": {
                "name": "Cmdte. Sergio Ibarra",
                "position": "Coordinador de entregas vigiladas",
                "agency": "Guardia Nacional",
                "phone": "+525550001234",
            },
        }
    )

    operation_id: CaseId
    participants: Annotated[
        list[CountryCode],
        Field(min_length=2, max_length=20, json_schema_extra={"uniqueItems": True}),
    ]
    route: Annotated[list[Leg], Field(min_length=1, max_length=20)]
    consignment: Consignment
    window: Window
    objective: LongText
    contact: Officer

    @model_validator(mode="after")
    def _route_within_participants(self) -> DeliveryProposal:
        if len(set(self.participants)) != len(self.participants):
            raise ValueError("participants repeat")
        for leg in self.route:
            for s in (leg.from_state, leg.to_state):
                if s not in self.participants:
                    raise ValueError(f"route crosses {s}, which is not a participant")
        return self


@body
class DeliveryConsent(Body):
    """A participant's consent for this operation, with its conditions."""

    KIND: ClassVar[str] = "delivery.consent"
    model_config = examples(
        {
            "operation_id": _OPERATION,
            "conditions": ["Surveillance handed to HSI at the Laredo port of entry"],
            "contact": {
                "name": "SA Megan Cole",
                "position": "Group Supervisor",
                "agency": "Homeland Security Investigations",
            },
        }
    )

    operation_id: CaseId
    conditions: Annotated[list[ShortText], Field(max_length=20)] = []
    contact: Officer


@body
class DeliveryDecline(Body):
    """A participant declines; the operation cannot become active."""

    KIND: ClassVar[str] = "delivery.decline"
    model_config = examples(
        {
            "operation_id": _OPERATION,
            "reason": "No surveillance capacity on the proposed dates.",
        }
    )

    operation_id: CaseId
    reason: LongText


@body
class CustodyHandover(Body):
    """Custody of the consignment passes from one state to the next at a border."""

    KIND: ClassVar[str] = "delivery.handover"
    model_config = examples(
        {
            "operation_id": _OPERATION,
            "from_state": "GTM",
            "to_state": "MEX",
            "at": "2026-12-03T06:40:00Z",
            "place": "Ciudad Hidalgo customs yard",
            "container_ids": ["TRLU 482211-7"],
            "seal_ids": ["GT-SAT-0099812"],
            "seals_intact": True,
        }
    )

    operation_id: CaseId
    from_state: CountryCode
    to_state: CountryCode
    at: Timestamp
    place: ShortText
    container_ids: _Ids = []
    seal_ids: _Ids = []
    seals_intact: bool
    remarks: LongText | None = None


class InterceptionDecision(StrEnum):
    CONTINUE_INTACT = "continue_intact"
    ITEMS_REMOVED = "items_removed"
    ITEMS_SUBSTITUTED = "items_substituted"


@body
class Interception(Body):
    """XVIII.2: the consignment continues intact, or with items removed or substituted."""

    KIND: ClassVar[str] = "delivery.interception"
    model_config = examples(
        {
            "operation_id": _OPERATION,
            "decision": "items_substituted",
            "decided_at": "2026-12-03T09:15:00Z",
            "inventory": [
                {
                    "line": 1,
                    "category": "firearm",
                    "description": "AK-pattern rifle replaced by inert replica",
                    "quantity": 40,
                }
            ],
            "new_seal_ids": ["MX-GN-2026-55120"],
        }
    )

    operation_id: CaseId
    decision: InterceptionDecision
    decided_at: Timestamp
    inventory: MaybeItems = []
    new_seal_ids: _Ids = []

    @model_validator(mode="after")
    def _inventory(self) -> Interception:
        intact = self.decision is InterceptionDecision.CONTINUE_INTACT
        if intact and self.inventory:
            raise ValueError("continue_intact carries no inventory")
        if not intact and not self.inventory:
            raise ValueError(f"{self.decision.value} needs the inventory of items concerned")
        return self


class ClosureOutcome(StrEnum):
    COMPLETED = "completed"
    INTERDICTED = "interdicted"
    ABORTED = "aborted"
    LOST = "lost"


@body
class DeliveryClosure(Body):
    """The operation is over: outcome and summary, to every participant."""

    KIND: ClassVar[str] = "delivery.closure"
    model_config = examples(
        {
            "operation_id": _OPERATION,
            "outcome": "interdicted",
            "closed_at": "2026-12-06T22:00:00Z",
            "summary": "Consignment delivered to a warehouse in Laredo, TX; three arrests; "
            "replicas recovered.",
        }
    )

    operation_id: CaseId
    outcome: ClosureOutcome
    closed_at: Timestamp
    summary: LongText
