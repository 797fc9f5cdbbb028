"""The node's store as its callers see it: one object over the table repositories, whose
writes about one fact (a message, its receipt, its audit events) commit together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from services.core.envelope import ProtectedHeader
from services.node.store.attachments import AttachmentFetches, AttachmentPurges, SentAttachments
from services.node.store.audit import AuditOutbox, Witnessed
from services.node.store.casework import Cases, Forwards
from services.node.store.db import Database
from services.node.store.messages import Messages
from services.node.store.node_state import NodeState
from services.node.store.outbox import Outbox
from services.node.store.parked import ParkedTable
from services.node.store.records import (
    Event,
    OutboxItem,
    Outcome,
    Outgoing,
    RecipientStatus,
    StoredMessage,
    Unanswered,
)
from services.node.store.refusals import Alerts, QuarantineItem, QuarantineOutbox, Rejections


class Store(Database):
    """One node's SQLite file: its repositories, and the writes that span several of them."""

    def __init__(self, path: Path, *, durable: bool = False, busy_timeout_s: float = 10.0) -> None:
        super().__init__(path, durable=durable, busy_timeout_s=busy_timeout_s)
        self.messages_table = Messages(self)
        self.outbox = Outbox(self)
        self.audit_outbox = AuditOutbox(self)
        self.witness = Witnessed(self)
        self.casework = Cases(self)
        self.forwards = Forwards(self)
        self.rejections_table = Rejections(self)
        self.quarantine_outbox = QuarantineOutbox(self)
        self.alerts_table = Alerts(self)
        self.parked = ParkedTable(self)
        self.node_state = NodeState(self)
        self.attachment_fetches = AttachmentFetches(self)
        self.sent_attachments = SentAttachments(self)
        self.attachment_purges = AttachmentPurges(self)

    # -- writes that span tables ------------------------------------------------------------------

    def add_outgoing(self, out: Outgoing, *, now: datetime, events: Sequence[Event] = ()) -> None:
        """Store a sealed outgoing message and queue it for every recipient, in one transaction."""
        with self.tx():
            self._queue(out, now=now)
            self.audit_outbox.queue(events)

    def add_incoming(
        self,
        h: ProtectedHeader,
        envelope: bytes,
        envelope_sha256: str,
        *,
        stored_at: datetime,
        stream_seq: int,
        answer: Outgoing | None,
        outcome: Outcome | None = None,
        now: datetime,
        events: Sequence[Event] = (),
    ) -> None:
        """Store an accepted envelope and, in the same transaction, queue our signed receipt or
        record the outcome the envelope reports (when it is a receipt or a rejection)."""
        with self.tx():
            self.messages_table.insert(
                h, direction="in", envelope=envelope, envelope_sha256=envelope_sha256,
                stored_at=stored_at, stream_seq=stream_seq,
            )  # fmt: skip
            if answer is not None:
                self._queue(answer, now=now)
            if outcome is not None:
                self.messages_table.record_outcome(outcome)
            self.audit_outbox.queue(events)

    def _queue(self, out: Outgoing, *, now: datetime) -> None:
        h = out.header
        self.messages_table.insert(
            h, direction="out", envelope=out.envelope, envelope_sha256=out.envelope_sha256,
            stored_at=now, local_copy=out.local_copy,
        )  # fmt: skip
        self.outbox.queue(h.msg_id, h.recipients)
        if out.attachments:
            self.sent_attachments.record(h.msg_id, out.attachments, out.attachment_bytes)

    def record_rejection(
        self,
        *,
        stream_seq: int,
        publisher: str,
        envelope_sha256: str,
        msg_id: str | None,
        kind: str | None,
        reason: str,
        detail: str,
        now: datetime,
        answer: Outgoing | None,
        subject: str,
        envelope: bytes,
        events: Sequence[Event] = (),
    ) -> bool:
        """Record that we refused the envelope at ``stream_seq`` (once), queue our answer, and
        keep the envelope until its quarantine copy is filed.

        Returns False when it was already recorded (a redelivery): nothing is queued twice.
        """
        with self.tx():
            first = self.rejections_table.record(
                stream_seq=stream_seq, publisher=publisher, envelope_sha256=envelope_sha256,
                msg_id=msg_id, kind=kind, reason=reason, detail=detail, now=now,
                answer_msg_id=None if answer is None else answer.header.msg_id,
            )  # fmt: skip
            self.quarantine_outbox.hold(stream_seq, envelope_sha256, subject, envelope)
            if not first:
                return False
            if answer is not None:
                self._queue(answer, now=now)
            self.audit_outbox.queue(events)
            return True

    def quarantine_filed(
        self, items: Sequence[QuarantineItem], events: Sequence[Event] = ()
    ) -> None:
        """The hub stored these quarantine copies: the fact, its events, and the envelopes let go,
        in one transaction."""
        refusals = [(i.stream_seq, i.envelope_sha256) for i in items]
        with self.tx():
            self.audit_outbox.queue(events)
            self.rejections_table.mark_quarantined(refusals)
            self.quarantine_outbox.filed(refusals)

    def record_open(
        self, msg_id: str, officer: str, now: datetime, events: Sequence[Event] = ()
    ) -> None:
        with self.tx():
            self.audit_outbox.queue(events)
            self.messages_table.record_open(msg_id, officer, now)

    # -- one table: the names callers have used since the store was one module -----------------

    def add_events(self, events: Sequence[Event]) -> None:
        self.audit_outbox.queue(events)

    def due_events(self, now: float, limit: int) -> list[tuple[str, bytes, int]]:
        return self.audit_outbox.due(now, limit)

    def event_sent(self, event_ids: Sequence[str]) -> None:
        self.audit_outbox.mark_sent(event_ids)

    def events_retry(self, retries: Sequence[tuple[str, float]]) -> None:
        self.audit_outbox.mark_retry(retries)

    def pending_events(self) -> int:
        return self.audit_outbox.pending()

    def witnessed(self) -> str | None:
        return self.witness.get()

    def set_witnessed(self, size: int, note: str) -> None:
        self.witness.set(size, note)

    def due(self, now: float, limit: int) -> list[OutboxItem]:
        return self.outbox.due(now, limit)

    def next_due_at(self) -> float | None:
        return self.outbox.next_due_at()

    def next_answer_due_at(self) -> float | None:
        return self.outbox.next_answer_due_at()

    def mark_sent(
        self,
        acks: list[tuple[str, str, int]],
        now: datetime,
        answer_wait_s: float | None = None,
    ) -> None:
        self.outbox.mark_sent(acks, now, answer_wait_s)

    def unanswered(self, now: float, limit: int) -> list[Unanswered]:
        return self.outbox.unanswered(now, limit)

    def send_again(self, rows: Sequence[tuple[str, str]], now: float) -> None:
        self.outbox.send_again(rows, now)

    def stop_awaiting(self, rows: Sequence[tuple[str, str]]) -> None:
        self.outbox.stop_awaiting(rows)

    def answer_again(self, msg_id: str, publisher: str, now: float) -> str | None:
        return self.outbox.answer_again(msg_id, publisher, now)

    def mark_retry(self, retries: Sequence[tuple[str, str, str, float]]) -> None:
        self.outbox.mark_retry(retries)

    def case(self, family: str, key: str) -> tuple[str, str | None] | None:
        return self.casework.get(family, key)

    def put_case(
        self, family: str, key: str, state: str, *, open: bool, case_id: str | None, now: datetime
    ) -> None:
        self.casework.put(family, key, state, open=open, case_id=case_id, now=now)

    def cases(
        self, family: str, *, open_only: bool = False, key_suffix: str | None = None
    ) -> list[tuple[str, str, str | None]]:
        return self.casework.of_family(family, open_only=open_only, key_suffix=key_suffix)

    def clear_cases(self) -> None:
        self.casework.clear()

    def add_forward(
        self, copy_msg_id: str, original_msg_id: str, officer: str, now: datetime
    ) -> None:
        self.forwards.add(copy_msg_id, original_msg_id, officer, now)

    def original_of(self, copy_msg_id: str) -> str | None:
        return self.forwards.original_of(copy_msg_id)

    def record_alert(self, source: str, detail: str, now: datetime) -> None:
        self.alerts_table.record(source, detail, now)

    def alerts(self) -> list[tuple[str, str, str]]:
        return self.alerts_table.all()

    def refusal_of_copy(self, envelope_sha256: str, publisher: str) -> dict[str, Any] | None:
        return self.rejections_table.of_copy(envelope_sha256, publisher)

    def rejection_at(self, stream_seq: int, envelope_sha256: str) -> dict[str, Any] | None:
        return self.rejections_table.at(stream_seq, envelope_sha256)

    def rejections(self) -> list[dict[str, Any]]:
        return self.rejections_table.all()

    def set_state(self, name: str, value: object, now: datetime) -> None:
        self.node_state.set(name, value, now)

    def state(self, name: str) -> tuple[Any, datetime] | None:
        """A fact the node keeps about itself, and when it was written."""
        return self.node_state.get(name)

    def message(self, msg_id: str) -> StoredMessage | None:
        return self.messages_table.get(msg_id)

    def envelope_hash(self, msg_id: str) -> str | None:
        return self.messages_table.envelope_hash(msg_id)

    def message_with_hash(self, envelope_sha256: str) -> tuple[str, str, int | None] | None:
        return self.messages_table.with_hash(envelope_sha256)

    def has_message(self, msg_id: str) -> bool:
        return self.messages_table.envelope_hash(msg_id) is not None

    def messages(
        self,
        *,
        direction: str | None = None,
        case_id: str | None = None,
        kind: str | None = None,
        party: str | None = None,
        unread: bool = False,
        include_protocol: bool = False,
        limit: int = 1000,
    ) -> list[StoredMessage]:
        """Stored messages, oldest first, narrowed by each filter given."""
        return self.messages_table.listing(
            direction=direction, case_id=case_id, kind=kind, party=party, unread=unread,
            include_protocol=include_protocol, limit=limit,
        )  # fmt: skip

    def message_ids_matching(self, fragment: str, limit: int = 20) -> list[str]:
        """The msg_ids beginning or ending with ``fragment``, at most ``limit``."""
        return self.messages_table.ids_matching(fragment, limit)

    def messages_of_families(self, families: Sequence[str]) -> list[StoredMessage]:
        return self.messages_table.of_families(families)

    def message_ids_of_families(self, families: Sequence[str]) -> list[str]:
        return self.messages_table.ids_of_families(families)

    def recipient_statuses(self, msg_id: str) -> list[RecipientStatus]:
        return self.messages_table.recipient_statuses(msg_id)

    def first_answer(self, msg_id: str, recipient: str) -> str | None:
        return self.messages_table.first_answer(msg_id, recipient)

    def opens(self, msg_id: str) -> list[tuple[str, str]]:
        return self.messages_table.opens(msg_id)
