"""Article XIII.1 (a-e) and XIII.2: the information States Parties exchange with one another.

Intelligence bodies (concealment methods, routes, money-laundering techniques) carry the 4x4
evaluation of source and information; regulatory and legislative bodies do not.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AnyHttpUrl, Field, model_validator

from schemas.base import (
    Body,
    CountryCode,
    Evaluation,
    Language,
    LongText,
    Sha256Hex,
    ShortText,
    WireModel,
    examples,
)
from schemas.registry import body

_Tags = Annotated[list[ShortText], Field(max_length=20)]
_Countries = Annotated[list[CountryCode], Field(max_length=60)]


class Period(WireModel):
    """The period the information covers."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("period end precedes its start")
        return self


# --- XIII.1.a ---------------------------------------------------------------------------------


class PartyRole(StrEnum):
    PRODUCER = "producer"
    DEALER = "dealer"
    IMPORTER = "importer"
    EXPORTER = "exporter"
    CARRIER = "carrier"


class AuthorizedParty(WireModel):
    """A licensed producer, dealer, importer, exporter or carrier."""

    role: PartyRole
    name: ShortText
    country: CountryCode
    licence_number: ShortText | None = None
    licence_valid_until: dt.date | None = None
    address: ShortText | None = None


@body
class AuthorizedParties(Body):
    """XIII.1.a: authorized producers, dealers, importers, exporters and, if possible, carriers."""

    KIND: ClassVar[str] = "info.authorized_parties"
    model_config = examples(
        {
            "title": "Licensed firearms importers, 2026 update",
            "as_of": "2026-11-01",
            "parties": [
                {
                    "role": "importer",
                    "name": "Importadora del Bajío S.A. de C.V.",
                    "country": "MEX",
                    "licence_number": "SEDENA-DCAM-IMP-0412",
                    "licence_valid_until": "2027-12-31",
                    "address": "Av. Industrias 1450, León, Guanajuato",
                },
                {
                    "role": "carrier",
                    "name": "Transportes Seguros del Norte",
                    "country": "MEX",
                    "licence_number": "SEDENA-DCAM-TR-0078",
                },
            ],
        }
    )

    title: ShortText
    as_of: dt.date
    parties: Annotated[list[AuthorizedParty], Field(min_length=1, max_length=2000)]
    notes: LongText | None = None


# --- XIII.1.b ---------------------------------------------------------------------------------


class Conveyance(StrEnum):
    SEA_CONTAINER = "sea_container"
    ROAD_VEHICLE = "road_vehicle"
    AIR_CARGO = "air_cargo"
    POSTAL_PARCEL = "postal_parcel"
    EXPRESS_COURIER = "express_courier"
    PASSENGER_BAGGAGE = "passenger_baggage"
    ON_PERSON = "on_person"
    OTHER = "other"


class ConcealmentMethod(WireModel):
    conveyance: Conveyance
    description: LongText
    detection: LongText
    first_observed: dt.date | None = None


@body
class ConcealmentMethods(Body):
    """XIII.1.b: means of concealment used in illicit trafficking and ways of detecting them."""

    KIND: ClassVar[str] = "info.concealment_methods"
    model_config = examples(
        {
            "title": "Disassembled rifles in household appliance shipments",
            "evaluation": {"source": "B", "information": "2"},
            "methods": [
                {
                    "conveyance": "road_vehicle",
                    "description": "Upper receivers and barrels packed inside washing-machine "
                    "drums, declared as used appliances at northbound crossings.",
                    "detection": "Density anomalies on X-ray; drum weight above the model's "
                    "specification by 6-9 kg.",
                    "first_observed": "2026-03-14",
                }
            ],
            "countries_concerned": ["MEX", "USA"],
        }
    )

    title: ShortText
    evaluation: Evaluation
    methods: Annotated[list[ConcealmentMethod], Field(min_length=1, max_length=100)]
    countries_concerned: _Countries = []
    tags: _Tags = []


# --- XIII.1.c ---------------------------------------------------------------------------------


class TransportMode(StrEnum):
    ROAD = "road"
    RAIL = "rail"
    SEA = "sea"
    AIR = "air"
    POSTAL = "postal"
    RIVER = "river"
    ON_FOOT = "on_foot"


class RouteLeg(WireModel):
    origin: CountryCode
    destination: CountryCode
    mode: TransportMode
    via: ShortText | None = None


class Route(WireModel):
    legs: Annotated[list[RouteLeg], Field(min_length=1, max_length=30)]
    commodities: ShortText
    description: LongText | None = None

    @model_validator(mode="after")
    def _connected(self) -> Route:
        for a, b in zip(self.legs, self.legs[1:], strict=False):
            if a.destination != b.origin:
                raise ValueError(f"route legs not connected: {a.destination} -> {b.origin}")
        return self


