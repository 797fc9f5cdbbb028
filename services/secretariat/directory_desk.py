"""The directory as the secretariat works it: requests waiting for review, approval by the key id
read out by telephone, revocation, entries and their history.

Requests a state hands in (``cifta directory register`` / ``rotate``) are filed under
``<hub home>/directory/requests/`` and wait there until approved or declined. A registration is
approved only when the operator types the signing key id the state's point of contact read out by
telephone (Art. XIV.2: the national point of contact vouches for its node). That id is never shown
before: the review omits every key and signature, and a wrong id is refused without the right one;
after a few wrong ones the request (or the operator) is frozen for a while (approval_guard.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from nats.errors import Error as NatsError
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.directory import (
    Contact,
    DirectoryEntry,
    OfficialNames,
    RegistrationRequest,
    RotationRequest,
    SignedRequest,
)
from services.core.connection import HubUnreachable
from services.core.directory import DirectoryError, open_request
from services.core.files import write_atomic
from services.core.logs import get_logger
from services.directory.service import DEFAULT_OVERLAP, DirectoryService
from services.hub.config import DIRECTORY_USER, SECRETARIAT_ACCOUNT
from services.hub.home import HubHome
from services.hub.provision import ProvisionError
from services.secretariat.approval_guard import ApprovalGuard
from services.secretariat.errors import ErrorCode, SecretariatError

log = get_logger("cifta.secretariat")

#: A signed request is a few kilobytes (an ML-KEM-768 key is 1184 bytes): anything far larger is
#: not one, and is refused before it is parsed.
MAX_REQUEST_BYTES = 64 * 1024
KEY_ID = re.compile(r"[0-9a-f]{32}")
REQUEST_ID = re.compile(r"[0-9a-f]{16}")


class PendingRequest(BaseModel):
    """A request waiting for review: who asks for what, and nothing of its keys."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    kind: Literal["registration", "rotation"]
    party: str
    requested_at: datetime
    known_party: bool  # the party already has an entry (a new start, or a rotation)
    names: OfficialNames | None = None
    point_of_contact: str | None = None
    contacts: list[Contact] = []
    base_version: int | None = None  # a rotation: the entry version it was made against
    new_signing_key: bool = False
    new_encryption_key: bool = False


class KeyView(BaseModel):
    model_config = ConfigDict(frozen=True)

    use: Literal["signing", "encryption"]
    kid: str
    status: str
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None


class EntryView(BaseModel):
    """One party's directory entry as the secretariat reviews it."""

    model_config = ConfigDict(frozen=True)

    party: str
    version: int
    updated_at: datetime
    names: OfficialNames
    point_of_contact: str
    contacts: list[Contact]
    keys: list[KeyView]


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True)

    party: str
    version: int
    new_state: bool


def entry_view(entry: DirectoryEntry) -> EntryView:
    keys: list[KeyView] = []
    if entry.keys is not None:
        uses = (("signing", entry.keys.signing), ("encryption", entry.keys.encryption))
        for use, records in uses:
            keys += [
                KeyView(use=use, kid=r.kid, status=r.status.value, valid_from=r.valid_from,
                        valid_until=r.valid_until, revoked_at=r.revoked_at)
                for r in records
            ]  # fmt: skip
    return EntryView(
        party=entry.party,
        version=entry.version,
        updated_at=entry.updated_at,
        names=entry.names,
        point_of_contact=entry.point_of_contact,
        contacts=list(entry.contacts),
        keys=keys,
    )


def normalise_key_id(typed: str) -> str:
    """A key id as read aloud (groups, dashes, any case) in its written form; refused with a
    reason when it is not 32 hexadecimal characters."""
    if not typed or not typed.strip():
        raise SecretariatError(ErrorCode.KEY_ID_MISSING)
    spoken = "".join(typed.split()).replace("-", "").lower()
    if not KEY_ID.fullmatch(spoken):
        raise SecretariatError(ErrorCode.KEY_ID_MALFORMED, length=len(spoken))
    return spoken


