"""Article IX: export, import and transit licences, and the receipt confirmation of IX.4.

The exporting state notifies the importing and transit states (IX.1); the importing state confirms
its import licence and each transit state its authorization (IX.2, IX.3) before dispatch; after
dispatch the importing state confirms receipt with the quantities received (IX.4), or reports the
discrepancy. Every body names the transfer by the exporter's ``transfer_id``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from schemas.base import (
    UNIQUE_LINES,
    Body,
    CaseId,
    CountryCode,
    Items,
    LongText,
    Officer,
    Quantity,
    ShortText,
    Timestamp,
    WireModel,
    examples,
)
from schemas.registry import body

_TRANSFER = "USA-DDTC-2026-00731"


class Licence(WireModel):
    number: ShortText
    issued_by: ShortText
    issued_on: dt.date
    valid_until: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Licence:
        if self.valid_until < self.issued_on:
            raise ValueError("licence expires before it is issued")
        return self


class Trader(WireModel):
    name: ShortText
    country: CountryCode
    address: ShortText | None = None


_LICENCE = {
    "number": "050-2026-00731",
    "issued_by": "Directorate of Defense Trade Controls",
    "issued_on": "2026-10-02",
    "valid_until": "2027-10-01",
}
_IMPORT_LICENCE = {
    "number": "MDN-DCCA-IMP-2026-118",
    "issued_by": "Ministerio de Defensa Nacional, DCCA",
    "issued_on": "2026-09-15",
    "valid_until": "2027-03-15",
}
_ITEMS = [
    {
        "line": 1,
        "category": "firearm",
        "description": "Semi-automatic pistol",
        "quantity": 200,
        "model": "M17",
        "calibre": "9x19mm",
    },
    {
        "line": 2,
        "category": "ammunition",
        "description": "9x19mm FMJ cartridges",
        "quantity": 100000,
        "calibre": "9x19mm",
    },
]


@body
class TransferNotice(Body):
    """IX.1: the exporting state notifies importing and transit states of a licensed transfer."""

    KIND: ClassVar[str] = "transfer.notice"
    model_config = examples(
        {
            "transfer_id": _TRANSFER,
            "exporter": {"name": "SIG Sauer Inc.", "country": "USA"},
            "importer": {"name": "Indumil", "country": "COL"},
            "export_licence": _LICENCE,
            "import_licence": _IMPORT_LICENCE,
            "transit_states": ["PAN"],
            "items": _ITEMS,
            "expected_dispatch": "2026-12-10",
            "expected_arrival": "2026-12-28",
        }
    )

    transfer_id: CaseId
    exporter: Trader
    importer: Trader
    export_licence: Licence
    import_licence: Licence
    transit_states: Annotated[
        list[CountryCode], Field(max_length=20, json_schema_extra={"uniqueItems": True})
    ] = []
    items: Items
    expected_dispatch: dt.date
    expected_arrival: dt.date

    @model_validator(mode="after")
    def _consistent(self) -> TransferNotice:
        if self.expected_arrival < self.expected_dispatch:
            raise ValueError("expected_arrival precedes expected_dispatch")
        ends = {self.exporter.country, self.importer.country}
        if ends & set(self.transit_states):
            raise ValueError("a transit state cannot be the exporting or importing state")
        if len(set(self.transit_states)) != len(self.transit_states):
            raise ValueError("transit states repeat")
        return self


class Decision(StrEnum):
    AUTHORIZED = "authorized"
    REFUSED = "refused"


class _Confirmation(Body):
    transfer_id: CaseId
    decision: Decision
    reason: LongText | None = None
    conditions: Annotated[list[ShortText], Field(max_length=20)] = []
    officer: Officer

    @model_validator(mode="after")
    def _refusal_reasoned(self) -> _Confirmation:
        if self.decision is Decision.REFUSED and not self.reason:
            raise ValueError("a refusal states its reason")
        return self


_OFFICER = {
    "name": "Cap. Laura Rincón",
    "position": "Jefe de control de importaciones",
    "agency": "Departamento Control Comercio de Armas (DCCA)",
}


@body
class ImportConfirmation(_Confirmation):
    """IX.2: the importing state confirms it issued the import licence."""

    KIND: ClassVar[str] = "transfer.import_confirmation"
    model_config = examples(
        {
            "transfer_id": _TRANSFER,
            "decision": "authorized",
            "import_licence": _IMPORT_LICENCE,
            "officer": _OFFICER,
        }
    )

    import_licence: Licence


@body
class TransitAuthorization(_Confirmation):
    """IX.3: a transit state gives (or refuses) its authorization."""

    KIND: ClassVar[str] = "transfer.transit_authorization"
    model_config = examples(
        {
            "transfer_id": _TRANSFER,
            "decision": "authorized",
            "authorization_number": "PAN-MINSEG-TR-2026-044",
            "valid_until": "2027-01-31",
            "conditions": ["Transit through Colón Free Zone under customs seal only"],
            "officer": {
                "name": "Lcdo. José Arosemena",
                "position": "Director de control de armas",
                "agency": "Ministerio de Seguridad Pública",
            },
        }
    )

    authorization_number: ShortText | None = None
    valid_until: dt.date | None = None

    @model_validator(mode="after")
    def _numbered(self) -> TransitAuthorization:
        if self.decision is Decision.AUTHORIZED and not self.authorization_number:
            raise ValueError("an authorization carries its number")
        return self


@body
class DispatchNotice(Body):
    """The exporter has shipped: carrier, documents and the quantities dispatched."""

    KIND: ClassVar[str] = "transfer.dispatch"
    model_config = examples(
        {
            "transfer_id": _TRANSFER,
            "dispatched_at": "2026-12-10T09:30:00Z",
            "carrier": "Maersk Line",
            "transport_document": "Bill of lading MAEU 2611045187",
            "items": _ITEMS,
            "expected_arrival": "2026-12-28",
        }
    )

    transfer_id: CaseId
    dispatched_at: Timestamp
    carrier: ShortText
    transport_document: ShortText
    items: Items
    expected_arrival: dt.date
    seal_ids: Annotated[list[ShortText], Field(max_length=50)] = []


class ReceivedLine(WireModel):
    line: Annotated[int, Field(ge=1, le=10_000)]
    quantity_received: Annotated[int, Field(ge=0, le=10_000_000)]
    remarks: ShortText | None = None


@body
class ReceiptConfirmation(Body):
    """IX.4: the importing state confirms receipt of the shipment, with quantities received."""

    KIND: ClassVar[str] = "transfer.receipt_confirmation"
    model_config = examples(
        {
            "transfer_id": _TRANSFER,
            "received_at": "2026-12-27T14:05:00Z",
            "place": "Puerto de Cartagena, bodega DCCA",
            "lines": [
                {"line": 1, "quantity_received": 200},
                {"line": 2, "quantity_received": 100000},
            ],
            "officer": _OFFICER,
        }
    )

    transfer_id: CaseId
    received_at: Timestamp
    place: ShortText
    lines: Annotated[
        list[ReceivedLine], Field(min_length=1, max_length=500, json_schema_extra=UNIQUE_LINES)
    ]
    officer: Officer

    @model_validator(mode="after")
    def _unique(self) -> ReceiptConfirmation:
        if len({x.line for x in self.lines}) != len(self.lines):
            raise ValueError("line numbers repeat")
        return self


class DiscrepancyLine(WireModel):
    line: Annotated[int, Field(ge=1, le=10_000)]
    quantity_expected: Quantity
    quantity_received: Annotated[int, Field(ge=0, le=10_000_000)]
    remarks: ShortText | None = None

    @model_validator(mode="after")
    def _differs(self) -> DiscrepancyLine:
        if self.quantity_expected == self.quantity_received:
            raise ValueError("a discrepancy line must differ")
        return self


@body
class DiscrepancyReport(Body):
    """Quantities received differ from those dispatched."""

    KIND: ClassVar[str] = "transfer.discrepancy"
    model_config = examples(
        {
            "transfer_id": _TRANSFER,
            "lines": [
                {
                    "line": 1,
                    "quantity_expected": 200,
                    "quantity_received": 196,
                    "remarks": "Crate 14 seal broken; four pistols missing",
                }
            ],
            "narrative": "Seal CO-77810 found broken on arrival; police report filed.",
            "officer": _OFFICER,
        }
    )

    transfer_id: CaseId
    lines: Annotated[list[DiscrepancyLine], Field(min_length=1, max_length=500)]
    narrative: LongText
    officer: Officer


@body
class ReceiptOverdue(Body):
    """Sent by the exporting node when no receipt confirmation arrived by the expected date."""

    KIND: ClassVar[str] = "transfer.receipt_overdue"
    model_config = examples(
        {"transfer_id": _TRANSFER, "expected_arrival": "2026-12-28", "days_overdue": 3}
    )

    transfer_id: CaseId
    expected_arrival: dt.date
    days_overdue: Annotated[int, Field(ge=1, le=3650)]
