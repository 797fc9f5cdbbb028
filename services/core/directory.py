"""The directory as a node uses it: which keys speak for which party.

Until the directory service lands this is a file the secretariat writes (``cifta hub enrol``) and
hands to every node; the node loads it and answers the envelope's sender-key checks from it, and
finds each recipient's current encryption key in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.core.envelope import SenderKeyRecord
from services.core.keys import EncryptionPublicKey, SigningPublicKey

DIRECTORY_FORMAT = "cifta-directory-v1"
_SINCE_ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)


class DirectoryError(Exception):
    """The directory has no usable key for a party, or its file is damaged."""


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class DirectoryEntry:
    """One party's published keys: its signing key records and its encryption keys, newest first."""

    party: str
    signing: tuple[SenderKeyRecord, ...]
    encryption: tuple[EncryptionPublicKey, ...]

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> DirectoryEntry:
        """From ``NodeKeys.public_bundle()``, optionally with ``valid_from`` and ``revoked_at``."""
        party = str(bundle["party"])
        sig = SigningPublicKey.from_json(bundle["signing"])
        enc = tuple(EncryptionPublicKey.from_json(e) for e in bundle["encryption"])
        if sig.party != party or any(e.party != party for e in enc) or not enc:
            raise DirectoryError(f"bundle of {party} names keys of another party, or none")
        record = SenderKeyRecord(
            key=sig,
            valid_from=_time(bundle.get("valid_from")) or _SINCE_ALWAYS,
            valid_until=_time(bundle.get("valid_until")),
            revoked_at=_time(bundle.get("revoked_at")),
        )
        return cls(party, (record,), enc)

    def to_json(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "party": self.party,
            "signing": [
                {
                    **r.key.to_json(),
                    "valid_from": iso(r.valid_from),
                    "valid_until": iso(r.valid_until),
                    "revoked_at": iso(r.revoked_at),
                }
                for r in self.signing
            ],
            "encryption": [k.to_json() for k in self.encryption],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DirectoryEntry:
        signing = tuple(
            SenderKeyRecord(
                key=SigningPublicKey.from_json(r),
                valid_from=_time(r["valid_from"]) or _SINCE_ALWAYS,
                valid_until=_time(r.get("valid_until")),
                revoked_at=_time(r.get("revoked_at")),
            )
            for r in data["signing"]
        )
        encryption = tuple(EncryptionPublicKey.from_json(e) for e in data["encryption"])
        return cls(str(data["party"]), signing, encryption)


@dataclass(frozen=True)
class Directory:
    """Every party's keys; implements the envelope's ``KeyLookup``."""

    version: int
    entries: Mapping[str, DirectoryEntry]

    @classmethod
    def from_bundles(cls, bundles: Iterable[Mapping[str, Any]], *, version: int) -> Directory:
        entries = {e.party: e for e in map(DirectoryEntry.from_bundle, bundles)}
        return cls(version, entries)

    def parties(self) -> list[str]:
        return sorted(self.entries)

    def signing_key(self, party: str, kid: str) -> SenderKeyRecord | None:
        entry = self.entries.get(party)
        if entry is None:
            return None
        return next((r for r in entry.signing if r.key.kid == kid), None)

    def encryption_key(self, party: str) -> EncryptionPublicKey:
        """The key to seal to ``party`` with now: its newest published encryption key."""
        entry = self.entries.get(party)
        if entry is None:
            raise DirectoryError(f"{party} is not in the directory")
        return entry.encryption[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": DIRECTORY_FORMAT,
            "version": self.version,
            "entries": [self.entries[p].to_json() for p in self.parties()],
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Directory:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != DIRECTORY_FORMAT:
                raise DirectoryError(f"{path.name}: not a {DIRECTORY_FORMAT} file")
            entries = {e.party: e for e in map(DirectoryEntry.from_json, data["entries"])}
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise DirectoryError(f"cannot read the directory {path}: {exc}") from exc
        return cls(int(data["version"]), entries)
