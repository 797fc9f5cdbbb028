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

from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from schemas.base import SECRETARIAT
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
from services.core.connection import connect
from services.core.directory import (
    DirectoryError,
    RootPublicKey,
    check_key_records,
    check_signature,
    open_request,
    sign_entry,
    verify_entry,
)
from services.core.files import write_atomic
from services.core.keys import KeyFileError, NodeKeys
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
        """The directory under ``home``, signing with the root key in ``root_key_file``.

        The root key is never made here: a missing file is an error, not a reason to mint a root
        no node pins (``cifta hub init`` creates it once).
        """
        if not root_key_file.exists():
            raise DirectoryError(f"no directory root key at {root_key_file}")
        try:
            root = NodeKeys.load(root_key_file, passphrase).signing.ed25519
        except KeyFileError as exc:
            raise DirectoryError(f"directory root key {root_key_file.name}: {exc}") from None
        return cls(home, root, **kw)

    @staticmethod
    def create_root_key(root_key_file: Path, *, passphrase: bytes | None = None) -> None:
        """Make the directory's root key, once (``cifta hub init``)."""
        if root_key_file.exists():
            raise DirectoryError(f"{root_key_file} exists: a root key is made once")
        NodeKeys.generate(SECRETARIAT).save(root_key_file, passphrase)

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

    def history(self, party: str) -> list[DirectoryEntry]:
        """Every version of ``party``'s entry signed here, oldest first, each verified (the
        current one even when it was signed before versions were kept)."""
        versions = {
            e.version: e
            for e in (
                verify_entry(SignedDirectoryEntry.model_validate_json(p.read_bytes()), self.root)
                for p in sorted((self.home / "history" / party).glob("*.json"))
            )
        }
        current = self.entry(party)
        if current is not None:
            versions.setdefault(current.version, current)
        return [versions[v] for v in sorted(versions)]

    # -- writing ---------------------------------------------------------------------------------

    def _store(self, entry: DirectoryEntry) -> SignedDirectoryEntry:
        held = self.entry(entry.party)
        if held is not None and entry.version <= held.version:
            raise DirectoryError(f"version {entry.version} of {entry.party} is not newer")
        signed = sign_entry(entry, self._root)
        # every version is kept, signed, for the entry's history (issue 15: the secretariat
        # reviews how an entry came to be what it is)
        history = self.home / "history" / entry.party
        history.mkdir(parents=True, exist_ok=True)
        write_atomic(history / f"{entry.version:08d}.json", signed.model_dump_json().encode())
        write_atomic(self.entries_dir / f"{entry.party}.json", signed.model_dump_json().encode())
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
        """Approve a registration: a party's first entry, or a new start after every signing key
        it had was revoked (its history is kept). Anything else is a rotation, which the current
        key must sign."""
        request = open_request(signed)
        if not isinstance(request, RegistrationRequest):
            raise DirectoryError("not a registration request")
        if request.party == SECRETARIAT:
            raise DirectoryError("the secretariat is not a State Party to register")
        if not check_signature(signed, request.party, request.signing_key):
            raise DirectoryError("the request is not signed by the key it registers")
        if request.encryption_key is None:
            raise DirectoryError("a registration names the node's encryption key")
        now = self.clock()
        new_signing = request.signing_key.model_copy(update={"valid_from": now})
        new_encryption = request.encryption_key.model_copy(update={"valid_from": now})
        _check_keys(request.party, [new_signing], [new_encryption])
        held = self.entry(request.party)
        signing, encryption = [new_signing], [new_encryption]
        if held is not None and held.keys is not None:
            if any(r.status is not KeyStatus.REVOKED for r in held.keys.signing):
                raise DirectoryError(
                    f"{request.party} is registered: new keys come by rotation, signed by its "
                    "current key (or revoke that key first)"
                )
            _refuse_known_kids(held, [new_signing.kid, new_encryption.kid])
            signing = [*held.keys.signing, new_signing]
            encryption = [*[_retire(r, now) for r in held.keys.encryption], new_encryption]
        entry = DirectoryEntry(
            party=request.party,
            version=1 if held is None else held.version + 1,
            names=request.names,
            point_of_contact=request.point_of_contact,
            contacts=request.contacts,
            keys=NodeKeysRecord(signing=signing, encryption=encryption),
            updated_at=now,
        )
        self._store(entry)
        return entry

    def rotate(self, signed: SignedRequest, overlap: timedelta = DEFAULT_OVERLAP) -> DirectoryEntry:
        """Approve a key rotation: new keys active now; the replaced ones retire after
        ``overlap`` (messages sealed to or signed with them still open until then)."""
        request = open_request(signed)
        if not isinstance(request, RotationRequest):
            raise DirectoryError("not a rotation request")
        held = self.entry(request.party)
        if held is None or held.keys is None:
            raise DirectoryError(f"{request.party} is not in the directory")
        if request.base_version != held.version:
            # A request applies once, to the version it was made against: a replayed or stale
            # rotation cannot bring back keys that were replaced or revoked since.
            raise DirectoryError(
                f"the rotation was asked against version {request.base_version}, "
                f"the entry is at {held.version}"
            )
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
        new_kids = [r.kid for r in (request.signing_key, request.encryption_key) if r is not None]
        _refuse_known_kids(held, new_kids)
        _check_keys(
            request.party,
            [request.signing_key] if request.signing_key else [],
            [request.encryption_key] if request.encryption_key else [],
        )
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
            request.party, keys=NodeKeysRecord(signing=signing, encryption=encryption).model_dump()
        )
        self._store(entry)
        return entry

    def revoke(self, party: str, kid: str, at: datetime) -> DirectoryEntry:
        """Revoke one key from ``at`` on, which may be in the past ("compromised since") but not
        in the future: a revocation is recorded when it takes effect, and the state's broker
        credential is cut at the same moment. Revoking again can only move ``at`` earlier."""
        if at.tzinfo is None:
            raise DirectoryError("give the revocation time with its time zone")
        if at > self.clock() + timedelta(minutes=1):
            raise DirectoryError("a revocation cannot take effect in the future: run it then")
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
                    when = at if r.revoked_at is None else min(r.revoked_at, at)
                    r = r.model_copy(update={"status": KeyStatus.REVOKED, "revoked_at": when})
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
        wanted = None if parties is None else set(parties)
        signed = [(verify_entry(s, self.root).party, s.model_dump_json().encode())
                  for s in self.all_signed()]  # fmt: skip
        signed = [(party, value) for party, value in signed if wanted is None or party in wanted]
        count = 0
        async with connect(url, seed, tls_ca, name="cifta-directory") as nc:
            js = nc.jetstream()
            for state in states:
                for party, value in signed:
                    await js.publish(subjects.directory_publish_subject(state, party), value)
                    count += 1
        log.info("directory_published", entries=len(signed), puts=count)
        return count


def _check_keys(party: str, signing: Sequence[Any], encryption: Sequence[Any]) -> None:
    """Refuse to sign key records whose keys do not parse or whose kids do not match them."""
    try:
        check_key_records(party, signing, encryption)
    except ValueError as exc:
        raise DirectoryError(f"a key in the request is not valid: {exc}") from None


def _refuse_known_kids(held: DirectoryEntry, kids: Sequence[str]) -> None:
    """A key once listed (current, retired or revoked) cannot be listed again as new."""
    if held.keys is None:
        return
    known = {r.kid for r in (*held.keys.signing, *held.keys.encryption)}
    again = [k for k in kids if k in known]
    if again:
        raise DirectoryError(f"key {again[0]} is already in {held.party}'s entry")


def _retire(record: Any, at: datetime) -> Any:
    """A replaced key: still valid until ``at`` (the overlap), no longer the one to use."""
    if record.status is not KeyStatus.ACTIVE:
        return record
    at = max(at, record.valid_from + timedelta(seconds=1))  # not before it ever was valid
    until = at if record.valid_until is None else min(record.valid_until, at)
    return record.model_copy(update={"status": KeyStatus.RETIRING, "valid_until": until})


def details_of(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise DirectoryError(f"{path} does not hold an object")
    return data
