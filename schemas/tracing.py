"""Article XIII.3 tracing, with the markings of Article VI.

A requesting state asks another to trace a seized, recovered or confiscated firearm. The requested
state acknowledges, then answers found, not found or partial with the chain of transfers it found.
The requesting node sends reminders before the due date and an overdue notice after it. Replies
refer to the request by its ``msg_id`` (also carried in the envelope header's ``in_reply_to``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from schemas.base import (
    Body,
    CaseId,
    CountryCode,
    LongText,
    MessageId,
    Officer,
    ShortText,
    Timestamp,
    WireModel,
    examples,
)
from schemas.registry import body

_EXAMPLE_REQUEST_ID = "019ab5c2-7d10-7a3e-8f21-5c9d0e4b6a71"


class FirearmType(StrEnum):
    PISTOL = "pistol"
    REVOLVER = "revolver"
    RIFLE = "rifle"
    CARBINE = "carbine"
    SHOTGUN = "shotgun"
    SUBMACHINE_GUN = "submachine_gun"
    MACHINE_GUN = "machine_gun"
    GRENADE_LAUNCHER = "grenade_launcher"
    OTHER = "other"


class ImportMarking(WireModel):
    """Art. VI.1.b: the marking applied at import (importer, country and year of import)."""

    importer: ShortText | None = None
    country: CountryCode | None = None
    year: Annotated[int, Field(ge=1800, le=2200)] | None = None
    text: ShortText | None = None


class Markings(WireModel):
    """Art. VI.1.a: name of manufacturer, place of manufacture and serial number."""

    manufacturer: ShortText
    country_of_manufacture: CountryCode
    place_of_manufacture: ShortText | None = None
    serial_number: ShortText | None = None
    serial_obliterated: bool = False
    import_marking: ImportMarking | None = None
    other_markings: Annotated[list[ShortText], Field(max_length=20)] = []

    @model_validator(mode="after")
    def _serial(self) -> Markings:
        if self.serial_number is None and not self.serial_obliterated:
            raise ValueError("serial_number is required unless serial_obliterated is true")
        return self


class Firearm(WireModel):
    type: FirearmType
    model: ShortText
    calibre: ShortText
    markings: Markings


class Seizure(WireModel):
    kind: Annotated[str, Field(pattern=r"^(seized|recovered|confiscated)$")]
    place: ShortText
    country: CountryCode
    date: dt.date
    circumstances: LongText


class Priority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"


@body
class TracingRequest(Body):
    """A request to trace one firearm through the requested state's records."""

    KIND: ClassVar[str] = "tracing.request"
    model_config = examples(
        {
            "firearm": {
                "type": "pistol",
                "model": "G19 Gen5",
                "calibre": "9x19mm",
                "markings": {
                    "manufacturer": "Glock Ges.m.b.H.",
                    "country_of_manufacture": "AUT",
                    "place_of_manufacture": "Deutsch-Wagram",
                    "serial_number": "BXKM417",
                    "import_marking": {"importer": "Glock Inc.", "country": "USA", "year": 2022},
                },
            },
            "seizure": {
                "kind": "seized",
                "place": "Culiacán, Sinaloa",
                "country": "MEX",
                "date": "2026-11-20",
                "circumstances": "Recovered at a vehicle checkpoint with two magazines; driver "
                "detained.",
            },
            "requesting_officer": {
                "name": "Lic. Ana Torres Medina",
                "position": "Analista de rastreo",
                "agency": "Fiscalía General de la República",
                "email": "a.torres@fgr.example.mx",
            },
            "case_reference": "FGR/SIN/2026/1187",
            "priority": "routine",
            "due_at": "2026-12-01T15:00:00Z",
        }
    )

    firearm: Firearm
    seizure: Seizure
    requesting_officer: Officer
    case_reference: ShortText
    priority: Priority
    urgency_justification: LongText | None = None
    due_at: Timestamp

    @model_validator(mode="after")
    def _urgent_justified(self) -> TracingRequest:
        if self.priority is Priority.URGENT and not self.urgency_justification:
            raise ValueError("an urgent request needs urgency_justification")
        return self


@body
class TracingAcknowledgement(Body):
    """The requested state confirms it received the request and is working on it."""

    KIND: ClassVar[str] = "tracing.acknowledgement"
    model_config = examples(
        {
            "request_msg_id": _EXAMPLE_REQUEST_ID,
            "received_at": "2026-11-24T15:02:11Z",
            "reference": "ATF-NTC-2026-448812",
        }
    )

    request_msg_id: MessageId
    received_at: Timestamp
    reference: ShortText | None = None
    expected_answer_by: Timestamp | None = None


class Outcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    PARTIAL = "partial"


class Transfer(WireModel):
    """One link of the chain of custody a trace finds."""

    date: dt.date | None = None
    from_party: ShortText
    from_country: CountryCode
    to_party: ShortText
    to_country: CountryCode
    document: ShortText | None = None


@body
class TracingResponse(Body):
    """The answer: found, not found or partial, with the chain of transfers found."""

    KIND: ClassVar[str] = "tracing.response"
    model_config = examples(
        {
            "request_msg_id": _EXAMPLE_REQUEST_ID,
            "outcome": "found",
            "chain": [
                {
                    "date": "2022-06-03",
                    "from_party": "Glock Ges.m.b.H.",
                    "from_country": "AUT",
                    "to_party": "Glock Inc.",
                    "to_country": "USA",
                    "document": "Import permit ATF-6 2022-11873",
                },
                {
                    "date": "2024-02-17",
                    "from_party": "Licensed dealer, Tucson AZ (FFL 9-86-xxxxx)",
                    "from_country": "USA",
                    "to_party": "Retail purchaser (identity available on request)",
                    "to_country": "USA",
                    "document": "Form 4473",
                },
            ],
            "narrative": "Last legal retail sale in Arizona; purchaser not a prohibited person "
            "at the time. Possible straw purchase under investigation.",
            "responding_officer": {
                "name": "Special Agent R. Delgado",
                "position": "Tracing specialist",
                "agency": "ATF National Tracing Center",
            },
        }
    )

    request_msg_id: MessageId
    outcome: Outcome
    chain: Annotated[list[Transfer], Field(max_length=100)] = []
    narrative: LongText | None = None
    responding_officer: Officer

    @model_validator(mode="after")
    def _chain_matches_outcome(self) -> TracingResponse:
        if self.outcome is Outcome.NOT_FOUND and self.chain:
            raise ValueError("a not_found answer carries no chain of transfers")
        if self.outcome is not Outcome.NOT_FOUND and not self.chain:
            raise ValueError(f"a {self.outcome.value} answer carries the chain it found")
        return self


@body
class TracingReminder(Body):
    """Sent by the requesting node before the due date."""

    KIND: ClassVar[str] = "tracing.reminder"
    model_config = examples(
        {"request_msg_id": _EXAMPLE_REQUEST_ID, "due_at": "2026-12-01T15:00:00Z", "sequence": 1}
    )

    request_msg_id: MessageId
    due_at: Timestamp
    sequence: Annotated[int, Field(ge=1, le=100)]
    note: ShortText | None = None


@body
class TracingOverdue(Body):
    """Sent by the requesting node once the due date has passed without an answer."""

    KIND: ClassVar[str] = "tracing.overdue"
    model_config = examples(
        {
            "request_msg_id": _EXAMPLE_REQUEST_ID,
            "due_at": "2026-12-01T15:00:00Z",
            "case_id": "MEX-FGR-2026-1187",
        }
    )

    request_msg_id: MessageId
    due_at: Timestamp
    case_id: CaseId | None = None
    note: ShortText | None = None
