"""The audit log's records: events, signed checkpoints and the RFC 9162 proofs.

The audit service never sees a body: an event carries routing and handling metadata, the SHA-256
of the envelope and a digest of its signature. Hashes travel as lowercase hex; checkpoints travel
as their C2SP ``tlog-checkpoint`` signed-note text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from schemas.base import (
    HandlingCode,
    MessageId,
    PartyCode,
    Sha256Hex,
    ShortText,
    Timestamp,
    WireModel,
    examples,
)
from schemas.reasons import ReasonCode
from schemas.registry import record

_MSG = "019ab5c2-7d10-7a3e-8f21-5c9d0e4b6a71"
_H1 = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
_H2 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_Path = Annotated[list[Sha256Hex], Field(max_length=64)]


class EventType(StrEnum):
    SENT = "sent"
    STORED = "stored"  # the broker stored the envelope in the recipient's inbox stream
    DELIVERED = "delivered"
    OPENED = "opened"
    REPLIED = "replied"
    FORWARDED = "forwarded"
    DISCLOSURE_NOTIFIED = "disclosure_notified"
    CONSENT_REQUESTED = "consent_requested"
    CONSENT_ANSWERED = "consent_answered"
    EXPORTED = "exported"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    #: A blind record lookup evaluated for the ``sender`` (docs/lookup.md): who asked and when,
    #: never what; refused ones are ``rejected`` events with a ``lookup_*`` reason.
    LOOKUP_EVALUATED = "lookup_evaluated"


@record("audit.event")
class AuditEvent(WireModel):
    """One thing that happened to one message at one party."""

    model_config = examples(
        {
            "event_id": "019ab5c3-1111-7222-8333-444455556666",
            "event": "opened",
            "msg_id": _MSG,
            "kind": "info.trafficking_routes",
            "sender": "MEX",
            "recipients": ["USA", "COL"],
            "actor": "USA",
            "officer": "hsi.analyst.04",
            "handling": "H2",
            "confidential": True,
            "envelope_sha256": _H1,
            "signature_sha256": _H2,
            "occurred_at": "2026-11-24T15:04:00Z",
        }
    )

    event_id: MessageId
    event: EventType
    msg_id: MessageId
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=64)]
    sender: PartyCode
    recipients: Annotated[list[PartyCode], Field(min_length=1, max_length=64)]
    actor: PartyCode
    officer: ShortText | None = None
    handling: HandlingCode
    confidential: bool
    envelope_sha256: Sha256Hex
    signature_sha256: Sha256Hex
    occurred_at: Timestamp
    reason: ReasonCode | None = None
    counterpart: PartyCode | None = None  # forwarded to, consent asked of

    @model_validator(mode="after")
    def _reasoned(self) -> AuditEvent:
        refused = self.event in (EventType.REJECTED, EventType.QUARANTINED)
        if refused != (self.reason is not None):
            raise ValueError("rejected and quarantined events (only) carry a reason")
        return self


@record("audit.checkpoint")
class Checkpoint(WireModel):
    """A signed tree head, parsed from its signed-note text (``note``)."""

    model_config = examples(
        {
            "origin": "cifta-exchange.oas.org/audit",
            "tree_size": 1024,
            "root_hash": _H2,
            "note": "cifta-exchange.oas.org/audit\n1024\n"
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n"
            "\u2014 cifta-exchange.oas.org/audit "
            "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe"
            "4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n",
        }
    )

    origin: ShortText
    tree_size: Annotated[int, Field(ge=0)]
    root_hash: Sha256Hex
    note: Annotated[str, StringConstraints(min_length=1, max_length=8_000)]


@record("audit.inclusion_proof")
class InclusionProof(WireModel):
    """RFC 9162 section 2.1.3: the audit path of leaf ``leaf_index`` in a tree of ``tree_size``."""

    model_config = examples({"leaf_index": 5, "tree_size": 8, "leaf_hash": _H1, "path": [_H2]})

    leaf_index: Annotated[int, Field(ge=0)]
    tree_size: Annotated[int, Field(ge=1)]
    leaf_hash: Sha256Hex
    path: _Path

    @model_validator(mode="after")
    def _in_tree(self) -> InclusionProof:
        if self.leaf_index >= self.tree_size:
            raise ValueError("leaf_index must be below tree_size")
        return self


@record("audit.consistency_proof")
class ConsistencyProof(WireModel):
    """RFC 9162 section 2.1.4: the tree of ``new_size`` extends the tree of ``old_size``."""

    model_config = examples({"old_size": 6, "new_size": 8, "path": [_H1, _H2]})

    old_size: Annotated[int, Field(ge=1)]
    new_size: Annotated[int, Field(ge=1)]
    path: _Path

    @model_validator(mode="after")
    def _ordered(self) -> ConsistencyProof:
        if self.new_size < self.old_size:
            raise ValueError("new_size must not be below old_size")
        return self
