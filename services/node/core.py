"""What a node does with messages, without the broker: compose and seal into the outbox; decide
what to do with each delivered envelope; open stored messages for an officer.

The broker-facing shell (``services/node/app.py``) calls :meth:`NodeCore.process` for each delivery
and carries out the :class:`Verdict`: acknowledge, or quarantine and terminate, or ask again later.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Unpack

from schemas import Body, HandlingCode, ReasonCode
from schemas.audit import EventType
from schemas.protocol import DeliveryReceipt, Rejection
from schemas.reasons import REASON_TEXT
from services.core import subjects
from services.core.directory import Directory, DirectoryError
from services.core.envelope import (
    EnvelopeError,
    OpenedEnvelope,
    ProtectedHeader,
    SealOptions,
    open_envelope,
    open_sender_copy,
    peek_header,
    seal_message,
)
from services.core.events import make_event, sign_event, signature_digest
from services.core.keys import NodeKeys
from services.core.logs import get_logger
from services.node.casework import Casework, Effects, IllegalTransition, NotYet
from services.node.health import is_store_failure
from services.node.parking import (
    DEFAULT_DEFERRAL,
    DeferralBudget,
    Parked,
    ParkingLot,
    SpentBudgets,
)
from services.node.store import (
    Outcome,
    Outgoing,
    Store,
    StoredMessage,
    iso,
    pack_copy,
    unpack_copy,
)
from services.node.workflows import confidentiality as art12
from services.node.workflows.tracing import DEFAULT_POLICY, TracingPolicy

log = get_logger("cifta.node")

PROTOCOL_FAMILY = "protocol."


class ComposeError(Exception):
    """A message could not be composed: unknown recipient, sending to oneself, bad options, a
    step its procedure does not allow."""


class Article12Refusal(ComposeError):
    """Article XII forbids this forwarding or export for now; the message says what lifts it."""

    def __init__(self, refused: art12.Refused) -> None:
        super().__init__(f"{refused.rule}. To proceed: {refused.remedy}")
        self.refused = refused


class ClockError(ComposeError):
    """This node's clock is too far from the hub's to date a message others will accept."""


#: A message's date the recipients refuse (future_dated, expired): a receipt refused for one of
#: these is answered, so that the node whose clock is wrong hears of it (design section 5).
DATE_REASONS = frozenset({ReasonCode.FUTURE_DATED, ReasonCode.EXPIRED})
RECEIPT_KIND = "protocol.receipt"
CLOCK_STATE = "clock_offset"
#: A measurement of the clock older than this says nothing of the clock now.
CLOCK_MEASUREMENT_TTL = timedelta(hours=24)


class RebuildRefused(Exception):
    """A rebuild of the procedures would drop messages this node sent; nothing was changed."""

    def __init__(self, why: Counter[str]) -> None:
        count = sum(why.values())
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(why.items()))
        super().__init__(
            f"casework not rebuilt: {count} message(s) this node sent cannot be opened "
            f"({reasons}), and the procedures they started would be lost. Nothing was changed; "
            "restore the key file that holds their keys (a keys.replaced-*.json, a backup) and "
            "run it again"
        )
        self.count = count
        self.reasons = dict(why)


class Action(Enum):
    ACK = "ack"  # stored (or already stored): done
    TERM = "term"  # refused for good: quarantine a copy first, then terminate
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


class NodeCore:
    """A node's message logic over its keys, its directory and its store."""

    def __init__(
        self,
        keys: NodeKeys,
        directory: Directory,
        store: Store,
        *,
        clock: Callable[[], datetime],
        require_pq_signature: bool = False,
        tracing_policy: TracingPolicy = DEFAULT_POLICY,
        deferral: DeferralBudget = DEFAULT_DEFERRAL,
        clock_tolerance_s: float = 120.0,
    ) -> None:
        self.party = keys.party
        self.keys = keys
        self.directory = directory
        self.store = store
        self.clock = clock
        self.require_pq_signature = require_pq_signature
        self.casework = Casework(keys.party, store, tracing_policy)
        self.parking = ParkingLot(store, deferral)
        self._budget_spent = SpentBudgets()
        self.clock_tolerance_s = clock_tolerance_s

    # -- sending ---------------------------------------------------------------------------------

    def compose(
        self,
        body: Body,
        to: Sequence[str],
        *,
        handling: HandlingCode,
        confidential: bool = False,
        handling_note: str | None = None,
        case_id: str | None = None,
        in_reply_to: str | None = None,
        expires_at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> ProtectedHeader:
        """Seal ``body`` for ``to`` and queue it in the outbox; return its header. The header is
        dated ``created_at`` (by default, now): a body that states times computed from its own
        creation (a tracing request's due date) is sealed at that very instant."""
        if body.KIND.startswith(PROTOCOL_FAMILY):
            raise ComposeError("receipts and rejections are sent by the node itself")
        return self._queue(
            body,
            to,
            handling=handling,
            confidential=confidential,
            handling_note=handling_note,
            case_id=case_id,
            in_reply_to=in_reply_to,
            expires_at=expires_at,
            now=created_at,
        )

    def _seal(
        self, body: Body, to: Sequence[str], *, keep_copy: bool, **options: Unpack[SealOptions]
    ) -> Outgoing:
        """The envelope for ``to`` and, with ``keep_copy``, our own copy of its content key.

        Officers' messages keep the copy so that the sender can read what it sent; the node's
        receipts and rejections do not need one (what they say is in the store already).
        """
        recipients = list(dict.fromkeys(to))
        if not recipients:
            raise ComposeError("no recipient")
        if self.party in recipients:
            raise ComposeError("a node does not send to itself")
        now = options["now"] = options.get("now") or self.clock()
        try:
            keys = [self.directory.encryption_key(r, now) for r in recipients]
        except DirectoryError as exc:
            raise ComposeError(str(exc)) from None
        try:
            sealed = seal_message(
                body, sender=self.keys, recipients=keys, keep_sender_copy=keep_copy, **options
            )
        except ValueError as exc:
            raise ComposeError(str(exc)) from None
        copy = None if sealed.sender_copy is None else pack_copy(*sealed.sender_copy)
        sha = hashlib.sha256(sealed.envelope).hexdigest()
        return Outgoing(sealed.header, sealed.envelope, sha, copy)

    def event(
        self,
        kind: EventType,
        header: ProtectedHeader,
        envelope: bytes,
        *,
        officer: str | None = None,
        reason: str | None = None,
        opened: OpenedEnvelope | None = None,
    ) -> tuple[str, bytes]:
        """A signed audit event about one message, ready for the audit outbox (its digests from
        ``opened`` when the envelope was just opened, else computed from ``envelope``)."""
        if opened is not None:
            digests = opened.envelope_hash, opened.signature_sha256
        else:
            digests = hashlib.sha256(envelope).hexdigest(), signature_digest(envelope)
        ev = make_event(
            kind, header, actor=self.party, envelope_sha256=digests[0],
            signature_sha256=digests[1], at=self.clock(), officer=officer, reason=reason,
        )  # fmt: skip
        return ev.event_id, sign_event(ev, self.keys.signing)

    def _queue(
        self,
        body: Body,
        to: Sequence[str],
        events: Sequence[tuple[str, bytes]] = (),
        **options: Unpack[SealOptions],
    ) -> ProtectedHeader:
        problem = self.clock_problem()
        if problem is not None:
            raise ClockError(problem)
        with self.store.transaction():  # the message, its procedure's state, what follows
            out = self._seal(body, to, keep_copy=True, **options)
            header, envelope = out.header, out.envelope
            try:
                effects = self.casework.sent(header, body)
            except IllegalTransition as exc:
                raise ComposeError(f"{header.kind}: {exc}") from None
            events = [*events, *self._noted(effects)]
            self.store.add_outgoing(out, now=self.clock(), events=events)
            self._carry_out(effects)
        log.info(
            "message_queued",
            msg_id=header.msg_id,
            kind=header.kind,
            recipients=header.recipients,
            handling=header.handling.value,
            confidential=header.confidential,
            bytes=len(envelope),
        )
        return header

    def clock_problem(self) -> str | None:
        """Why this node must not date messages now: its clock, as last measured against the
        hub's by the running node, is further off than the tolerance (None: it is not)."""
        measured = self.store.state(CLOCK_STATE)
        if measured is None:
            return None
        value, at = measured
        offset = float(value["offset_s"])
        if abs(offset) <= self.clock_tolerance_s or self.clock() - at > CLOCK_MEASUREMENT_TTL:
            return None
        side = "ahead of" if offset > 0 else "behind"
        return (
            f"this node's clock is {abs(offset):.0f} s {side} the hub's (measured {iso(at)}; "
            f"tolerance {self.clock_tolerance_s:.0f} s): set it right (NTP) before sending, "
            "other states would refuse what it dates"
        )

    # -- receiving -------------------------------------------------------------------------------

    def process(self, d: Delivery) -> Verdict:
        """Decide what to do with one delivered envelope, storing what must be stored.

        Idempotent: a redelivery of an envelope already stored or already refused changes nothing.
        """
        publisher = publisher_of(d.subject)
        sha = hashlib.sha256(d.data).hexdigest()
        prior = self.store.rejection_at(d.stream_seq, sha)
        if prior is not None:  # refused before; the quarantine copy may not have been filed
            reason = ReasonCode(prior["reason"])
            return Verdict(Action.TERM, reason, prior["detail"], prior["msg_id"], duplicate=True)
        known = self.store.message_with_hash(sha)
        if known is not None:  # the same bytes again: a redelivery, or a publish retried late
            return Verdict(Action.ACK, msg_id=known[0], kind=known[1], duplicate=True)
        if not d.parked and self.parking.holds(d.stream_seq, sha):  # parked, then redelivered
            return Verdict(Action.ACK, duplicate=True, deferred=True)

        try:
            opened = open_envelope(
                d.data,
                keys=self.keys,
                directory=self.directory,
                is_replay=self.store.has_message,
                now=self.clock(),
                stored_at=d.stored_at,
                require_pq_signature=self.require_pq_signature,
            )
        except EnvelopeError as exc:
            if exc.reason is ReasonCode.UNKNOWN_SENDER_KEY and not d.final:
                # The broker let the publisher in, so it is enrolled; our copy of the directory
                # may simply lag behind (a new state, a rotated key). Try again later, and refuse
                # only at the end of the publisher's deferral budget.
                return self._defer(d, publisher, sha, exc.reason, exc.detail, exc.header)
            if exc.reason in DATE_REASONS and exc.header is not None \
                    and exc.header.kind == RECEIPT_KIND:  # fmt: skip
                self.store.record_alert(
                    "clock",
                    f"{publisher}'s receipt {exc.header.msg_id} refused as {exc.reason.value} "
                    f"({exc.detail}): {publisher}'s clock or this node's is wrong",
                    self.clock(),
                )
            if exc.reason is ReasonCode.SCHEMA_INVALID:
                # The validator's message may quote decrypted content: it goes to the sender
                # sealed, and only its location into logs, the store and the quarantine header.
                clear = exc.detail.split(":", 1)[0] + ": does not validate"
                return self.reject(
                    d, publisher, sha, exc.reason, clear, exc.header, sealed_detail=exc.detail
                )
            return self.reject(d, publisher, sha, exc.reason, exc.detail, exc.header)
        h = opened.header
        if h.sender != publisher:
            # An authentic envelope of another state, relayed by ``publisher``: not accepted.
            detail = f"signed by {h.sender}, published by {publisher}"
            return self.reject(d, publisher, sha, ReasonCode.SENDER_MISMATCH, detail, h)

        answer, outcome, events = None, None, []
        if h.kind.startswith(PROTOCOL_FAMILY):
            outcome = answer_outcome(opened)  # a receipt or rejection of one of ours
            self._alert_if_receipt_refused(outcome)
        else:
            receipt = DeliveryReceipt(msg_id=h.msg_id, envelope_sha256=sha, stored_at=d.stored_at)
            answer = self._seal(
                receipt, [h.sender], keep_copy=False, handling=HandlingCode.H0,
                in_reply_to=h.msg_id, case_id=h.case_id,
            )  # fmt: skip
            events.append(self.event(EventType.DELIVERED, h, d.data, opened=opened))
        try:
            # one transaction: the envelope, the state of its procedure, and our receipt
            # queued (or the outcome it reports)
            with self.store.transaction():
                self.casework.received(h, opened.body)
                self.store.add_incoming(
                    h, d.data, sha, stored_at=d.stored_at, stream_seq=d.stream_seq,
                    answer=answer, outcome=outcome, now=self.clock(), events=events,
                )  # fmt: skip
                if h.case_id is not None:  # a step parked for want of this one may go on now
                    self.parking.wake(case_id=h.case_id)
        except IllegalTransition as exc:
            # What the procedure says (ids, parties, lines) is the case's business: it goes to
            # the sender sealed; logs, the store and the quarantine header get the kind only.
            clear = f"{h.kind} does not fit the state of its procedure"
            if isinstance(exc, NotYet) and not d.final:
                # the message it depends on may still be on its way here
                return self._defer(d, publisher, sha, ReasonCode.ILLEGAL_TRANSITION, clear, h)
            sealed = str(exc)
            if isinstance(exc, NotYet):
                sealed += f" (after {d.num_delivered} delivery attempts)"
            return self.reject(d, publisher, sha, ReasonCode.ILLEGAL_TRANSITION, clear, h,
                               sealed_detail=sealed)  # fmt: skip
        log.info(
            "envelope_stored",
            msg_id=h.msg_id,
            kind=h.kind,
            sender=h.sender,
            recipients=h.recipients,
            handling=h.handling.value,
            confidential=h.confidential,
            stream_seq=d.stream_seq,
            receipt=None if answer is None else answer.header.msg_id,
        )
        return Verdict(Action.ACK, msg_id=h.msg_id, kind=h.kind)

    def process_batch(self, deliveries: Sequence[Delivery]) -> list[Verdict | Exception]:
        """:meth:`process` for a group of deliveries in one transaction (group commit), each in
        a savepoint of it, so that a delivery that fails is undone alone. A failing commit fails
        them all (the caller acknowledges nothing it was not told is committed)."""
        out: list[Verdict | Exception] = []
        with self.store.transaction():
            for d in deliveries:
                try:
                    with self.store.savepoint():
                        out.append(self.process(d))
                except Exception as exc:  # the caller decides: the store's fault or this one's
                    if not self.store.db.in_transaction:
                        raise  # SQLite ended the whole transaction (a full disk): all failed
                    out.append(exc)
        return out

    def _defer(
        self,
        d: Delivery,
        publisher: str,
        sha: str,
        reason: ReasonCode,
        detail: str,
        header: ProtectedHeader | None,
    ) -> Verdict:
        """Park what cannot be decided yet (design section 5): out of the hub's shared in-flight
        window, within the publisher's own budget; refused at once when that budget is spent."""
        msg_id, kind = (header.msg_id, header.kind) if header is not None else (None, None)
        if d.parked:  # tried again from the lot, still undecided: the caller reschedules it
            return Verdict(Action.NAK, reason, detail, msg_id, kind)
        if not self.parking.room_for(publisher, len(d.data)):
            b = self.parking.budget
            spent = (
                f"{detail}; {publisher}'s deferral budget at this node is spent "
                f"({b.max_per_sender} envelopes, {b.max_bytes_per_sender} bytes)"
            )
            # A flood is summarised: one log line, and one signed rejection, per state and
            # minute; each envelope is still recorded, quarantined and audited.
            first = self._budget_spent.note(publisher)
            return self.reject(d, publisher, sha, reason, spent, header, quiet=True, reply=first)
        self.parking.park(
            stream_seq=d.stream_seq, envelope_sha256=sha, publisher=publisher,
            subject=d.subject, data=d.data, stored_at=d.stored_at, reason=reason.value,
            detail=detail, case_id=None if header is None else header.case_id,
        )  # fmt: skip
        log.debug("envelope_parked", reason=reason.value, msg_id=msg_id, kind=kind,
                  publisher=publisher, stream_seq=d.stream_seq)  # fmt: skip
        return Verdict(Action.ACK, reason, detail, msg_id, kind, deferred=True)

    def retry_parked(self, limit: int = 64) -> list[tuple[Parked, Delivery, Verdict]]:
        """Try the parked envelopes that are due again: stored ones leave the lot, undecided ones
        are rescheduled, and refused ones (TERM) are the caller's to quarantine and release."""
        now = time.time()
        out = []
        for p in self.parking.due(now, limit):
            d = Delivery(
                subject=p.subject, data=p.data, stream_seq=p.stream_seq,
                num_delivered=p.attempts + 1, stored_at=p.stored_at,
                final=p.expired(self.parking.budget, now), parked=True,
            )  # fmt: skip
            try:
                with self.store.savepoint():
                    verdict = self.process(d)
            except Exception as exc:
                if is_store_failure(exc):
                    raise  # the store, not this envelope: the caller's gate decides
                # a fault met by this envelope alone must not hold up the rest of the lot
                verdict = self._parked_failed(p, d, exc)
            if verdict.action is Action.NAK:
                self.parking.retry_later(p, verdict.detail)
            elif verdict.action is Action.ACK:
                self.parking.release(p)
            out.append((p, d, verdict))
        return out

    def _parked_failed(self, p: Parked, d: Delivery, exc: Exception) -> Verdict:
        """A parked envelope whose processing failed: tried again on its schedule, and refused as
        ``processing_failed`` at its last try, as a delivery from the hub would be."""
        log.error("parked_retry_failed", stream_seq=p.stream_seq, error=type(exc).__name__,
                  last_attempt=d.final)  # fmt: skip
        if not d.final:
            detail = f"{type(exc).__name__} in {d.num_delivered} attempts"
            return Verdict(Action.NAK, ReasonCode.PROCESSING_FAILED, detail)
        return self.refuse_failed(d, exc)

    def refuse_failed(self, d: Delivery, exc: Exception) -> Verdict:
        """Refuse a delivery whose processing failed in every attempt: ``processing_failed``,
        answered to its publisher (named by the header, read unverified, when it parses)."""
        try:  # unverified, but enough for the publisher to know which message it was
            header: ProtectedHeader | None = peek_header(d.data)
        except EnvelopeError:
            header = None
        return self.reject(
            d, publisher_of(d.subject), hashlib.sha256(d.data).hexdigest(),
            ReasonCode.PROCESSING_FAILED, f"{type(exc).__name__} in {d.num_delivered} attempts",
            header,
        )  # fmt: skip

    def reject(
        self,
        d: Delivery,
        publisher: str,
        sha: str,
        reason: ReasonCode,
        detail: str,
        header: ProtectedHeader | None,
        *,
        sealed_detail: str | None = None,
        quiet: bool = False,
        reply: bool = True,
    ) -> Verdict:
        """Record a refusal once, answer the publisher with a signed rejection, and say TERM.

        The answer goes to the account that published the envelope (a broker fact), never to a
        sender named in an unverified header. Protocol messages are never answered, so two nodes
        cannot bounce rejections at each other.
        """
        msg_id = header.msg_id if header is not None else None
        kind = header.kind if header is not None else None
        # A rejection is never answered (two nodes must not bounce them); a receipt only when
        # refused for its date, so that its sender learns that a clock is wrong.
        answerable = reply and (
            not (kind or "").startswith(PROTOCOL_FAMILY)
            or (kind == RECEIPT_KIND and reason in DATE_REASONS)
        )
        answer = None
        if publisher and answerable:
            rejection = Rejection(
                msg_id=msg_id, envelope_sha256=sha, reason=reason,
                detail=(sealed_detail or detail)[:500], rejected_at=self.clock(),
            )  # fmt: skip
            try:
                answer = self._seal(
                    rejection, [publisher], keep_copy=False, handling=HandlingCode.H0,
                    in_reply_to=msg_id,
                )  # fmt: skip
            except ComposeError:
                answer = None  # the publisher has no key in the directory: record only
        events = []
        if header is not None:  # an envelope too damaged to name a message: recorded here only
            events.append(self.event(EventType.REJECTED, header, d.data, reason=reason.value))
        first = self.store.record_rejection(
            stream_seq=d.stream_seq, publisher=publisher, envelope_sha256=sha, msg_id=msg_id,
            kind=kind, reason=reason.value, detail=detail, now=self.clock(), answer=answer,
            events=events,
        )  # fmt: skip
        if first and not quiet:
            log.warning(
                "envelope_rejected",
                reason=reason.value,
                detail=detail,
                msg_id=msg_id,
                kind=kind,
                publisher=publisher,
                stream_seq=d.stream_seq,
                rejection=None if answer is None else answer.header.msg_id,
            )
        return Verdict(Action.TERM, reason, detail, msg_id=msg_id, kind=kind)

    def _alert_if_receipt_refused(self, outcome: Outcome | None) -> None:
        """A recipient refused one of this node's receipts for its date: this clock is suspect."""
        if outcome is None or outcome.status != "rejected" or outcome.reason is None:
            return
        if ReasonCode(outcome.reason) not in DATE_REASONS:
            return
        ours = self.store.message(outcome.msg_id)
        if ours is not None and ours.kind == RECEIPT_KIND:
            detail = (
                f"{outcome.recipient} refused this node's receipt {outcome.msg_id} as "
                f"{outcome.reason}: check this node's clock"
            )
            self.store.record_alert("clock", detail, self.clock())
            log.error("receipt_refused_for_its_date", msg_id=outcome.msg_id,
                      recipient=outcome.recipient, reason=outcome.reason)  # fmt: skip

    def reply(
        self,
        msg_id: str,
        body: Body,
        *,
        to_all: bool = False,
        handling: HandlingCode | None = None,
        confidential: bool | None = None,
        handling_note: str | None = None,
    ) -> ProtectedHeader:
        """Answer a stored message in its case: to its sender (and its other recipients with
        ``to_all``), with its handling code and confidentiality unless told otherwise."""
        original = self.store.message(msg_id)
        if original is None:
            raise ComposeError(f"no message {msg_id}")
        if original.direction == "in":
            to = [original.sender] + (original.recipients if to_all else [])
        else:
            to = list(original.recipients)
        to = [p for p in dict.fromkeys(to) if p != self.party]
        answered = peek_header(original.envelope)
        if handling is None:  # the answer keeps the restrictions of what it answers
            handling = HandlingCode(original.handling)
            handling_note = handling_note or answered.handling_note
        if body.KIND.startswith(PROTOCOL_FAMILY):
            raise ComposeError("receipts and rejections are sent by the node itself")
        replied = self.event(EventType.REPLIED, answered, original.envelope)
        return self._queue(
            body,
            to,
            events=[replied],
            handling=handling,
            confidential=original.confidential if confidential is None else confidential,
            handling_note=handling_note,
            case_id=original.case_id,
            in_reply_to=original.msg_id,
        )

    # -- the Convention's procedures --------------------------------------------------------------

    def _noted(self, effects: Effects) -> list[tuple[str, bytes]]:
        """The audit events of Art. XII steps, each about the message it concerns."""
        out = []
        for n in effects.noted:
            subject = self.store.message(n.subject_msg_id)
            if subject is not None:
                out.append(self.event(n.event, peek_header(subject.envelope), subject.envelope))
        return out

    def _carry_out(self, effects: Effects) -> None:
        """Send what a procedure asks to send, and raise its alerts (inside the caller's
        transaction)."""
        for alert in effects.alerts:
            self.store.record_alert("casework", alert, self.clock())
            log.warning("casework_alert", detail=alert)
        for f in effects.follow_ups:
            self._queue(
                f.body, f.to, handling=f.handling, confidential=f.confidential,
                case_id=f.case_id, in_reply_to=f.in_reply_to,
            )  # fmt: skip

    def tick(self) -> int:
        """Act on the deadlines that fell due (reminders, overdue notices, overdue receipts);
        returns how many messages it queued. One transaction per case: a case whose message
        cannot be sent (a party gone from the directory) does not hold up the others."""
        queued = 0
        for family, key in self.casework.watched():
            try:
                with self.store.transaction():
                    effects = self.casework.tick(family, key, self.clock())
                    self._carry_out(effects)
            except (ComposeError, IllegalTransition) as exc:
                log.error("deadline_not_acted_on", family=family, case=key, error=str(exc))
                continue
            queued += len(effects.follow_ups)
        return queued

    def forward(self, msg_id: str, to: Sequence[str], officer: str) -> ProtectedHeader:
        """Share a received message with other states, as Art. XII allows: an H2 message only
        with its originator's consent for those states. The copy keeps its handling."""
        message = self.store.message(msg_id)
        if message is None:
            raise ComposeError(f"no message {msg_id}")
        if message.direction != "in":
            raise ComposeError(f"{msg_id} was sent by this node: send it again instead")
        if not message.kind.startswith("info."):
            raise ComposeError(
                "only information exchanges (info.*) are forwarded; a procedure's messages go to "
                "its parties"
            )
        view = self.casework.received_view(message)
        assert view is not None
        refused = art12.may_forward(view, to, self.clock())
        if refused is not None:
            log.info("forward_refused", msg_id=msg_id, to=list(to), rule=refused.rule)
            raise Article12Refusal(refused)
        opened = self.open_stored(message)
        h = opened.header
        # the copy's own events (sent, stored, delivered) say where it went
        event = self.event(EventType.FORWARDED, h, message.envelope, officer=officer, opened=opened)
        with self.store.transaction():
            copy = self._queue(
                opened.body, to, events=[event], handling=h.handling,
                confidential=h.confidential, handling_note=h.handling_note, case_id=h.case_id,
            )  # fmt: skip
            self.store.add_forward(copy.msg_id, msg_id, officer, self.clock())
        return copy

    def export(
        self,
        msg_id: str,
        officer: str,
        *,
        judicial: bool,
        write: Callable[[OpenedEnvelope], None] | None = None,
    ) -> OpenedEnvelope:
        """Take a received message out of the network (a file for a court or another agency), as
        Art. XII allows. ``write`` puts it where it goes; the export is recorded as an audit
        event once that succeeded (a failed write leaves no export on record)."""
        message = self.store.message(msg_id)
        if message is None:
            raise ComposeError(f"no message {msg_id}")
        opened = self.open_stored(message)
        # a forwarded copy is exported under the rules of the message it copies
        original = self.store.original_of(msg_id)
        source = self.store.message(original) if original is not None else message
        view = None if source is None else self.casework.received_view(source)
        if view is not None:  # what we wrote ourselves is ours to export
            refused = art12.may_export(view, judicial=judicial, at=self.clock())
            if refused is not None:
                log.info("export_refused", msg_id=msg_id, judicial=judicial, rule=refused.rule)
                raise Article12Refusal(refused)
        if write is not None:
            write(opened)
        event = self.event(
            EventType.EXPORTED, opened.header, message.envelope, officer=officer, opened=opened
        )
        self.store.add_events([event])
        log.info("message_exported", msg_id=msg_id, judicial=judicial, officer=officer)
        return opened

    def rebuild_casework(self) -> tuple[int, int]:
        """Make the procedures' state again from the stored messages; (applied, skipped).

        Raises :class:`RebuildRefused`, changing nothing, when any message this node sent cannot
        be opened: the procedures it started would silently vanish. A received message that no
        longer opens is skipped and counted (it was checked when it arrived)."""
        from services.node.casework import FAMILIES

        # Opening every message takes a while: done before the write lock is taken, so that a
        # running node sharing the file is not held up to its busy timeout meanwhile.
        rebuild = _Rebuild()
        for m in self.store.messages_of_families(FAMILIES):
            rebuild.open(m, self.open_stored)
        with self.store.transaction():
            # What was stored while the rest was opened (a few messages at most) is opened
            # under the lock, so that the replay sees every message in the order taken.
            order = self.store.message_ids_of_families(FAMILIES)
            for msg_id in order:
                late = None if rebuild.seen(msg_id) else self.store.message(msg_id)
                if late is not None:
                    rebuild.open(late, self.open_stored)
            if rebuild.own:  # before replay clears anything: the transaction changes nothing
                raise RebuildRefused(rebuild.own)
            applied, skipped = self.casework.replay(rebuild.in_order(order))
        unreadable = len(rebuild.unreadable)
        log.info("casework_rebuilt", applied=applied, skipped=skipped, unreadable=unreadable)
        return applied, skipped + unreadable

    # -- reading ---------------------------------------------------------------------------------

    def open_stored(self, message: StoredMessage) -> OpenedEnvelope:
        """Open a stored message: what we received, or our local copy of what we sent.

        Checked again against the directory, as of the time the message was stored.
        """
        if message.direction == "out":
            if message.local_copy is None:
                raise ComposeError("the node's own receipts and rejections are not kept readable")
            kid, wrapped = unpack_copy(message.local_copy)
            # verified against the key the header names: the current one, or one this node
            # signed with before a rotation (its key history)
            named = peek_header(message.envelope).sender_kid
            signer = self.keys.signing_public_key(named)
            if signer is None:
                raise EnvelopeError(
                    ReasonCode.UNKNOWN_SENDER_KEY,
                    f"signed with key {named}, which is not in this node's key history",
                )
            return open_sender_copy(message.envelope, kid, wrapped, keys=self.keys, signer=signer)
        stored_at = datetime.fromisoformat(message.stored_at)
        return open_envelope(
            message.envelope,
            keys=self.keys,
            directory=self.directory,
            now=stored_at,
            stored_at=stored_at,
        )

    def read(self, msg_id: str, officer: str) -> tuple[StoredMessage, OpenedEnvelope]:
        """Open a message for an officer, recording who opened it and when."""
        message = self.store.message(msg_id)
        if message is None:
            raise KeyError(msg_id)
        opened = self.open_stored(message)
        event = self.event(
            EventType.OPENED, opened.header, message.envelope, officer=officer, opened=opened
        )
        self.store.record_open(msg_id, officer, self.clock(), events=[event])
        log.info("message_opened", msg_id=msg_id, kind=message.kind, officer=officer)
        return message, opened


class _Rebuild:
    """The messages a rebuild of the procedures opened, and those it could not open."""

    def __init__(self) -> None:
        self.opened: dict[str, tuple[ProtectedHeader, Body]] = {}
        self.unreadable: set[str] = set()
        self.own = Counter[str]()  # why messages this node sent cannot be opened

    def seen(self, msg_id: str) -> bool:
        return msg_id in self.opened or msg_id in self.unreadable

    def open(
        self, m: StoredMessage, open_stored: Callable[[StoredMessage], OpenedEnvelope]
    ) -> None:
        try:
            o = open_stored(m)
        except (EnvelopeError, ComposeError) as exc:
            # a key since lost, say: the rest is rebuilt, the operator told
            log.error("casework_message_unreadable", msg_id=m.msg_id, error=str(exc))
            if m.direction == "out":
                self.own[exc.reason.value if isinstance(exc, EnvelopeError) else str(exc)] += 1
            self.unreadable.add(m.msg_id)
            return
        self.opened[m.msg_id] = (o.header, o.body)

    def in_order(self, order: Sequence[str]) -> list[tuple[ProtectedHeader, Body]]:
        return [self.opened[i] for i in order if i in self.opened]


def answer_outcome(opened: OpenedEnvelope) -> Outcome | None:
    """What a received receipt or rejection says about one of our messages."""
    body, h = opened.body, opened.header
    if isinstance(body, DeliveryReceipt):
        return Outcome(body.msg_id, h.sender, "delivered", None, None, h.created_at,
                       h.msg_id, body.envelope_sha256)  # fmt: skip
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


__all__ = [
    "Action",
    "Article12Refusal",
    "ComposeError",
    "Delivery",
    "NodeCore",
    "RebuildRefused",
    "Verdict",
    "iso",
    "reason_text",
]
