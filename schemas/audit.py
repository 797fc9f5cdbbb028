"""The audit log's records: events, signed checkpoints and the RFC 9162 proofs.

The audit service never sees a body: an event carries routing and handling metadata, the SHA-256
of the envelope and a digest of its signature. Hashes travel as lowercase hex; checkpoints travel
as their C2SP ``tlog-checkpoint`` signed-note text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

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
    #: written by the audit service: a party's signed event named an envelope the log never
    #: recorded, within the party's parking budget (``claimed`` says what the party filed)
    UNMATCHED = "unmatched"
    #: attachments (docs/envelope.md section 13), one event per file, naming its ciphertext:
    #: the sender stored it at the hub for every recipient; a recipient fetched and verified it
    ATTACHMENT_STORED = "attachment_stored"
    ATTACHMENT_FETCHED = "attachment_fetched"


#: The events about one attachment of a message.
ATTACHMENT_EVENTS = (EventType.ATTACHMENT_STORED, EventType.ATTACHMENT_FETCHED)


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
    claimed: EventType | None = None  # an unmatched leaf: the event the party filed
    #: the attachment an ``attachment_*`` event is about (its ciphertext's SHA-256)
    attachment_sha256: Sha256Hex | None = None

    @model_validator(mode="after")
    def _reasoned(self) -> AuditEvent:
        refused = self.event in (EventType.REJECTED, EventType.QUARANTINED)
        if refused != (self.reason is not None):
            raise ValueError("rejected and quarantined events (only) carry a reason")
        if (self.event is EventType.UNMATCHED) != (self.claimed is not None):
            raise ValueError("unmatched events (only) say which event was claimed")
        about_file = self.event in ATTACHMENT_EVENTS or self.claimed in ATTACHMENT_EVENTS
        if about_file != (self.attachment_sha256 is not None):
            raise ValueError("attachment events (only) name the attachment")
        return self


@record("audit.unreadable")
class UnreadableEnvelope(WireModel):
    """A node refused an envelope too damaged to name a message (not JSON, bad base64url, wrong
    version...): no protected header to take a message id, a kind or a handling code from. The
    receiving node signs what it knows: the envelope's SHA-256, who published it (the broker's
    inbox subject says so), where it sat in the inbox stream, and the reason."""

    model_config = examples(
        {
            "event_id": "019ab5c3-1111-7222-8333-444455556666",
            "event": "unreadable",
            "actor": "USA",
            "publisher": "MEX",
            "envelope_sha256": _H1,
            "size": 17,
            "stream_seq": 42,
            "reason": "malformed",
            "occurred_at": "2026-11-24T15:04:00Z",
        }
    )

    event_id: MessageId
    event: Literal["unreadable"]
    actor: PartyCode  # the receiving node, which refused it
    publisher: PartyCode  # whose credentials put it in the inbox (a broker fact)
    envelope_sha256: Sha256Hex
    size: Annotated[int, Field(ge=0)]
    stream_seq: Annotated[int, Field(ge=1)]
    reason: ReasonCode
    occurred_at: Timestamp


#: What a leaf of the log is: an event about a message, or the refusal of an unreadable envelope.
Leaf = AuditEvent | UnreadableEnvelope


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


# -- questions to the audit service (``audit.query.<party>``) ------------------------------------
# The asking party is the subject's last token (the broker's import fixes it), never a field.


class QueryError(StrEnum):
    """Why the audit service did not answer a question as asked."""

    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_OP = "unknown_op"
    INVALID_REQUEST = "invalid_request"
    NO_SUCH_MESSAGE = "no_such_message"
    NOT_YOURS = "not_yours"
    NO_CHECKPOINT = "no_checkpoint"
    BAD_RANGE = "bad_range"
    NOT_A_CHECKPOINT = "not_a_checkpoint"
    BAD_COSIGNATURE = "bad_cosignature"
    FOREIGN_ROOT = "foreign_root"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # the service's store is failing: ask again later


class CheckpointQuery(WireModel):
    """The latest signed checkpoint."""

    op: Literal["checkpoint"]


class ConsistencyQuery(WireModel):
    """RFC 9162 section 2.1.4: the proof that the tree of ``new`` extends the tree of ``old``."""

    op: Literal["consistency"]
    old: Annotated[int, Field(ge=0)]
    new: Annotated[int, Field(ge=0)]


class TrailQuery(WireModel):
    """A message's events, each with its inclusion proof (only a party to it may ask)."""

    op: Literal["trail"]
    msg_id: MessageId


class RecordsQuery(WireModel):
    """The asker's records, oldest first, ``limit`` leaves after leaf index ``after``."""

    op: Literal["records"]
    after: Annotated[int, Field(ge=-1)] = -1
    limit: Annotated[int, Field(ge=1, le=1000)] = 500


class CosignQuery(WireModel):
    """A witness's cosignature of a checkpoint (its signed-note text, with the cosignature)."""

    op: Literal["cosign"]
    note: Annotated[str, StringConstraints(min_length=1, max_length=8_000)]


class AlarmQuery(WireModel):
    """A witness saw the log misbehave (a fork, a history that does not extend)."""

    op: Literal["alarm"]
    detail: Annotated[str, StringConstraints(max_length=500)] = ""


AuditQuery = Annotated[
    CheckpointQuery | ConsistencyQuery | TrailQuery | RecordsQuery | CosignQuery | AlarmQuery,
    Field(discriminator="op"),
]


class CheckpointReply(WireModel):
    note: str | None


class ConsistencyReply(WireModel):
    path: _Path


class ProvenLeaf(WireModel):
    """One leaf of a trail: its index, its bytes (standard base64) and its audit path."""

    index: Annotated[int, Field(ge=0)]
    leaf: str
    path: _Path


class TrailReply(WireModel):
    checkpoint: str
    events: list[ProvenLeaf]
    witnesses: list[str]


class RecordsReply(WireModel):
    """One page of records; ``next_after`` is the cursor of the next page (absent at the end)."""

    events: list[Leaf]
    next_after: int | None = None


class OkReply(WireModel):
    ok: Literal[True] = True


class ErrorReply(WireModel):
    """A question not answered: ``code`` for programs, ``error`` for people."""

    code: QueryError
    error: Annotated[str, StringConstraints(max_length=500)]


AuditReply = CheckpointReply | ConsistencyReply | TrailReply | RecordsReply | OkReply | ErrorReply
