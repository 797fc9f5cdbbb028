"""What the node store hands out and takes in: plain frozen records, no SQL."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from services.core.envelope import ProtectedHeader

#: An audit event queued with the fact it records: (event id, signed payload).
Event = tuple[str, bytes]


@dataclass(frozen=True)
class Outgoing:
    """A sealed message about to be stored and queued for its recipients."""

    header: ProtectedHeader
    envelope: bytes
    envelope_sha256: str
    local_copy: bytes | None  # our own copy of the content key (``pack_copy``)
    #: the ciphertext_sha256 of each attachment the body names, in order (section 13)
    attachments: tuple[str, ...] = ()
    attachment_bytes: int = 0  # their ciphertexts' size, as stored at the hub per recipient


@dataclass(frozen=True)
class Outcome:
    """What a recipient's receipt or rejection says about one of our messages."""

    msg_id: str
    recipient: str
    status: str  # delivered, rejected
    reason: str | None
    detail: str | None
    at: datetime
    answer_msg_id: str
    envelope_sha256: str  # of the envelope the recipient got: must be the one we sent
    #: a receipt's ``attachments_sha256`` (the attachments it fetched); None for a rejection
    attachments_sha256: tuple[str, ...] | None = None


_KID_LEN = 32


def pack_copy(kid: str, wrapped: bytes) -> bytes:
    """The sender's copy of a content key, as stored: key id, then the wrapped key."""
    return kid.encode("ascii") + wrapped


def unpack_copy(blob: bytes) -> tuple[str, bytes]:
    """The key id and wrapped content key of a stored sender's copy."""
    return blob[:_KID_LEN].decode("ascii"), blob[_KID_LEN:]


@dataclass(frozen=True)
class StoredMessage:
    msg_id: str
    direction: str
    kind: str
    sender: str
    recipients: list[str]
    handling: str
    confidential: bool
    case_id: str | None
    in_reply_to: str | None
    created_at: str
    stored_at: str
    envelope: bytes
    envelope_sha256: str
    local_copy: bytes | None
    stream_seq: int | None
    first_read_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredMessage:
        data = dict(row)
        data["recipients"] = json.loads(data["recipients"])
        data["confidential"] = bool(data["confidential"])
        return cls(**data)


@dataclass(frozen=True)
class OutboxItem:
    msg_id: str
    recipient: str
    attempts: int
    envelope: bytes
    resends: int = 0  # times sent again for want of an answer (reception awareness)


@dataclass(frozen=True)
class Unanswered:
    """A message sent to ``recipient`` whose answer was due and has not come."""

    msg_id: str
    recipient: str
    resends: int
    sent_at: str  # when it was last sent (ISO 8601)


@dataclass(frozen=True)
class RecipientStatus:
    recipient: str
    state: str  # pending, sent, delivered, rejected
    attempts: int
    last_error: str | None
    sent_at: str | None
    answered_at: str | None
    reason: str | None
    detail: str | None