class DirectoryDesk:
    """The secretariat's commands and queries on the directory of one hub home."""

    def __init__(self, hub: HubHome, service: DirectoryService | None = None) -> None:
        self.hub = hub
        self._service = service
        self.requests_dir = hub.directory_home / "requests"
        self.guard = ApprovalGuard(hub.directory_home / "approval-attempts.json")

    @property
    def service(self) -> DirectoryService:
        if self._service is None:  # opening the root key may need the passphrase: only on use
            self._service = self.hub.directory_service()
        return self._service

    # -- requests --------------------------------------------------------------------------------

    def file_request(self, data: bytes) -> PendingRequest:
        """Put a state's signed request into the review queue (idempotent); refused when it is
        not a signed request."""
        if len(data) > MAX_REQUEST_BYTES:
            raise SecretariatError(ErrorCode.REQUEST_TOO_LARGE, limit=MAX_REQUEST_BYTES)
        try:
            signed = SignedRequest.model_validate_json(data)
            open_request(signed)
        except (ValidationError, DirectoryError):
            raise SecretariatError(ErrorCode.NOT_A_REQUEST) from None
        request_id = hashlib.sha256(signed.request.encode()).hexdigest()[:16]
        self.requests_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.requests_dir / f"{request_id}.json", signed.model_dump_json().encode())
        log.info("registration_request_filed", request_id=request_id, kind=signed.kind)
        return self._pending(request_id, signed)

    def pending(self) -> list[PendingRequest]:
        """Every request waiting for review, oldest first."""
        out = [
            self._pending(p.stem, SignedRequest.model_validate_json(p.read_bytes()))
            for p in sorted(self.requests_dir.glob("*.json"))
        ]
        return sorted(out, key=lambda r: r.requested_at)

    def request(self, request_id: str) -> PendingRequest:
        return self._pending(request_id, self._signed(request_id))

    def _signed(self, request_id: str) -> SignedRequest:
        path = self.requests_dir / f"{request_id}.json"
        if not REQUEST_ID.fullmatch(request_id) or not path.exists():
            raise SecretariatError(ErrorCode.NO_SUCH_REQUEST, request=request_id[:32])
        return SignedRequest.model_validate_json(path.read_bytes())

    def _pending(self, request_id: str, signed: SignedRequest) -> PendingRequest:
        request = open_request(signed)
        known = self.service.entry(request.party) is not None
        if isinstance(request, RegistrationRequest):
            return PendingRequest(
                request_id=request_id, kind="registration", party=request.party,
                requested_at=request.requested_at, known_party=known, names=request.names,
                point_of_contact=request.point_of_contact, contacts=list(request.contacts),
            )  # fmt: skip
        assert isinstance(request, RotationRequest)
        return PendingRequest(
            request_id=request_id, kind="rotation", party=request.party,
            requested_at=request.requested_at, known_party=known,
            base_version=request.base_version,
            new_signing_key=request.signing_key is not None,
            new_encryption_key=request.encryption_key is not None,
        )  # fmt: skip

    def approve_registration(
        self,
        request_id: str,
        typed_key_id: str,
        *,
        operator: str | None = None,
        now: datetime | None = None,
    ) -> Approval:
        """Sign the party's entry if ``typed_key_id`` is the signing key id of the request.

        The comparison is constant-time, and a refusal never carries the expected id: the check
        is worth something only if the id comes from the state by telephone. Wrong ids are
        counted for the request and for ``operator`` (the console's signed-in login): the fifth
        freezes approval for a while, refused with APPROVAL_FROZEN or APPROVER_FROZEN.
        """
        now = now or datetime.now(UTC)
        signed = self._signed(request_id)
        if signed.kind != "registration":
            raise SecretariatError(ErrorCode.NOT_A_REGISTRATION, request=request_id)
        request = open_request(signed)
        assert isinstance(request, RegistrationRequest)
        self.guard.check(request_id, operator, now)
        spoken = normalise_key_id(typed_key_id)
        if not hmac.compare_digest(spoken.encode(), request.signing_key.kid.encode()):
            log.info("registration_confirmation_refused", party=request.party)
            self.guard.typed(request_id, operator, "wrong", now)
            self.guard.check(request_id, operator, now)  # the fifth: say so at once
            raise SecretariatError(ErrorCode.KEY_ID_MISMATCH, party=request.party)
        self.guard.typed(request_id, operator, "right", now)
        new_state = self.hub.registry().state(request.party) is None
        try:
            entry = self.service.register(signed)
        except DirectoryError as exc:
            raise SecretariatError(ErrorCode.DIRECTORY_REFUSED, detail=str(exc)) from None
        self.hub.add_state(request.party, request.names.en)
        self._decided(request_id, "approved")
        log.info("registration_approved", party=entry.party, version=entry.version)
        return Approval(party=entry.party, version=entry.version, new_state=new_state)

    def approve_rotation(self, request_id: str, overlap: timedelta = DEFAULT_OVERLAP) -> Approval:
        """Apply a key rotation: signed by the party's current key, so no telephone check."""
        signed = self._signed(request_id)
        if signed.kind != "rotation":
            raise SecretariatError(ErrorCode.NOT_A_ROTATION, request=request_id)
        try:
            entry = self.service.rotate(signed, overlap)
        except DirectoryError as exc:
            raise SecretariatError(ErrorCode.DIRECTORY_REFUSED, detail=str(exc)) from None
        self._decided(request_id, "approved")
        log.info("rotation_approved", party=entry.party, version=entry.version)
        return Approval(party=entry.party, version=entry.version, new_state=False)

    def decline(self, request_id: str) -> PendingRequest:
        """Take a request out of the queue without signing anything (kept, as declined)."""
        pending = self.request(request_id)
        self._decided(request_id, "declined")
        log.info("request_declined", party=pending.party, kind=pending.kind)
        return pending

    def _decided(self, request_id: str, outcome: str) -> None:
        target = self.requests_dir / outcome
        target.mkdir(parents=True, exist_ok=True)
        (self.requests_dir / f"{request_id}.json").replace(target / f"{request_id}.json")

    # -- entries ---------------------------------------------------------------------------------

    def entries(self) -> list[EntryView]:
        return [entry_view(e) for e in self.service.entries()]

    def history(self, party: str) -> list[EntryView]:
        """Every version of ``party``'s entry, oldest first."""
        versions = self.service.history(party)
        if not versions:
            raise SecretariatError(ErrorCode.NO_SUCH_PARTY, party=party[:8])
        return [entry_view(e) for e in versions]

    def revoke(self, party: str, kid: str, at: datetime | None = None) -> EntryView:
        """Revoke one key from ``at`` (now by default; earlier means "compromised since"). A
        revoked signing key takes the state's hub credential with it, as ``cifta directory
        revoke`` does."""
        at = at or self.service.clock()
        held = self.service.entry(party)
        if held is None or held.keys is None:
            raise SecretariatError(ErrorCode.NO_SUCH_PARTY, party=party[:8])
        if not any(r.kid == kid for r in (*held.keys.signing, *held.keys.encryption)):
            raise SecretariatError(ErrorCode.NO_SUCH_KEY, party=party, kid=kid[:32])
        try:
            entry = self.service.revoke(party, kid, at)
        except DirectoryError:
            raise SecretariatError(ErrorCode.REVOCATION_TIME, party=party) from None
        if any(r.kid == kid for r in held.keys.signing):
            self.hub.replace_node_credentials(party)
            self.hub.render_config()
            if self.hub.running_pid() is not None:
                self.hub.reload()
        log.info("key_revoked", party=party, kid=kid, version=entry.version)
        return entry_view(entry)


