"""The authoritative directory, kept by the secretariat, and its lifecycle.

Every change produces a new version of one party's entry, signed by the root key and stored as
``<directory home>/entries/<party>.json``; ``publish`` then puts it into every state's
``DIRECTORY`` bucket. Versions only go up. Nothing here decides who may join: an operator
approves each request after confirming its key ids with the state out of band.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from schemas.directory import (
    Contact,
    DirectoryEntry,
    KeyStatus,
    NodeKeysRecord,
    OfficialNames,
    RegistrationRequest,
    RotationRequest,
    SignedDirectoryEntry,
    SignedRequest,
)
from services.core import subjects
from services.core.directory import (
    DirectoryError,
    RootPublicKey,
    check_signature,
    open_request,
    sign_entry,
    verify_entry,
)
from services.core.keys import NodeKeys
from services.core.logs import get_logger

log = get_logger("cifta.directory")

DEFAULT_OVERLAP = timedelta(days=30)


def system_clock() -> datetime:
    return datetime.now(UTC)


class DirectoryService:
    """The secretariat's directory: signed entries on disk, one file per party."""

    def __init__(
        self,
        home: Path,
        root: ed25519.Ed25519PrivateKey,
        *,
        clock: Callable[[], datetime] = system_clock,
    ) -> None:
        self.home = home
        self.entries_dir = home / "entries"
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        self._root = root
        self.root = RootPublicKey(root.public_key())
        self.clock = clock

    @classmethod
    def open(
        cls, home: Path, root_key_file: Path, *, passphrase: bytes | None = None, **kw: Any
    ) -> DirectoryService:
        """The directory under ``home``, signing with the root key in ``root_key_file``."""
        if not root_key_file.exists():
            NodeKeys.generate("SEC").save(root_key_file, passphrase)
        root = NodeKeys.load(root_key_file, passphrase).signing.ed25519
        return cls(home, root, **kw)

    # -- reading ---------------------------------------------------------------------------------

    def signed(self, party: str) -> SignedDirectoryEntry | None:
        path = self.entries_dir / f"{party}.json"
        if not path.exists():
            return None
        return SignedDirectoryEntry.model_validate_json(path.read_bytes())

    def entry(self, party: str) -> DirectoryEntry | None:
        signed = self.signed(party)
        return None if signed is None else verify_entry(signed, self.root)

    def all_signed(self) -> list[SignedDirectoryEntry]:
        return [
            SignedDirectoryEntry.model_validate_json(p.read_bytes())
            for p in sorted(self.entries_dir.glob("*.json"))
        ]

    def entries(self) -> list[DirectoryEntry]:
        return [verify_entry(s, self.root) for s in self.all_signed()]

    # -- writing ---------------------------------------------------------------------------------

    def _store(self, entry: DirectoryEntry) -> SignedDirectoryEntry:
        held = self.entry(entry.party)
        if held is not None and entry.version <= held.version:
            raise DirectoryError(f"version {entry.version} of {entry.party} is not newer")
        signed = sign_entry(entry, self._root)
        path = self.entries_dir / f"{entry.party}.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(signed.model_dump_json())
        tmp.replace(path)
        log.info("directory_entry_signed", party=entry.party, version=entry.version)
        return signed

    def _next(self, party: str, **changes: Any) -> DirectoryEntry:
        held = self.entry(party)
        if held is None:
            raise DirectoryError(f"{party} is not in the directory")
        data = held.model_dump()
        data.update(changes, version=held.version + 1, updated_at=self.clock())
        return DirectoryEntry.model_validate(data)

    def register(self, signed: SignedRequest) -> DirectoryEntry:
        """Approve a registration: the first entry of a party, or a re-registration."""
        request, _ = open_request(signed)
        if not isinstance(request, RegistrationRequest):
            raise DirectoryError("not a registration request")
        if not check_signature(signed, request.party, request.signing_key):
            raise DirectoryError("the request is not signed by the key it registers")
        if request.encryption_key is None:
            raise DirectoryError("a registration names the node's encryption key")
        now = self.clock()
        keys = NodeKeysRecord(
            signing=[request.signing_key.model_copy(update={"valid_from": now})],
            encryption=[request.encryption_key.model_copy(update={"valid_from": now})],
        )
        held = self.entry(request.party)
        entry = DirectoryEntry(
            party=request.party,
            version=1 if held is None else held.version + 1,
            names=request.names,
            point_of_contact=request.point_of_contact,
            contacts=request.contacts,
            keys=keys,
            updated_at=now,
        )
        self._store(entry)
        return entry

    def rotate(self, signed: SignedRequest, overlap: timedelta = DEFAULT_OVERLAP) -> DirectoryEntry:
        """Approve a key rotation: new keys active now; the replaced ones retire after
        ``overlap`` (messages sealed to or signed with them still open until then)."""
        request, _ = open_request(signed)
        if not isinstance(request, RotationRequest):
            raise DirectoryError("not a rotation request")
        held = self.entry(request.party)
        if held is None or held.keys is None:
            raise DirectoryError(f"{request.party} is not in the directory")
        now = self.clock()
        current = [
            r for r in held.keys.signing if r.status is KeyStatus.ACTIVE and r.valid_from <= now
        ]
        if not any(check_signature(signed, request.party, r) for r in current):
            raise DirectoryError("the rotation is not signed by the party's current signing key")
        if request.signing_key is not None and not check_signature(
            signed, request.party, request.signing_key
        ):
            raise DirectoryError("the rotation is not signed by the new signing key")
        retire_at = now + overlap
        signing = list(held.keys.signing)
        encryption = list(held.keys.encryption)
        if request.signing_key is not None:
            signing = [_retire(r, retire_at) for r in signing]
            signing.append(request.signing_key.model_copy(update={"valid_from": now}))
        if request.encryption_key is not None:
            encryption = [_retire(r, retire_at) for r in encryption]
            encryption.append(request.encryption_key.model_copy(update={"valid_from": now}))
        entry = self._next(
            request.party,
            keys=NodeKeysRecord(signing=signing[-8:], encryption=encryption[-8:]).model_dump(),
        )
        self._store(entry)
        return entry

    def revoke(self, party: str, kid: str, at: datetime) -> DirectoryEntry:
        """Revoke one key from ``at`` on (which may be in the past: compromised since)."""
        held = self.entry(party)
        if held is None or held.keys is None:
            raise DirectoryError(f"{party} is not in the directory")
        found = False

        def revoked(records: Sequence[Any]) -> list[Any]:
            nonlocal found
            out = []
            for r in records:
                if r.kid == kid:
                    found = True
                    r = r.model_copy(update={"status": KeyStatus.REVOKED, "revoked_at": at})
                out.append(r)
            return out

        keys = NodeKeysRecord(
            signing=revoked(held.keys.signing), encryption=revoked(held.keys.encryption)
        )
        if not found:
            raise DirectoryError(f"{party} has no key {kid}")
        entry = self._next(party, keys=keys.model_dump())
        self._store(entry)
        return entry

    def update_contacts(self, party: str, details: dict[str, Any]) -> DirectoryEntry:
        """Replace the point of contact, names or contacts with ``details``."""
        allowed = {"names", "point_of_contact", "contacts"}
        if not details or set(details) - allowed:
            raise DirectoryError(f"details may hold {', '.join(sorted(allowed))}")
        try:
            changes = {
                "names": OfficialNames.model_validate(details["names"]).model_dump()
                if "names" in details
                else None,
                "contacts": [Contact.model_validate(c).model_dump() for c in details["contacts"]]
                if "contacts" in details
                else None,
                "point_of_contact": details.get("point_of_contact"),
            }
            entry = self._next(party, **{k: v for k, v in changes.items() if v is not None})
        except ValidationError as exc:
            raise DirectoryError(f"invalid details: {exc.errors()[0]['msg']}") from None
        self._store(entry)
        return entry

    # -- publishing ------------------------------------------------------------------------------

    async def publish(
        self,
        url: str,
        seed: Path,
        states: Iterable[str],
        parties: Iterable[str] | None = None,
        tls_ca: Path | None = None,
    ) -> int:
        """Put the signed entries of ``parties`` (all by default) into each state's bucket."""
        import ssl

        wanted = None if parties is None else set(parties)
        signed = [
            s
            for s in self.all_signed()
            if wanted is None or verify_entry(s, self.root).party in wanted
        ]
        tls = None
        if tls_ca is not None or url.startswith("tls://"):
            tls = ssl.create_default_context(cafile=str(tls_ca) if tls_ca else None)
        nc = await nats.connect(
            url, nkeys_seed=str(seed), name="cifta-directory", allow_reconnect=False, tls=tls
        )
        count = 0
        try:
            js = nc.jetstream()
            for state in states:
                for s in signed:
                    party = verify_entry(s, self.root).party
                    subject = subjects.directory_publish_subject(state, party)
                    await js.publish(subject, s.model_dump_json().encode())
                    count += 1
        finally:
            await nc.close()
        log.info("directory_published", entries=len(signed), puts=count)
        return count


def _retire(record: Any, at: datetime) -> Any:
    """A replaced key: still valid until ``at`` (the overlap), no longer the one to use."""
    if record.status is not KeyStatus.ACTIVE:
        return record
    until = at if record.valid_until is None else min(record.valid_until, at)
    return record.model_copy(update={"status": KeyStatus.RETIRING, "valid_until": until})


def details_of(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise DirectoryError(f"{path} does not hold an object")
    return data
