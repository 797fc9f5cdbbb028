"""Audit events as nodes file them: the event's JSON, signed by the node's signing key.

Two forms: an ``AuditEvent`` about a message (its routing and handling metadata, from the signed
protected header), and an ``UnreadableEnvelope`` for an envelope refused before it had a header to
name (the envelope's hash, its publisher, the reason). Both travel in the same signed wrapper.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from schemas.audit import AuditEvent, EventType, Leaf, UnreadableEnvelope
from schemas.reasons import ReasonCode
from services.core.encoding import b64u, unb64u, uuid7
from services.core.envelope import KeyLookup, ProtectedHeader
from services.core.keys import SigningKey

EVENT_DOMAIN = b"CIFTA-Exchange audit event v1\x00"

_LEAF: TypeAdapter[Leaf] = TypeAdapter(Leaf)


class EventError(Exception):
    """A filed event that does not parse or whose signature does not verify; ``reason`` says
    which check failed, with the envelope's reason codes (the same checks, on an event)."""

    def __init__(self, reason: ReasonCode, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def parse_leaf(data: bytes) -> Leaf:
    """A leaf's JSON as the model it is."""
    return _LEAF.validate_json(data)


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
    attachment_sha256: str | None = None,
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
            "attachment_sha256": attachment_sha256,
        }
    )


def make_unreadable(
    *,
    actor: str,
    publisher: str,
    envelope: bytes,
    stream_seq: int,
    reason: ReasonCode,
    at: datetime,
) -> UnreadableEnvelope:
    """The record of an envelope ``actor`` refused before it could name a message."""
    return UnreadableEnvelope(
        event_id=uuid7(int(at.timestamp() * 1000)),
        event="unreadable",
        actor=actor,
        publisher=publisher,
        envelope_sha256=digest(envelope),
        size=len(envelope),
        stream_seq=stream_seq,
        reason=reason,
        occurred_at=at,
    )


def sign_event(event: Leaf, key: SigningKey) -> bytes:
    data = event.model_dump_json(exclude_none=True).encode()
    sig = key.ed25519.sign(EVENT_DOMAIN + data)
    return (
        SignedEvent(event=b64u(data), kid=key.public().kid, sig=b64u(sig))
        .model_dump_json()
        .encode()
    )


def open_event(
    payload: bytes, party: str, directory: KeyLookup, stored_at: datetime | None = None
) -> Leaf:
    """The event ``party`` filed, if a signing key of ``party`` that was valid and not revoked
    when the event occurred signed it (the directory's key history, as for an envelope).

    ``stored_at`` is the broker's storage time: a holder of a revoked key can backdate
    ``occurred_at`` but not the broker's clock, so a revocation before it refuses the event."""
    try:
        signed = SignedEvent.model_validate_json(payload)
        data = unb64u(signed.event)
        event = parse_leaf(data)
    except (ValidationError, ValueError) as exc:
        raise EventError(ReasonCode.MALFORMED, f"not a signed event: {exc}") from None
    if event.actor != party:
        raise EventError(ReasonCode.SENDER_MISMATCH, f"an event of {event.actor} filed by {party}")
    record = directory.signing_key(party, signed.kid)
    if record is None or record.key.party != party:
        raise EventError(ReasonCode.UNKNOWN_SENDER_KEY, f"{party}/{signed.kid}")
    at = event.occurred_at
    if at < record.valid_from or (record.valid_until is not None and at >= record.valid_until):
        raise EventError(ReasonCode.SENDER_KEY_NOT_VALID, f"{party}/{signed.kid} at {at}")
    latest_claim = at if stored_at is None else max(at, stored_at)
    if record.revoked_at is not None and latest_claim >= record.revoked_at:
        raise EventError(ReasonCode.REVOKED_SENDER_KEY, f"{party}/{signed.kid} at {latest_claim}")
    try:
        record.key.ed25519.verify(unb64u(signed.sig), EVENT_DOMAIN + data)
    except (InvalidSignature, ValueError):
        raise EventError(ReasonCode.BAD_SIGNATURE, "the signature does not verify") from None
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
