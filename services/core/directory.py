"""The directory of national points of contact as a node trusts it: which keys speak for which
party, signed by the secretariat's root key (design section 6, directory).

- ``sign_entry`` / ``verify_entry``: an entry's JSON bytes signed with Ed25519 by the root key,
  domain-separated. A node pins the root public key from its onboarding bundle.
- ``Directory``: the verified entries as the envelope's ``KeyLookup`` (sender key valid at
  ``created_at``, not revoked) and as the source of each recipient's current encryption key.
- ``DirectoryTrust``: accepts an update only if its signature verifies, it names the party it is
  filed under, and its version is newer than the one already held; keeps the verified entries in
  a cache file so that a node restarts without the hub.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from schemas.directory import (
    DirectoryEntry,
    EncryptionKeyRecord,
    KeyStatus,
    RegistrationRequest,
    RequestSignature,
    RotationRequest,
    SignedDirectoryEntry,
    SignedRequest,
    SigningKeyRecord,
)
from services.core.encoding import b64u, unb64u
from services.core.envelope import SenderKeyRecord
from services.core.files import write_atomic
from services.core.keys import (
    KEM_ALG,
    EncryptionPublicKey,
    NodeKeys,
    SigningKey,
    SigningPublicKey,
    key_id,
)

ENTRY_DOMAIN = b"CIFTA-Exchange directory entry v1\x00"
CACHE_FORMAT = "cifta-directory-cache-v1"
ROOT_FORMAT = "cifta-directory-root-v1"


class DirectoryError(Exception):
    """The directory has no usable key for a party, or an entry or file could not be trusted."""


# -- the root key -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RootPublicKey:
    """The secretariat's directory root key, as every node pins it."""

    key: ed25519.Ed25519PublicKey

    @property
    def kid(self) -> str:
        return key_id("root", self.key.public_bytes_raw())

    def to_json(self) -> dict[str, str]:
        return {
            "format": ROOT_FORMAT,
            "kid": self.kid,
            "ed25519": b64u(self.key.public_bytes_raw()),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RootPublicKey:
        if data.get("format") != ROOT_FORMAT:
            raise DirectoryError("not a directory root key file")
        root = cls(ed25519.Ed25519PublicKey.from_public_bytes(unb64u(str(data["ed25519"]))))
        if data.get("kid") != root.kid:
            raise DirectoryError("the root key file's kid does not match its key")
        return root

    @classmethod
    def load(cls, path: Path) -> RootPublicKey:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise DirectoryError(f"cannot read the pinned root key {path}: {exc}") from exc

    def save(self, path: Path) -> None:
        write_atomic(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())


def sign_entry(entry: DirectoryEntry, root: ed25519.Ed25519PrivateKey) -> SignedDirectoryEntry:
    """The entry as published: its JSON bytes and the root key's signature over them."""
    data = entry.model_dump_json(exclude_none=True).encode()
    public = RootPublicKey(root.public_key())
    return SignedDirectoryEntry(
        entry=b64u(data), root_kid=public.kid, signature=b64u(root.sign(ENTRY_DOMAIN + data))
    )


class SignatureError(DirectoryError):
    """An entry the pinned root key did not sign."""


def verify_entry(signed: SignedDirectoryEntry, root: RootPublicKey) -> DirectoryEntry:
    """The entry, if the pinned root key signed it; DirectoryError otherwise."""
    if signed.root_kid != root.kid:
        raise SignatureError(f"signed by another root key ({signed.root_kid})")
    data = unb64u(signed.entry)
    try:
        root.key.verify(unb64u(signed.signature), ENTRY_DOMAIN + data)
    except (InvalidSignature, ValueError):
        raise SignatureError("the root signature does not verify") from None
    try:
        return DirectoryEntry.model_validate_json(data)
    except ValidationError as exc:
        raise DirectoryError(f"a signed entry that does not validate: {exc.errors()[0]}") from None


# -- key records <-> key objects ----------------------------------------------------------------


def signing_record(key: SigningPublicKey, valid_from: datetime) -> SigningKeyRecord:
    pub = key.to_json()
    return SigningKeyRecord(
        kid=key.kid, valid_from=valid_from, ed25519=pub["ed25519"], mldsa65=pub.get("mldsa65")
    )


def encryption_record(key: EncryptionPublicKey, valid_from: datetime) -> EncryptionKeyRecord:
    pub = key.to_json()
    return EncryptionKeyRecord(
        kid=key.kid,
        valid_from=valid_from,
        alg=KEM_ALG,
        mlkem768=pub["mlkem768"],
        x25519=pub["x25519"],
    )


def _signing_key(party: str, r: SigningKeyRecord) -> SigningPublicKey:
    data = {"party": party, "kid": r.kid, "ed25519": r.ed25519}
    if r.mldsa65 is not None:
        data["mldsa65"] = r.mldsa65
    return SigningPublicKey.from_json(data)  # refuses a kid that does not match the key


def check_key_records(
    party: str, signing: Iterable[SigningKeyRecord], encryption: Iterable[EncryptionKeyRecord]
) -> None:
    """ValueError if a record's key does not parse or its kid does not match the key."""
    for s in signing:
        _signing_key(party, s)
    for e in encryption:
        _encryption_key(party, e)


def _encryption_key(party: str, r: EncryptionKeyRecord) -> EncryptionPublicKey:
    return EncryptionPublicKey.from_json(
        {"party": party, "kid": r.kid, "alg": r.alg, "mlkem768": r.mlkem768, "x25519": r.x25519}
    )


def usable_at(r: SigningKeyRecord | EncryptionKeyRecord, at: datetime) -> bool:
    if r.status is KeyStatus.REVOKED and r.revoked_at is not None and at >= r.revoked_at:
        return False
    return r.valid_from <= at and (r.valid_until is None or at < r.valid_until)


# -- the directory a node uses ------------------------------------------------------------------


@dataclass(frozen=True)
class Directory:
    """Every party's verified entry; the envelope's ``KeyLookup``."""

    entries: Mapping[str, DirectoryEntry]
    _signing: dict[tuple[str, str], SenderKeyRecord] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    _encryption: dict[tuple[str, str], EncryptionPublicKey] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Parse every key once; ValueError if one does not match its kid."""
        for party, entry in self.entries.items():
            for r in entry.keys.signing if entry.keys else []:
                self._signing[(party, r.kid)] = SenderKeyRecord(
                    key=_signing_key(party, r),
                    valid_from=r.valid_from,
                    valid_until=r.valid_until,
                    revoked_at=r.revoked_at,
                )
            for e in entry.keys.encryption if entry.keys else []:
                self._encryption[(party, e.kid)] = _encryption_key(party, e)

    def parties(self) -> list[str]:
        return sorted(self.entries)

    def signing_key(self, party: str, kid: str) -> SenderKeyRecord | None:
        return self._signing.get((party, kid))

    def encryption_key(self, party: str, at: datetime | None = None) -> EncryptionPublicKey:
        """The key to seal to ``party`` now: its newest encryption key usable at ``at``."""
        entry = self.entries.get(party)
        if entry is None or entry.keys is None:
            raise DirectoryError(f"{party} is not in the directory")
        kid = _newest_active(entry.keys.encryption, at)
        if kid is None:
            now = at or datetime.now(UTC)
            later = [
                r.valid_from
                for r in entry.keys.encryption
                if r.status is KeyStatus.ACTIVE and r.valid_from > now
            ]
            if later:  # the key exists: this machine's clock says it is not valid yet
                raise DirectoryError(
                    f"{party}'s encryption key is valid from {min(later).isoformat()}, and this "
                    f"machine's clock reads {now.isoformat(timespec='seconds')}: check the clock"
                )
            raise DirectoryError(f"{party} has no active encryption key")
        return self._encryption[(party, kid)]

    def lists_as_active(self, party: str, kid: str) -> bool:
        """Whether ``party``'s entry lists signing key ``kid`` with status active (whatever its
        ``valid_from`` says of this machine's clock)."""
        entry = self.entries.get(party)
        if entry is None or entry.keys is None:
            return False
        return any(r.kid == kid and r.status is KeyStatus.ACTIVE for r in entry.keys.signing)

    def active_signing_kid(self, party: str, at: datetime | None = None) -> str | None:
        entry = self.entries.get(party)
        if entry is None or entry.keys is None:
            return None
        return _newest_active(entry.keys.signing, at)


def _newest_active(
    records: Iterable[SigningKeyRecord | EncryptionKeyRecord], at: datetime | None
) -> str | None:
    """The kid of the newest active record usable at ``at`` (now by default)."""
    at = at or datetime.now(UTC)
    usable = [r for r in records if r.status is KeyStatus.ACTIVE and usable_at(r, at)]
    return max(usable, key=lambda r: r.valid_from).kid if usable else None


# -- trusting updates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An update the node refused: the alert it raises."""

    party: str
    reason: str  # bad_signature, wrong_party, older_version, malformed


class DirectoryTrust:
    """The node's verified directory: pinned root, newest version per party, a cache on disk."""

    def __init__(self, root: RootPublicKey, cache: Path | None = None) -> None:
        self.root = root
        self.cache = cache
        self._signed: dict[str, SignedDirectoryEntry] = {}
        self._entries: dict[str, DirectoryEntry] = {}
        self._directory = Directory({})
        if cache is not None and cache.exists():
            self._load_cache(cache)

    def _load_cache(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != CACHE_FORMAT:
                raise DirectoryError(f"{path.name} is not a directory cache")
            items = [SignedDirectoryEntry.model_validate(s) for s in data["entries"]]
        except (OSError, ValueError, KeyError, ValidationError) as exc:
            raise DirectoryError(f"cannot read the directory cache {path}: {exc}") from exc
        for signed in items:  # verified again: the cache is a file anyone with access could edit
            self._take(signed, verify_entry(signed, self.root))
        self._directory = Directory(dict(self._entries))

    def _take(self, signed: SignedDirectoryEntry, entry: DirectoryEntry) -> bool:
        """Hold ``entry`` if it is newer than what is held for its party."""
        if entry.version <= self.version_of(entry.party):
            return False
        self._signed[entry.party] = signed
        self._entries[entry.party] = entry
        return True

    def directory(self) -> Directory:
        """Every verified entry, its keys parsed (built once per accepted change)."""
        return self._directory

    def version_of(self, party: str) -> int:
        entry = self._entries.get(party)
        return 0 if entry is None else entry.version

    def accept(self, key: str, value: bytes) -> DirectoryEntry | Refusal | None:
        """Consider one published value for ``key`` (a party code).

        Returns the entry if it is new and trusted, None if it is the version already held, or a
        Refusal (an alert) if it is forged, misfiled, malformed or older than what is held.
        """
        try:
            signed = SignedDirectoryEntry.model_validate_json(value)
            entry = verify_entry(signed, self.root)
        except SignatureError:
            return Refusal(key, "bad_signature")
        except (ValidationError, DirectoryError, ValueError):
            return Refusal(key, "malformed")
        if entry.party != key:
            return Refusal(key, "wrong_party")
        held = self._entries.get(key)
        if held is not None:
            if entry.version == held.version and signed == self._signed[key]:
                return None
            if entry.version <= held.version:
                return Refusal(key, "older_version")
        try:  # every key in it must parse and match its kid before anything is kept
            self._directory = Directory({**self._entries, key: entry})
        except (ValueError, DirectoryError):
            return Refusal(key, "malformed")
        self._take(signed, entry)
        self._save()
        return entry

    def _save(self) -> None:
        if self.cache is None:
            return
        signed = [self._signed[p] for p in sorted(self._signed)]
        write_atomic(self.cache, cache_document(signed, self.root).encode())

    def seed(self, signed_entries: Iterable[SignedDirectoryEntry]) -> None:
        """Accept entries handed over out of band (an onboarding bundle), verified like any."""
        for signed in signed_entries:
            self._take(signed, verify_entry(signed, self.root))
        self._directory = Directory(dict(self._entries))
        self._save()


# -- registration and rotation requests ---------------------------------------------------------

REQUEST_DOMAIN = b"CIFTA-Exchange directory request v1\x00"


def _request_input(kind: str, data: bytes) -> bytes:
    """What a request's signatures cover: the domain, the kind, then the request bytes."""
    return REQUEST_DOMAIN + kind.encode() + b"\x00" + data


def sign_request(
    kind: str, request: RegistrationRequest | RotationRequest, signers: Iterable[SigningKey]
) -> SignedRequest:
    """A request as handed to the secretariat, signed by each of ``signers`` (Ed25519)."""
    data = request.model_dump_json(exclude_none=True).encode()
    signatures = [
        RequestSignature(kid=s.public().kid, sig=b64u(s.ed25519.sign(_request_input(kind, data))))
        for s in signers
    ]
    return SignedRequest(kind=kind, request=b64u(data), signatures=signatures)


def open_request(signed: SignedRequest) -> RegistrationRequest | RotationRequest:
    """The request, parsed; its signatures are checked by the directory (``check_signature``):
    a registration by the signing key it registers (proof of possession), a rotation by the
    party's current key and, when a new signing key is named, by that one too."""
    data = unb64u(signed.request)
    try:
        request: RegistrationRequest | RotationRequest = (
            RegistrationRequest.model_validate_json(data)
            if signed.kind == "registration"
            else RotationRequest.model_validate_json(data)
        )
    except ValidationError as exc:
        raise DirectoryError(f"the request does not validate: {exc.errors()[0]['msg']}") from None
    return request


def check_signature(signed: SignedRequest, party: str, record: SigningKeyRecord) -> bool:
    """Whether ``record``'s key (of ``party``) signed ``signed``."""
    sig = next((s for s in signed.signatures if s.kid == record.kid), None)
    if sig is None:
        return False
    key = _signing_key(party, record)
    try:
        key.ed25519.verify(unb64u(sig.sig), _request_input(signed.kind, unb64u(signed.request)))
    except (InvalidSignature, ValueError):
        return False
    return True


def registration_request(
    keys: NodeKeys, details: Mapping[str, Any], now: datetime
) -> SignedRequest:
    """A node's request to join: its details and keys, signed by the signing key it registers."""
    request = RegistrationRequest.model_validate(
        {
            **details,
            "party": keys.party,
            "signing_key": signing_record(keys.signing.public(), now).model_dump(),
            "encryption_key": encryption_record(keys.current_encryption.public(), now).model_dump(),
            "requested_at": now,
        }
    )
    return sign_request("registration", request, [keys.signing])


def rotation_request(
    keys: NodeKeys, now: datetime, *, new_encryption: bool, base_version: int
) -> SignedRequest:
    """A node's request to replace its keys: the new encryption key (the current one in
    ``keys``, when ``new_encryption``) and the pending signing key, if any; signed by the
    current signing key and by the new one."""
    signers = [keys.signing]
    new_signing = None
    if keys.pending_signing is not None:
        new_signing = signing_record(keys.pending_signing.public(), now)
        signers.append(keys.pending_signing)
    request = RotationRequest(
        party=keys.party,
        base_version=base_version,
        signing_key=new_signing,
        encryption_key=encryption_record(keys.current_encryption.public(), now)
        if new_encryption
        else None,
        requested_at=now,
    )
    return sign_request("rotation", request, signers)


def cache_document(signed: Iterable[SignedDirectoryEntry], root: RootPublicKey) -> str:
    """A directory cache file holding ``signed`` (an onboarding bundle's starting directory)."""
    data = {
        "format": CACHE_FORMAT,
        "root_kid": root.kid,
        "entries": [s.model_dump() for s in signed],
    }
    return json.dumps(data, indent=1) + "\n"
