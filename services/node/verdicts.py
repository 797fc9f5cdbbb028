"""The vocabulary between a node's core and its broker-facing shell: a :class:`Delivery` as the
broker handed it, and the :class:`Verdict` the core reached on it (acknowledge, terminate once
refused with the envelope held for its quarantine copy, or ask again later)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from schemas import ReasonCode
from schemas.protocol import DeliveryReceipt, Rejection
from schemas.reasons import REASON_TEXT
from services.core import subjects
from services.core.envelope import OpenedEnvelope
from services.node.store import Outcome

#: A message's date the recipients refuse (future_dated, expired): a receipt refused for one of
#: these is answered, so that the node whose clock is wrong hears of it (design section 5).
DATE_REASONS = frozenset({ReasonCode.FUTURE_DATED, ReasonCode.EXPIRED})
RECEIPT_KIND = "protocol.receipt"


class Action(Enum):
    ACK = "ack"  # stored (or already stored): done
    TERM = "term"  # refused for good, the envelope held for its quarantine copy: terminate
    NAK = "nak"  # could not process now: deliver again later


@dataclass(frozen=True)
class Delivery:
    """One envelope as the broker delivered it."""

    subject: str
    data: bytes
    stream_seq: int
    num_delivered: int
    stored_at: datetime  # the broker's storage time
    final: bool = True  # the consumer will not deliver it again
    parked: bool = False  # tried again from the node's parking lot, not delivered by the hub


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: ReasonCode | None = None
    detail: str = ""
    msg_id: str | None = None
    kind: str | None = None
    duplicate: bool = False
    deferred: bool = False  # acknowledged at the hub, parked here to be tried again


def publisher_of(subject: str) -> str:
    """The account that published an inbox subject (empty for any other subject)."""
    parsed = subjects.parse_inbox(subject)
    return "" if parsed is None else parsed[1]


def answer_outcome(opened: OpenedEnvelope) -> Outcome | None:
    """What a received receipt or rejection says about one of our messages."""
    body, h = opened.body, opened.header
    if isinstance(body, DeliveryReceipt):
        return Outcome(body.msg_id, h.sender, "delivered", None, None, h.created_at,
                       h.msg_id, body.envelope_sha256,
                       tuple(body.attachments_sha256))  # fmt: skip
    if isinstance(body, Rejection) and body.msg_id is not None:
        return Outcome(body.msg_id, h.sender, "rejected", body.reason.value, body.detail,
                       h.created_at, h.msg_id, body.envelope_sha256)  # fmt: skip
    return None


def reason_text(code: str | None) -> str:
    if code is None:
        return ""
    try:
        return REASON_TEXT[ReasonCode(code)]
    except ValueError:
        return code
