"""Receiving: decide what to do with each delivered envelope (open, store, answer with a receipt
or a signed rejection, park what cannot be decided yet), one group of deliveries per commit."""

import contextlib
import hashlib
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from schemas import HandlingCode, ReasonCode
from schemas.audit import EventType
from schemas.protocol import PROTOCOL_FAMILY, DeliveryReceipt, Rejection
from services.core.envelope import (
    EnvelopeError,
    ProtectedHeader,
    open_envelope,
    peek_header,
)
from services.core.logs import get_logger
from services.node.casework import IllegalTransition, NotYet
from services.node.health import is_store_failure
from services.node.outbound import ComposeError, Outbound
from services.node.parking import (
    Parked,
    ParkingLot,
    SpentBudgets,
)
from services.node.store import (
    Outcome,
    Outgoing,
)
from services.node.verdicts import (
    DATE_REASONS,
    RECEIPT_KIND,
    Action,
    Delivery,
    Verdict,
    answer_outcome,
    publisher_of,
)

log = get_logger("cifta.node")


class _TakeAgain(Exception):
    """A delivery of a group taken together failed: roll the group back, to take it again."""


class Inbound(Outbound):
    """The receiving half of :class:`services.node.core.NodeCore`."""

    require_pq_signature: bool
    parking: ParkingLot
    _budget_spent: SpentBudgets

    def process(self, d: Delivery) -> Verdict:
        """Decide what to do with one delivered envelope, storing what must be stored.

        Idempotent: a redelivery of an envelope already stored or already refused changes nothing.
        """
        publisher = publisher_of(d.subject)
        sha = hashlib.sha256(d.data).hexdigest()
        prior = self.store.rejection_at(d.stream_seq, sha)
        if prior is not None:  # refused before; the quarantine copy may not have been filed
            self.store.quarantine_outbox.hold(d.stream_seq, sha, d.subject, d.data)
            reason = ReasonCode(prior["reason"])
            return Verdict(Action.TERM, reason, prior["detail"], prior["msg_id"], duplicate=True)
        known = self.store.message_with_hash(sha)
        if known is not None:  # the same bytes again: a redelivery, or a publish retried late
            if known[2] is not None and known[2] != d.stream_seq:
                self._answer_again(known[0], publisher)
            return Verdict(Action.ACK, msg_id=known[0], kind=known[1], duplicate=True)
        if not d.parked:
            # Parked here, then redelivered, or a copy its publisher sent again for want of our
            # answer (docs/envelope.md section 14): it waits with the first, on the same budget.
            if self.parking.holds(sha, publisher):
                return Verdict(Action.ACK, duplicate=True, deferred=True)
            # a copy of one refused here is not decided again: the refusal is answered again
            refused = self.store.refusal_of_copy(sha, publisher)
            if refused is not None:
                if refused["msg_id"] is not None:
                    self._answer_again(refused["msg_id"], publisher)
                return Verdict(Action.ACK, msg_id=refused["msg_id"], duplicate=True)

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
            # With attachments, the receipt waits until they are fetched and verified, and then
            # names them (docs/envelope.md section 13.5): services/node/attachments.py sends it.
            if not opened.body.attachments:
                answer = self.receipt(h, sha, d.stored_at)
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
                if opened.body.attachments and answer is None and outcome is None:
                    self.store.attachment_fetches.add(h.msg_id, h.sender, now=self.clock())
                if outcome is not None:
                    self._attachments_answered(outcome)
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
        self._log_once_committed(
            "info",
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

    def _answer_again(self, msg_id: str, publisher: str) -> None:
        """``publisher`` sent the stored message ``msg_id`` again (another copy in the inbox, not
        a redelivery of the one stored): it has not had our answer, which may have been lost on
        its way (reception awareness, docs/envelope.md section 14). Send that answer again; one
        not sent yet (waiting for attachments, or still queued) goes in its own time."""
        answer = self.store.answer_again(msg_id, publisher, time.time())
        event = "answer_sent_again" if answer else "copy_of_a_message_answered_before"
        self._log_once_committed("info", event, msg_id=msg_id, publisher=publisher, answer=answer)

    def receipt(
        self,
        h: ProtectedHeader,
        envelope_sha256: str,
        stored_at: datetime,
        attachments_sha256: Sequence[str] = (),
    ) -> Outgoing:
        """Our signed delivery receipt for the message ``h``, naming the attachments fetched."""
        receipt = DeliveryReceipt(
            msg_id=h.msg_id, envelope_sha256=envelope_sha256, stored_at=stored_at,
            attachments_sha256=list(attachments_sha256),
        )  # fmt: skip
        return self._seal(
            receipt, [h.sender], keep_copy=False, handling=HandlingCode.H0,
            in_reply_to=h.msg_id, case_id=h.case_id,
        )  # fmt: skip

    def process_batch(self, deliveries: Sequence[Delivery]) -> list[Verdict | Exception]:
        """:meth:`process` for a group of deliveries in one transaction (group commit). A
        failing commit fails them all (the caller acknowledges nothing it was not told is
        committed).

        The group is taken together, with no savepoint per delivery: a savepoint makes SQLite
        keep the first image of every page each delivery changes, about a tenth of the group's
        time (docs/performance.md). If one delivery fails, the whole group is rolled back and
        taken again one delivery at a time, each in a savepoint, so that the one failing is undone
        alone: a failure costs its group a second pass and nothing else. What a pass does
        outside the store (its log lines, the count of refusals of a spent budget) happens only
        once it commits, or is taken back with it. A group of one takes no savepoint: its
        transaction undoes it alone."""
        # the commit failed, or SQLite ended the transaction: nothing of the group was kept
        with self._counts_undone_on_failure():
            if len(deliveries) == 1:
                return [self._process_alone(deliveries[0])]
            together = self._process_together(deliveries)
            return together if together is not None else self._process_each(deliveries)

    def _process_together(self, deliveries: Sequence[Delivery]) -> list[Verdict | Exception] | None:
        """The group in one transaction, no savepoints; None if a delivery failed (rolled back)."""
        out: list[Verdict | Exception] = []
        failed: tuple[int, Exception] | None = None
        with (
            contextlib.suppress(_TakeAgain),
            self._counts_undone_on_failure(),
            self.store.transaction(),
        ):
            for i, d in enumerate(deliveries):
                try:
                    out.append(self.process(d))
                except Exception as exc:  # the caller decides: the store's fault or this one's
                    failed = i, exc
                    raise _TakeAgain from exc  # undo the group: the transaction rolls back
        if failed is None:
            return out
        at, error = failed
        log.warning("group_taken_again_one_by_one", deliveries=len(deliveries), failed_at=at,
                    stream_seq=deliveries[at].stream_seq, error=type(error).__name__)  # fmt: skip
        return None

    def _process_each(self, deliveries: Sequence[Delivery]) -> list[Verdict | Exception]:
        """The group in one transaction, each delivery in a savepoint of it, undone alone."""
        out: list[Verdict | Exception] = []
        with self.store.transaction():
            for d in deliveries:
                try:
                    with self._counts_undone_on_failure(), self.store.savepoint():
                        out.append(self.process(d))
                except Exception as exc:  # the caller decides: the store's fault or this one's
                    if not self.store.db.in_transaction:
                        raise  # SQLite ended the whole transaction (a full disk): all failed
                    out.append(exc)
        return out

    def _process_alone(self, d: Delivery) -> Verdict | Exception:
        """One delivery in a transaction of its own, which a failure rolls back whole. A
        savepoint would undo nothing more, and costs a group of one about a tenth of its time
        (SQLite keeps the first image of every page the delivery changes: 1,245 against 1,385
        us a message, docs/performance.md); at half the peak most groups hold one delivery."""
        decided = False
        try:
            with self._counts_undone_on_failure(), self.store.transaction():
                verdict = self.process(d)
                decided = True
        except Exception as exc:  # the caller decides: the store's fault or this one's
            if decided:
                raise  # the commit itself failed, as for a group
            return exc
        return verdict

    @contextlib.contextmanager
    def _counts_undone_on_failure(self) -> Iterator[None]:
        """What is counted in memory while deciding (a spent budget's refusals) is taken back
        with the store's work when the block fails: rolled back, nothing was refused."""
        spent = self._budget_spent.state()
        try:
            yield
        except BaseException:
            self._budget_spent.restore(spent)
            raise

    def _log_once_committed(self, level: str, event: str, **fields: object) -> None:
        """Log ``event`` once the delivery's transaction commits: a group rolled back and taken
        again, or a delivery undone, says nothing of what it did not keep."""
        emit = getattr(log, level)
        self.store.after_commit(lambda: emit(event, **fields))

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
            refused = self._budget_spent.note(publisher)
            if refused is not None:
                self._log_once_committed(
                    "warning", "deferral_budget_spent", publisher=publisher, refused=refused,
                    action="its deferrable envelopes are refused at once",
                )  # fmt: skip
            return self.reject(d, publisher, sha, reason, spent, header, quiet=True,
                               reply=refused is not None)  # fmt: skip
        self.parking.park(
            stream_seq=d.stream_seq, envelope_sha256=sha, publisher=publisher,
            subject=d.subject, data=d.data, stored_at=d.stored_at, reason=reason.value,
            detail=detail, case_id=None if header is None else header.case_id,
        )  # fmt: skip
        self._log_once_committed("debug", "envelope_parked", reason=reason.value,
                                 msg_id=msg_id, kind=kind, publisher=publisher,
                                 stream_seq=d.stream_seq)  # fmt: skip
        return Verdict(Action.ACK, reason, detail, msg_id, kind, deferred=True)

    def retry_parked(self, limit: int = 64) -> list[tuple[Parked, Delivery, Verdict]]:
        """Try the parked envelopes that are due again: stored ones leave the lot, undecided ones
        are rescheduled, and refused ones (TERM) leave it too, their envelopes held for their
        quarantine copies (the caller wakes the filer)."""
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
            else:  # stored, or refused with the envelope kept for its quarantine copy
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
        """Record a refusal once, keep the envelope for its quarantine copy, answer the publisher
        with a signed rejection, and say TERM.

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
            subject=d.subject, envelope=d.data, events=events,
        )  # fmt: skip
        if first and not quiet:
            self._log_once_committed(
                "warning",
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
            self._log_once_committed("error", "receipt_refused_for_its_date",
                                     msg_id=outcome.msg_id, recipient=outcome.recipient,
                                     reason=outcome.reason)  # fmt: skip

    def _attachments_answered(self, outcome: Outcome) -> None:
        """A recipient answered one of this node's messages with attachments: once it confirmed
        its own copy of every one (the receipt names exactly the objects sent, in order), or
        refused the message, what was stored for it at the hub is queued for purging. A receipt
        naming other objects purges nothing (retention drops them) and is alerted: the
        recipient's node is wrong, or lying about what it holds (docs/envelope.md 13.6)."""
        objects = self.store.sent_attachments.objects(outcome.msg_id)
        ours = self.store.message(outcome.msg_id) if objects else None
        if ours is None or ours.direction != "out" or outcome.recipient not in ours.recipients:
            return
        if self.store.first_answer(outcome.msg_id, outcome.recipient) != (outcome.answer_msg_id):
            return  # the first answer counts; a recipient answering again changes nothing
        named = outcome.attachments_sha256
        if outcome.status == "delivered" and named != objects:
            detail = (
                f"{outcome.recipient}'s receipt {outcome.answer_msg_id} of message "
                f"{outcome.msg_id} names attachments {list(named or ())}, not the "
                f"{len(objects)} sent ({', '.join(o[:12] for o in objects)}): its objects stay "
                "at the hub until their retention ends"
            )
            self.store.record_alert("attachments", detail, self.clock())
            self._log_once_committed("error", "receipt_attachments_mismatch",
                                     msg_id=outcome.msg_id, recipient=outcome.recipient,
                                     receipt=outcome.answer_msg_id)  # fmt: skip
            return
        self.store.attachment_purges.add(outcome.msg_id, outcome.recipient, now=self.clock())