@body
class TraffickingRoutes(Body):
    """XIII.1.c: routes customarily used by those who traffic illicitly in firearms."""

    KIND: ClassVar[str] = "info.trafficking_routes"
    model_config = examples(
        {
            "title": "Pacific corridor: ammunition and rifle parts to Colombian ports",
            "evaluation": {"source": "B", "information": "2"},
            "period": {"start": "2026-01-01", "end": "2026-10-31"},
            "routes": [
                {
                    "legs": [
                        {"origin": "USA", "destination": "MEX", "mode": "road", "via": "Nogales"},
                        {
                            "origin": "MEX",
                            "destination": "COL",
                            "mode": "sea",
                            "via": "Manzanillo to Buenaventura",
                        },
                    ],
                    "commodities": "5.56 mm ammunition; AR-pattern upper receivers",
                    "description": "Consolidated in bonded warehouses, re-declared as auto "
                    "parts before sea transit.",
                }
            ],
            "groups_involved": ["Organized group operating from Sinaloa (name withheld)"],
        }
    )

    title: ShortText
    evaluation: Evaluation
    period: Period | None = None
    routes: Annotated[list[Route], Field(min_length=1, max_length=50)]
    groups_involved: _Tags = []
    tags: _Tags = []


# --- XIII.1.d ---------------------------------------------------------------------------------


class InstrumentType(StrEnum):
    STATUTE = "statute"
    REGULATION = "regulation"
    ADMINISTRATIVE_PRACTICE = "administrative_practice"
    CASE_LAW = "case_law"


class Measure(WireModel):
    instrument: InstrumentType
    title: ShortText
    reference: ShortText
    adopted_on: dt.date | None = None
    summary: LongText
    url: AnyHttpUrl | None = None


@body
class LegislativeMeasures(Body):
    """XIII.1.d: legislative experiences, practices and measures to prevent and combat it."""

    KIND: ClassVar[str] = "info.legislative_measures"
    model_config = examples(
        {
            "title": "Marking at import: amendment to the federal firearms law",
            "measures": [
                {
                    "instrument": "statute",
                    "title": "Ley Federal de Armas de Fuego y Explosivos, reform of art. 55",
                    "reference": "DOF 2026-05-20",
                    "adopted_on": "2026-05-20",
                    "summary": "Importers must apply a marking naming the country and year of "
                    "import before the firearm leaves customs control (Art. VI.1.b).",
                }
            ],
            "experience": "Marking at the bonded warehouse cut unmarked imports found at "
            "seizure by two thirds within six months.",
            "language": "es",
        }
    )

    title: ShortText
    measures: Annotated[list[Measure], Field(min_length=1, max_length=100)]
    experience: LongText | None = None
    language: Language


# --- XIII.1.e ---------------------------------------------------------------------------------


class LaunderingTechnique(WireModel):
    description: LongText
    indicators: Annotated[list[ShortText], Field(min_length=1, max_length=30)]
    channels: Annotated[list[ShortText], Field(max_length=20)] = []


@body
class MoneyLaundering(Body):
    """XIII.1.e: techniques, practices and legislation against laundering of trafficking funds."""

    KIND: ClassVar[str] = "info.money_laundering"
    model_config = examples(
        {
            "title": "Trade-based laundering through auto-parts invoices",
            "evaluation": {"source": "C", "information": "3"},
            "techniques": [
                {
                    "description": "Payments for firearm shipments settled as over-invoiced "
                    "auto-part exports from the buyer's country.",
                    "indicators": [
                        "Unit prices 3-5x market for generic parts",
                        "Newly registered exporter with a single foreign buyer",
                    ],
                    "channels": ["correspondent banking", "money service businesses"],
                }
            ],
            "countries_concerned": ["MEX", "USA", "PAN"],
        }
    )

    title: ShortText
    evaluation: Evaluation
    techniques: Annotated[list[LaunderingTechnique], Field(min_length=1, max_length=50)]
    countries_concerned: _Countries = []


# --- XIII.2 -----------------------------------------------------------------------------------


class ResearchArea(StrEnum):
    DETECTION = "detection"
    MARKING = "marking"
    TRACING = "tracing"
    RECORD_KEEPING = "record_keeping"
    FORENSICS = "forensics"
    TRAINING = "training"
    OTHER = "other"


class DocumentRef(WireModel):
    title: ShortText
    language: Language
    sha256: Sha256Hex | None = None
    url: AnyHttpUrl | None = None


@body
class ScientificTechnological(Body):
    """XIII.2: scientific and technological information useful to law enforcement."""

    KIND: ClassVar[str] = "info.scientific_technological"
    model_config = examples(
        {
            "title": "Recovering obliterated serial numbers on polymer frames",
            "area": "forensics",
            "summary": "Validated protocol combining micro-CT and laser-induced fluorescence; "
            "recovery rate 71% on 120 test frames.",
            "documents": [
                {
                    "title": "Protocolo de recuperación de números seriales en armazones",
                    "language": "es",
                    "sha256": "9f2c4e5a8b7d6c1e0f3a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80",
                }
            ],
        }
    )

    title: ShortText
    area: ResearchArea
    summary: LongText
    documents: Annotated[list[DocumentRef], Field(max_length=20)] = []
