"""Protocol messages: the signed delivery receipt and the signed rejection.

Both travel as ordinary envelopes from the receiving node back to the sender, so they are signed
(non-repudiation of receipt) and encrypted like everything else. Both name the envelope they answer
by ``msg_id`` and by the SHA-256 of its bytes as received.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from schemas.base import Body, MessageId, Sha256Hex, Timestamp, examples
from schemas.reasons import ReasonCode
from schemas.registry import body

#: The kinds' family of receipts and rejections: never answered (docs/envelope.md section 11).
PROTOCOL_FAMILY = "protocol."

_MSG = "019ab5c2-7d10-7a3e-8f21-5c9d0e4b6a71"
_HASH = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"


@body
class DeliveryReceipt(Body):
    """The recipient node stored the envelope and could open it."""

    KIND: ClassVar[str] = "protocol.receipt"
    model_config = examples(
        {"msg_id": _MSG, "envelope_sha256": _HASH, "stored_at": "2026-11-24T15:00:01.250Z"}
    )

    msg_id: MessageId
    envelope_sha256: Sha256Hex
    stored_at: Timestamp
    #: ``ciphertext_sha256`` of every attachment the message named, in its order, once fetched
    #: and verified (docs/envelope.md section 13); omitted for a message without attachments.
    attachments_sha256: list[Sha256Hex] = Field(
        default=[], max_length=16, exclude_if=lambda v: not v
    )


@body
class Rejection(Body):
    """The recipient node refused the envelope; ``reason`` says which check failed."""

    KIND: ClassVar[str] = "protocol.rejection"
    model_config = examples(
        {
            "msg_id": _MSG,
            "envelope_sha256": _HASH,
            "reason": "expired",
            "detail": "expired at 2026-11-24T14:00:00.000Z",
            "rejected_at": "2026-11-24T15:00:01.250Z",
        }
    )

    #: The refused envelope's msg_id; absent when the envelope was too damaged to read one.
    msg_id: MessageId | None = None
    envelope_sha256: Sha256Hex
    reason: ReasonCode
    detail: Annotated[str, StringConstraints(max_length=500)] = ""
    rejected_at: Timestamp
