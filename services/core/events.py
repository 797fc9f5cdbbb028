"""Audit events as nodes file them: the event's JSON, signed by the node's signing key."""

from __future__ import annotations

import hashlib
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.audit import AuditEvent, EventType
from services.core.encoding import b64u, unb64u, uuid7
from services.core.envelope import KeyLookup, ProtectedHeader
from services.core.keys import SigningKey

EVENT_DOMAIN = b"CIFTA-Exchange audit event v1\x00"


class EventError(Exception):
    """A filed event that does not parse or whose signature does not verify."""


class SignedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    event: str  # base64url of the event's JSON
    kid: str
    sig: str


def make_event(
    kind: EventType,
    header: ProtectedHeader,
    *,
    actor: str,
    envelope_sha256: str,
    signature_sha256: str,
    at: datetime,
    officer: str | None = None,
    reason: str | None = None,
    counterpart: str | None = None,
) -> AuditEvent:
    """One fact about one message, with its routing and handling metadata (never content)."""
    return AuditEvent.model_validate(
        {
            "event_id": uuid7(int(at.timestamp() * 1000)),
            "event": kind,
            "msg_id": header.msg_id,
            "kind": header.kind,
            "sender": header.sender,
            "recipients": header.recipients,
            "actor": actor,
            "officer": officer,
            "handling": header.handling,
            "confidential": header.confidential,
            "envelope_sha256": envelope_sha256,
            "signature_sha256": signature_sha256,
            "occurred_at": at,
            "reason": reason,
            "counterpart": counterpart,
        }
    )


def sign_event(event: AuditEvent, key: SigningKey) -> bytes:
    data = event.model_dump_json(exclude_none=True).encode()
    sig = key.ed25519.sign(EVENT_DOMAIN + data)
    return (
        SignedEvent(event=b64u(data), kid=key.public().kid, sig=b64u(sig))
        .model_dump_json()
        .encode()
    )


def open_event(payload: bytes, party: str, directory: KeyLookup) -> AuditEvent:
    """The event ``party`` filed, if its signing key (as the directory knows it) signed it."""
    try:
        signed = SignedEvent.model_validate_json(payload)
        data = unb64u(signed.event)
        event = AuditEvent.model_validate_json(data)
    except (ValidationError, ValueError) as exc:
        raise EventError(f"not a signed event: {exc}") from None
    if event.actor != party:
        raise EventError(f"an event of {event.actor} filed by {party}")
    record = directory.signing_key(party, signed.kid)
    if record is None:
        raise EventError(f"unknown signing key {party}/{signed.kid}")
    try:
        record.key.ed25519.verify(unb64u(signed.sig), EVENT_DOMAIN + data)
    except (InvalidSignature, ValueError):
        raise EventError("the event's signature does not verify") from None
    return event


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signature_digest(envelope: bytes) -> str:
    """SHA-256 of an envelope's Ed25519 signature bytes (empty input if it has none)."""
    import json

    try:
        sigs = json.loads(envelope)["signatures"]
        sig = next(s["sig"] for s in sigs if s.get("alg") == "Ed25519")
        return hashlib.sha256(unb64u(sig)).hexdigest()
    except (ValueError, KeyError, TypeError, StopIteration):
        return hashlib.sha256(b"").hexdigest()
