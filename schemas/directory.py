"""Article XIV.2: the directory of national points of contact, and the keys that speak for them.

An entry is the whole record of one party at one version: names in the four authentic languages,
the national entity acting as point of contact, contacts by role, and the node's public keys with
their validity. The secretariat signs every version with its root key (``SignedDirectoryEntry``);
versions only go up. A new state's node asks to join with a ``RegistrationRequest`` signed by the
signing key it registers (proof of possession).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.base import (
    Email,
    Language,
    PartyCode,
    Phone,
    ShortText,
    Timestamp,
    WireModel,
    examples,
)
from schemas.registry import record

_B64U = r"^[A-Za-z0-9_-]+$"
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


#: Base64url bytes (no padding), up to about 150 KB decoded.
B64Bytes = Annotated[str, StringConstraints(min_length=1, max_length=200_000, pattern=_B64U)]


class OfficialNames(WireModel):
    """The party's official name in Spanish, English, French and Portuguese."""

    es: ShortText
    en: ShortText
    fr: ShortText
    pt: ShortText


class ContactRole(StrEnum):
    CUSTOMS = "customs"
    LAW_ENFORCEMENT = "law_enforcement"
    LIAISON = "liaison"
    CENTRAL_AUTHORITY_MLA = "central_authority_mla"  # Art. XVII.2


class Contact(WireModel):
    role: ContactRole
    name: ShortText
    position: ShortText
    email: Email
    phone: Phone | None = None
    languages: Annotated[list[Language], Field(min_length=1, max_length=4)]


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"  # still opens and verifies during a rotation overlap
    REVOKED = "revoked"


class _KeyValidity(WireModel):
    kid: KeyId
    valid_from: Timestamp
    valid_until: Timestamp | None = None
    revoked_at: Timestamp | None = None
    status: KeyStatus = KeyStatus.ACTIVE

    @model_validator(mode="after")
    def _consistent(self) -> _KeyValidity:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must follow valid_from")
        if (self.status is KeyStatus.REVOKED) != (self.revoked_at is not None):
            raise ValueError("status revoked and revoked_at go together")
        return self


class SigningKeyRecord(_KeyValidity):
    ed25519: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
    mldsa65: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{2603}$")] | None = None


class EncryptionKeyRecord(_KeyValidity):
    alg: Literal["MLKEM768-X25519"]
    mlkem768: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1579}$")]
    x25519: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class NodeKeysRecord(WireModel):
    # Every key a party ever had stays listed (retired or revoked): stored messages are checked
    # again against them, and a revoked key must stay known as revoked.
    signing: Annotated[list[SigningKeyRecord], Field(min_length=1, max_length=64)]
    encryption: Annotated[list[EncryptionKeyRecord], Field(min_length=1, max_length=64)]


_EXAMPLE_CONTACTS = [
    {
        "role": "liaison",
        "name": "Mtra. Carmen Ruiz Olvera",
        "position": "Directora de Enlace Internacional",
        "email": "enlace.cifta@sre.example.mx",
        "phone": "+525536865100",
        "languages": ["es", "en"],
    }
]
_ED = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"


@record("directory.entry")
class DirectoryEntry(WireModel):
    """One party's directory record at one version."""

    model_config = examples(
        {
            "party": "MEX",
            "version": 3,
            "names": {
                "es": "Estados Unidos Mexicanos",
                "en": "United Mexican States",
                "fr": "États-Unis du Mexique",
                "pt": "Estados Unidos Mexicanos",
            },
            "point_of_contact": "Secretaría de Relaciones Exteriores, Dirección General para "
            "la ONU",
            "contacts": _EXAMPLE_CONTACTS,
            "keys": None,
            "updated_at": "2026-11-20T10:00:00Z",
        }
    )

    party: PartyCode
    version: Annotated[int, Field(ge=1)]
    names: OfficialNames
    point_of_contact: ShortText
    contacts: Annotated[list[Contact], Field(max_length=40)]
    keys: NodeKeysRecord | None = None
    updated_at: Timestamp


@record("directory.signed_entry")
class SignedDirectoryEntry(WireModel):
    """A directory entry as published: the entry's JSON bytes and the secretariat's signature."""

    model_config = examples(
        {
            "entry": "eyJwYXJ0eSI6Ik1FWCIsInZlcnNpb24iOjN9",
            "root_kid": "4f1c2a9e8b7d6c5f4e3d2c1b0a998877",
            "signature": "A" * 86,
        }
    )

    entry: B64Bytes
    root_kid: KeyId
    signature: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]


@record("directory.registration_request")
class RegistrationRequest(WireModel):
    """A new party asks to join: proposed entry, signed by the signing key it registers."""

    model_config = examples(
        {
            "party": "MEX",
            "names": {
                "es": "Estados Unidos Mexicanos",
                "en": "United Mexican States",
                "fr": "États-Unis du Mexique",
                "pt": "Estados Unidos Mexicanos",
            },
            "point_of_contact": "Secretaría de Relaciones Exteriores",
            "contacts": _EXAMPLE_CONTACTS,
            "signing_key": {"kid": "0" * 32, "valid_from": "2026-11-20T10:00:00Z", "ed25519": _ED},
            "requested_at": "2026-11-20T10:00:00Z",
        }
    )

    party: PartyCode
    names: OfficialNames
    point_of_contact: ShortText
    contacts: Annotated[list[Contact], Field(max_length=40)]
    signing_key: SigningKeyRecord
    encryption_key: EncryptionKeyRecord | None = None
    requested_at: Timestamp


@record("directory.rotation_request")
class RotationRequest(WireModel):
    """A party asks to replace its keys: signed by its current signing key (continuity) and by
    the new signing key, if there is one (possession)."""

    model_config = examples(
        {
            "party": "MEX",
            "base_version": 3,
            "encryption_key": None,
            "signing_key": {"kid": "0" * 32, "valid_from": "2026-11-20T10:00:00Z", "ed25519": _ED},
            "requested_at": "2026-11-20T10:00:00Z",
        }
    )

    party: PartyCode
    #: The entry version the rotation was asked against: a request applies once, to that version.
    base_version: Annotated[int, Field(ge=1)]
    signing_key: SigningKeyRecord | None = None
    encryption_key: EncryptionKeyRecord | None = None
    requested_at: Timestamp

    @model_validator(mode="after")
    def _something(self) -> RotationRequest:
        if self.signing_key is None and self.encryption_key is None:
            raise ValueError("a rotation names at least one new key")
        return self


class RequestSignature(WireModel):
    kid: KeyId
    sig: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]


@record("directory.signed_request")
class SignedRequest(WireModel):
    """A registration or rotation request as handed to the secretariat: its JSON bytes and the
    Ed25519 signatures over them."""

    model_config = examples(
        {
            "kind": "registration",
            "request": "eyJwYXJ0eSI6Ik1FWCJ9",
            "signatures": [{"kid": "0" * 32, "sig": "A" * 86}],
        }
    )

    kind: Literal["registration", "rotation"]
    request: B64Bytes
    signatures: Annotated[list[RequestSignature], Field(min_length=1, max_length=2)]