async def apply_to_hub(
    desk: DirectoryDesk, new_state: str | None = None, tls_ca: Path | None = None
) -> None:
    """Make the running hub match the directory: the configuration re-rendered and reloaded and
    the new state provisioned when there is one, every entry published into every state's
    bucket. Refused with HUB_NOT_RUNNING or HUB_REFUSED (the directory is changed already; the
    operator finishes with ``cifta directory publish``)."""
    hub = desk.hub
    if new_state is not None:
        hub.render_config()
        if hub.running_pid() is not None:
            hub.reload()
    if hub.running_pid() is None:
        raise SecretariatError(ErrorCode.HUB_NOT_RUNNING)
    url = hub.url()
    try:
        if new_state is not None:
            await hub.provision(url, [new_state], tls_ca=tls_ca)
        seed = hub.user_seed(SECRETARIAT_ACCOUNT, DIRECTORY_USER)
        await desk.service.publish(url, seed, hub.registry().codes(), tls_ca=tls_ca)
    except (NatsError, TimeoutError, ProvisionError, HubUnreachable) as exc:
        raise SecretariatError(ErrorCode.HUB_REFUSED, error=type(exc).__name__) from None


def read_request_file(path: Path) -> bytes:
    """The bytes of a request file, bounded (a person may point at the wrong file)."""
    with path.open("rb") as f:
        data = f.read(MAX_REQUEST_BYTES + 1)
    return data
