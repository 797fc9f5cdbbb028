"""Reason codes: why an envelope was refused. Stable strings; they travel in signed rejections.

The order of this enum is the order in which a receiving node checks an envelope (see
``docs/envelope.md``, "Opening"): the first failed check decides the code.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    """Why an envelope could not be accepted. One code per failed check."""

    # 1. structure and version
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    # 2. the sender key, as the directory knows it at created_at
    UNKNOWN_SENDER_KEY = "unknown_sender_key"
    SENDER_KEY_NOT_VALID = "sender_key_not_valid"
    REVOKED_SENDER_KEY = "revoked_sender_key"
    # 3. signatures
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    # 4. addressing
    NOT_A_RECIPIENT = "not_a_recipient"
    # 5. time
    EXPIRED = "expired"
    FUTURE_DATED = "future_dated"
    # 6. replay
    REPLAY = "replay"
    # 7. unwrap and decrypt
    DECRYPTION_FAILED = "decryption_failed"
    # 8. the body against its kind's schema
    UNKNOWN_KIND = "unknown_kind"
    SCHEMA_INVALID = "schema_invalid"
    # 9. transport, checked by the node around the envelope (not part of open_envelope)
    SENDER_MISMATCH = "sender_mismatch"
    PROCESSING_FAILED = "processing_failed"
    # 10. the Convention's procedures, checked by the node against the case it belongs to
    ILLEGAL_TRANSITION = "illegal_transition"
    # 11. blind record lookup (docs/lookup.md): an answering node refuses an evaluation request
    LOOKUP_OVER_BUDGET = "lookup_over_budget"
    LOOKUP_MALFORMED = "lookup_malformed"
    LOOKUP_UNAVAILABLE = "lookup_unavailable"
    # 12. attachments (docs/envelope.md section 13): fetched and verified after the envelope
    ATTACHMENT_MISSING = "attachment_missing"
    ATTACHMENT_CORRUPT = "attachment_corrupt"
    ATTACHMENT_TOO_LARGE = "attachment_too_large"


#: Codes the node decides around the envelope, from the broker's facts (who published it, how
#: often it was delivered). The envelope's own checks produce every other code.
TRANSPORT_REASONS = frozenset({ReasonCode.SENDER_MISMATCH, ReasonCode.PROCESSING_FAILED})

#: Codes the node decides from the state of the procedure a message belongs to (tracing, a
#: licensed transfer, a controlled delivery, Article XII consent).
PROCEDURE_REASONS = frozenset({ReasonCode.ILLEGAL_TRANSITION})

#: Codes an answering node gives an evaluation request of a blind record lookup.
LOOKUP_REASONS = frozenset(
    {ReasonCode.LOOKUP_OVER_BUDGET, ReasonCode.LOOKUP_MALFORMED, ReasonCode.LOOKUP_UNAVAILABLE}
)

#: Codes the node decides from the attachments a body names, once it has tried to fetch them.
ATTACHMENT_REASONS = frozenset(
    {ReasonCode.ATTACHMENT_MISSING, ReasonCode.ATTACHMENT_CORRUPT, ReasonCode.ATTACHMENT_TOO_LARGE}
)

#: Every code decided outside ``open_envelope``.
NODE_REASONS = TRANSPORT_REASONS | PROCEDURE_REASONS | LOOKUP_REASONS | ATTACHMENT_REASONS


#: One sentence per reason code, for people reading a rejection.
REASON_TEXT: dict[ReasonCode, str] = {
    ReasonCode.OVERSIZED: "the envelope is larger than the network accepts",
    ReasonCode.MALFORMED: "the envelope is not well-formed JSON with the required fields",
    ReasonCode.UNSUPPORTED_VERSION: "the envelope version is not supported",
    ReasonCode.UNSUPPORTED_ALGORITHM: "the envelope names an algorithm this node does not accept",
    ReasonCode.UNKNOWN_SENDER_KEY: "the sender's signing key is not in the directory",
    ReasonCode.SENDER_KEY_NOT_VALID: "the sender's key was not valid when the message was created",
    ReasonCode.REVOKED_SENDER_KEY: "the sender's key was revoked before the message was created",
    ReasonCode.MISSING_SIGNATURE: "a required signature is missing",
    ReasonCode.BAD_SIGNATURE: "a signature does not verify",
    ReasonCode.NOT_A_RECIPIENT: "this node is not among the envelope's recipients",
    ReasonCode.EXPIRED: "the envelope expired before it was opened",
    ReasonCode.FUTURE_DATED: "the envelope is dated further in the future than clocks can drift",
    ReasonCode.REPLAY: "a message with this msg_id was already accepted",
    ReasonCode.DECRYPTION_FAILED: "the content key or the body could not be decrypted",
    ReasonCode.UNKNOWN_KIND: "the body's kind is not one this node knows",
    ReasonCode.SCHEMA_INVALID: "the body does not validate against its kind's schema",
    ReasonCode.SENDER_MISMATCH: "the envelope's sender is not the state whose credentials sent it",
    ReasonCode.PROCESSING_FAILED: "the node could not process the envelope in any delivery attempt",
    ReasonCode.ILLEGAL_TRANSITION: (
        "the message does not fit the state of its procedure (an answer to a request never made,"
        " a dispatch before every confirmation, a party that does not take part)"
    ),
    ReasonCode.LOOKUP_OVER_BUDGET: "the asking state has used up its lookup budget for now",
    ReasonCode.LOOKUP_MALFORMED: "the lookup request is not a well-formed evaluation request",
    ReasonCode.LOOKUP_UNAVAILABLE: "this state answers no lookups (it holds no lookup key)",
    ReasonCode.ATTACHMENT_MISSING: "an attachment the message names is not stored at the hub",
    ReasonCode.ATTACHMENT_CORRUPT: (
        "an attachment does not decrypt, or its bytes are not those the message names"
    ),
    ReasonCode.ATTACHMENT_TOO_LARGE: "an attachment is larger than this node accepts",
}
