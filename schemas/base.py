"""Building blocks shared by every message family: strict base model, state codes, times, codes.

Every wire model derives from :class:`WireModel`: frozen, unknown fields rejected, strings and lists
bounded where they are declared. Bodies (what travels encrypted inside an envelope) derive from
:class:`Body` and carry a ``kind`` and a ``schema_version``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.fields import FieldInfo

from schemas.attachment import Attachments
from schemas.countries import ISO_3166_1_ALPHA3

SCHEMA_VERSION = 1

#: The Technical Secretariat (OAS General Secretariat) is a party on the network with this code.
SECRETARIAT = "SEC"

_ISO_ALPHA3 = ISO_3166_1_ALPHA3


def _check_iso_alpha3(code: str) -> str:
    if code not in _ISO_ALPHA3:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-3 country code")
    return code


def _check_party(code: str) -> str:
    if code == SECRETARIAT:
        return code
    return _check_iso_alpha3(code)


_Alpha3 = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]

#: The ISO 3166-1 alpha-3 codes (schemas/countries.py), in order; published in the schemas.
COUNTRY_CODES: tuple[str, ...] = tuple(sorted(_ISO_ALPHA3))
#: Every valid party code: a country, or the secretariat.
PARTY_CODES: tuple[str, ...] = tuple(sorted((*_ISO_ALPHA3, SECRETARIAT)))

#: A country by its ISO 3166-1 alpha-3 code (``MEX``, ``USA``, ``COL``).
CountryCode = Annotated[
    _Alpha3,
    AfterValidator(_check_iso_alpha3),
    WithJsonSchema({"type": "string", "enum": list(COUNTRY_CODES)}),
]
#: A party on the network: a State by its ISO 3166-1 alpha-3 code, or ``SEC`` for the secretariat.
PartyCode = Annotated[
    _Alpha3,
    AfterValidator(_check_party),
    WithJsonSchema({"type": "string", "enum": list(PARTY_CODES)}),
]

#: The RFC 3339 section 5.6 profile bodies and records use: "T" and "Z" in capitals, seconds
#: always, at most six fraction digits (microseconds, so every receiver compares the same
#: instants), "Z" or a numeric offset. A leap second (:60) is not a valid time.
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise ValueError(
            "a timestamp carries its timezone: YYYY-MM-DDTHH:MM:SS[.ffffff]Z or +HH:MM"
        )
    return datetime.fromisoformat(value)  # ValueError for a day, time or offset out of range


#: A timezone-aware instant in the profile above; naive datetimes and numbers are rejected.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]

#: Short free text (names, titles, identifiers).
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
#: Longer free text (descriptions, circumstances, narratives).
LongText = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
#: An opaque case reference chosen by the originating agency.
CaseId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")
]
#: A message identifier (UUIDv7, canonical textual form).
MessageId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    ),
]


class HandlingCode(StrEnum):
    """Handling codes carried in every envelope's clear header (the European exchange codes)."""

    H0 = "H0"  # usable only to prevent and combat the offences the Convention covers
    H1 = "H1"  # not to be disclosed in judicial proceedings without the provider's permission
    H2 = "H2"  # not to be disseminated further without the provider's permission
    H3 = "H3"  # other restrictions, stated in the header


class SourceReliability(StrEnum):
    """Evaluation of the source (4x4 grading): A reliable ... X cannot be judged."""

    A = "A"
    B = "B"
    C = "C"
    X = "X"


class InformationAccuracy(StrEnum):
    """Evaluation of the information: 1 known true ... 4 unverified."""

    KNOWN = "1"
    KNOWN_TO_SOURCE = "2"
    HEARSAY = "3"
    UNVERIFIED = "4"


class WireModel(BaseModel):
    """Base of every contract model: frozen, strict about unknown fields."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_max_length=20_000,
        use_enum_values=False,
        validate_default=True,
    )


class Evaluation(WireModel):
    """Source and information grading carried by intelligence bodies."""

    source: SourceReliability
    information: InformationAccuracy


class Body(WireModel):
    """A message body: what is sealed inside an envelope. Subclasses set ``KIND``.

    The body carries its ``kind`` too (a constant per model, written on output, checked on
    input), so a body is self-describing and one sealed under another kind's header fails its
    schema.
    """

    KIND: ClassVar[str] = ""
    kind: str = ""
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=1)
    #: Files sent with the message (docs/envelope.md section 13): inside the encrypted body, so
    #: the signature covers them and the hub learns nothing of them. Omitted when there are none,
    #: so a body without attachments is written exactly as before they existed.
    attachments: Attachments = Field(
        default_factory=list, exclude_if=lambda v: not v, json_schema_extra={"default": []}
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.KIND:
            cls.__pydantic_fields__["kind"] = FieldInfo(
                annotation=cast(Any, Literal)[cls.KIND],
                default=cls.KIND,
            )
            cls.model_rebuild(force=True)


def examples(*items: dict[str, Any]) -> ConfigDict:
    """Model config carrying realistic examples (they go into the generated JSON Schema)."""
    return ConfigDict(json_schema_extra={"examples": cast(Any, list(items))})


#: A SHA-256 digest, lowercase hex.
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
#: An e-mail address (deliberately simple: the directory checks reachability, not syntax lore).
Email = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
]
#: A telephone number in E.164 form.
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
#: A positive count of items.
Quantity = Annotated[int, Field(gt=0, le=10_000_000)]


class Language(StrEnum):
    """The four authentic languages of the Convention."""

    ES = "es"
    EN = "en"
    FR = "fr"
    PT = "pt"


class Officer(WireModel):
    """A named official acting for a party: who asks, who answers, whom to call."""

    name: ShortText
    position: ShortText
    agency: ShortText
    email: Email | None = None
    phone: Phone | None = None


class ItemCategory(StrEnum):
    """The Convention's objects (Art. I): firearms, ammunition, explosives, related materials."""

    FIREARM = "firearm"
    AMMUNITION = "ammunition"
    EXPLOSIVE = "explosive"
    PARTS_AND_COMPONENTS = "parts_and_components"
    OTHER_RELATED_MATERIAL = "other_related_material"


class Item(WireModel):
    """One line of a consignment: what it is and how many."""

    line: Annotated[int, Field(ge=1, le=10_000)]
    category: ItemCategory
    description: ShortText
    quantity: Quantity
    model: ShortText | None = None
    calibre: ShortText | None = None


def unique_lines(items: list[Item]) -> list[Item]:
    """Reject item lists whose line numbers repeat."""
    lines = [i.line for i in items]
    if len(set(lines)) != len(lines):
        raise ValueError("item line numbers must be unique")
    return items


#: What the published schemas say of an item list beyond JSON Schema's vocabulary (which can make
#: whole items unique, not one member of them); docs/envelope.md section 10 makes it normative.
UNIQUE_LINES: dict[str, Any] = {
    "description": "Consignment lines; no two items share a line number.",
    "x-cifta-unique-member": "line",
}
#: A bounded list of consignment lines with unique line numbers.
Items = Annotated[
    list[Item],
    Field(min_length=1, max_length=500, json_schema_extra=UNIQUE_LINES),
    AfterValidator(unique_lines),
]
#: The same, possibly empty.
MaybeItems = Annotated[
    list[Item], Field(max_length=500, json_schema_extra=UNIQUE_LINES), AfterValidator(unique_lines)
]
