"""The Convention's procedures in the node: the pure workflows of ``services/node/workflows/``
applied to every message this node sends or accepts, their state kept in the store.

``NodeCore`` calls :meth:`Casework.sent` and :meth:`Casework.received` inside the transaction that
stores the message, so a message and the state it moves are committed together or not at all. An
illegal message is refused before it is stored: an officer's with the reason, another state's with
a signed ``illegal_transition`` rejection (:class:`NotYet`: asked for again later, since the
message it depends on may still be on its way). :meth:`Casework.tick` fires deadlines (reminders,
overdue notices, overdue receipts); what it asks to send is composed like any other message.

Every row of the ``casework`` table is derived from stored messages; ``replay`` makes them again.
Who keeps what:

- tracing: the requesting state and each requested state keep one trace per (request, state
  asked); only the requester watches the due date.
- transfers: the exporting, importing and transit states keep the same transfer; every message
  of a transfer goes to all its other parties. Only the exporter watches the expected arrival.
- controlled deliveries: every participant keeps the same operation; every message goes to all
  the other participants and to no one else.
- confidentiality: the holder and the originator of a received message keep its consent requests,
  answers and disclosure notices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from schemas import Body, HandlingCode
from schemas.audit import EventType
from schemas.confidentiality import (
    ConsentAnswer,
    ConsentDecision,
    ConsentRequest,
    DisclosureNotice,
    IntendedUse,
)
from schemas.controlled_delivery import (
    CustodyHandover,
    DeliveryClosure,
    DeliveryConsent,
    DeliveryDecline,
    DeliveryProposal,
    Interception,
)
from schemas.tracing import (
    TracingAcknowledgement,
    TracingOverdue,
    TracingReminder,
    TracingRequest,
    TracingResponse,
)
from schemas.transfers import (
    DiscrepancyLine,
    DiscrepancyReport,
    DispatchNotice,
    ImportConfirmation,
    ReceiptConfirmation,
    ReceiptOverdue,
    TransferNotice,
    TransitAuthorization,
)
from services.core.envelope import ProtectedHeader
from services.node.store import Store, StoredMessage
from services.node.workflows import confidentiality as art12
from services.node.workflows import controlled_delivery as cd
from services.node.workflows import tracing, transfers
from services.node.workflows.errors import IllegalTransition, NotYet

FAMILIES = ("tracing", "transfer", "delivery", "confidentiality")
TRACING, TRANSFER, DELIVERY, CONFIDENTIALITY = FAMILIES

_T = TypeVar("_T")


@dataclass(frozen=True)
class FollowUp:
    """A message the procedure asks this node to send now."""

    body: Body
    to: tuple[str, ...]
    handling: HandlingCode
    confidential: bool
    case_id: str | None
    in_reply_to: str | None = None


@dataclass(frozen=True)
class Noted:
    """An audit event about another stored message (the subject of an Art. XII step)."""

    event: EventType
    subject_msg_id: str


@dataclass
class Effects:
    follow_ups: list[FollowUp] = field(default_factory=list)
    noted: list[Noted] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


# -- Article XII record of one received message ----------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """A consent request the holder sent the originator."""

    msg_id: str
    use: IntendedUse
    recipients: frozenset[str]
    answered: bool = False


@dataclass(frozen=True)
class Handling:
    """What happened under Art. XII to one message ``holder`` received from ``originator``."""

    subject_msg_id: str
    originator: str
    holder: str
    asked: tuple[Asked, ...] = ()
    consents: tuple[art12.Consent, ...] = ()
    notices: tuple[str, ...] = ()  # msg_ids of the disclosure notices sent


_ADAPTERS: dict[type, TypeAdapter[Any]] = {
    t: TypeAdapter(t) for t in (tracing.Trace, transfers.Transfer, cd.Operation, Handling)
}


def _dump(state: object) -> str:
    return _ADAPTERS[type(state)].dump_json(state).decode()


def _load(kind: type[_T], data: str) -> _T:
    return _ADAPTERS[kind].validate_json(data)  # type: ignore[no-any-return]


class Casework:
    """The procedures of one party over its store."""

    def __init__(
        self,
        party: str,
        store: Store,
        policy: tracing.TracingPolicy = tracing.DEFAULT_POLICY,
    ) -> None:
        self.party = party
        self.store = store
        self.policy = policy

    # -- state in the store ----------------------------------------------------------------------

    def _get(self, family: str, key: str, kind: type[_T]) -> _T | None:
        row = self.store.case(family, key)
        return None if row is None else _load(kind, row[0])

    def _put(
        self,
        family: str,
        key: str,
        state: object,
        *,
        open: bool,
        at: datetime,
        case_id: str | None = None,
    ) -> None:
        """Save a case; ``case_id`` is set when it is opened and kept on every update."""
        self.store.put_case(family, key, _dump(state), open=open, case_id=case_id, now=at)

    def _all(self, family: str, kind: type[_T], open_only: bool = False) -> list[_T]:
        return [_load(kind, s) for _, s, _ in self.store.cases(family, open_only=open_only)]

    def all_traces(self) -> list[tracing.Trace]:
        return self._all(TRACING, tracing.Trace)

    def all_transfers(self) -> list[transfers.Transfer]:
        return self._all(TRANSFER, transfers.Transfer)

    def all_operations(self) -> list[cd.Operation]:
        return self._all(DELIVERY, cd.Operation)

    def case_id(self, family: str, key: str) -> str | None:
        row = self.store.case(family, key)
        return None if row is None else row[1]

    # -- the entry points ------------------------------------------------------------------------

    def sent(self, h: ProtectedHeader, body: Body) -> Effects:
        """This node is about to store and send ``body``: move its procedure, or refuse it."""
        return self._apply(h, body, mine=True)

    def received(self, h: ProtectedHeader, body: Body) -> Effects:
        """Another state's authentic ``body`` is about to be stored: move its procedure, or
        refuse it (:class:`IllegalTransition`; :class:`NotYet` if it may fit later)."""
        return self._apply(h, body, mine=False)

    def _apply(self, h: ProtectedHeader, body: Body, *, mine: bool) -> Effects:
        family = h.kind.split(".", 1)[0]
        handler: Callable[[ProtectedHeader, Any, bool], Effects] | None = {
            TRACING: self._tracing,
            TRANSFER: self._transfer,
            DELIVERY: self._delivery,
            CONFIDENTIALITY: self._confidentiality,
        }.get(family)
        if handler is None:
            return Effects()
        try:
            effects = handler(h, body, mine)
        except ValidationError as exc:  # a follow-up the step would need cannot be built
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
            raise IllegalTransition(
                f"{h.kind}: its follow-up would not validate ({fields})"
            ) from None
        if not mine:
            effects.follow_ups = []  # a received message never makes this node send by itself
        return effects

    def watched(self) -> list[tuple[str, str]]:
        """(family, key) of the cases whose deadlines this node watches: the traces it asked,
        the transfers it exports, while they are open."""
        out = []
        for key, data, _ in self.store.cases(TRACING, open_only=True):
            if _load(tracing.Trace, data).requester == self.party:
                out.append((TRACING, key))
        for key, data, _ in self.store.cases(TRANSFER, open_only=True):
            if _load(transfers.Transfer, data).exporter == self.party:
                out.append((TRANSFER, key))
        return out

    def tick(self, family: str, key: str, now: datetime) -> Effects:
        """Time passes for one case: what its deadlines ask, each acted on once, even if they fell
        due while the node was down (inside the caller's transaction)."""
        effects = Effects()
        row = self.store.case(family, key)
        if row is None:
            return effects
        data, case_id = row
        if family == TRACING:
            trace, due = tracing.apply(_load(tracing.Trace, data), tracing.Tick(now), self.policy)
            self._put(TRACING, key, trace, open=trace.open, at=now)
            for e in due:
                body: Body
                if isinstance(e, tracing.SendReminder):
                    body = TracingReminder(
                        request_msg_id=e.request_msg_id, due_at=e.due_at, sequence=e.sequence
                    )
                else:
                    body = TracingOverdue(
                        request_msg_id=e.request_msg_id, due_at=e.due_at, case_id=case_id
                    )
                effects.follow_ups.append(
                    FollowUp(body, (e.to,), HandlingCode.H1, False, case_id, e.request_msg_id)
                )
        elif family == TRANSFER:
            t, due_t = transfers.apply(_load(transfers.Transfer, data), transfers.Tick(now))
            self._put(TRANSFER, key, t, open=_transfer_open(t), at=now)
            for a in due_t:
                if isinstance(a, transfers.AlertReceiptOverdue):
                    effects.alerts.append(
                        f"transfer {a.transfer_id}: no receipt confirmation from {t.importer}, "
                        f"{a.days_overdue} day(s) after the expected arrival"
                    )
                    overdue = ReceiptOverdue(
                        transfer_id=t.transfer_id, expected_arrival=t.expected_arrival,
                        days_overdue=min(a.days_overdue, 3650),
                    )  # fmt: skip
                    effects.follow_ups.append(
                        FollowUp(overdue, _others(t, self.party), HandlingCode.H1, False, case_id)
                    )
        return effects

    # -- tracing (Art. XIII.3) -------------------------------------------------------------------

    def _tracing(self, h: ProtectedHeader, body: Body, mine: bool) -> Effects:
        at = h.created_at
        if isinstance(body, TracingRequest):
            if body.due_at <= at:
                raise IllegalTransition("the request is due before it was filed")
            requester = h.sender
            asked = h.recipients if mine else [self.party]
            for state in asked:
                key = _trace_key(h.msg_id, state)
                if self.store.case(TRACING, key) is not None:
                    raise IllegalTransition(f"tracing request {h.msg_id} is already filed")
                trace = tracing.file(h.msg_id, body, requester, state, at, stated=True)
                self._put(TRACING, key, trace, open=True, case_id=h.case_id, at=at)
            return Effects()

        if isinstance(body, TracingAcknowledgement | TracingResponse):
            # sent by the requested state to the requester
            key = _trace_key(body.request_msg_id, h.sender)
            trace = self._trace(key, body.request_msg_id, h.sender)
            _addressed(h, [trace.requester], "an answer to a tracing request")
            event: tracing.Event
            if isinstance(body, TracingAcknowledgement):
                event = tracing.Acknowledged(h.sender, at)
            else:
                event = tracing.Answered(h.sender, body.outcome, at)
            trace, _ = tracing.apply(trace, event, self.policy)
            self._save_trace(key, trace, at)
            return Effects()

        if isinstance(body, TracingReminder | TracingOverdue):
            # sent by the requester to the requested state
            state = h.recipients[0] if mine else self.party
            key = _trace_key(body.request_msg_id, state)
            if not mine and self.store.case(TRACING, key) is None:
                # the request itself may still be on its way here
                raise NotYet(f"no tracing request {body.request_msg_id} to {state}")
            trace = self._trace(key, body.request_msg_id, state)
            if h.sender != trace.requester:
                raise IllegalTransition(f"only the requesting state ({trace.requester}) reminds")
            _addressed(h, [trace.requested], "a reminder")
            if mine and not trace.open:
                raise IllegalTransition("the request was already answered")
            if isinstance(body, TracingOverdue) and h.created_at < trace.due_at:
                raise IllegalTransition(f"the request is not due until {trace.due_at.isoformat()}")
            if isinstance(body, TracingReminder):
                trace = replace(trace, reminders_sent=max(trace.reminders_sent, body.sequence))
            else:
                trace = replace(trace, overdue_sent=True)
            self._save_trace(key, trace, at)
        return Effects()

    def _trace(self, key: str, request_msg_id: str, state: str) -> tracing.Trace:
        trace = self._get(TRACING, key, tracing.Trace)
        if trace is None:
            raise IllegalTransition(f"no tracing request {request_msg_id} to {state}")
        return trace

    def _save_trace(self, key: str, trace: tracing.Trace, at: datetime) -> None:
        self._put(TRACING, key, trace, open=trace.open, at=at)

    # -- licensed transfers (Art. IX) ------------------------------------------------------------

    def _transfer(self, h: ProtectedHeader, body: Body, mine: bool) -> Effects:
        if isinstance(body, TransferNotice):
            if body.exporter.country != h.sender:
                raise IllegalTransition(
                    f"the exporting state notifies its transfers ({body.exporter.country} is"
                    f" the exporter's country, {h.sender} sent the notice)"
                )
            t = transfers.notified(body, h.sender)
            _addressed(h, _others(t, h.sender), "a transfer notice")
            key = transfer_key(t.exporter, t.transfer_id)
            if self.store.case(TRANSFER, key) is not None:
                raise IllegalTransition(f"transfer {t.transfer_id} was already notified")
            self._put(TRANSFER, key, t, open=True, case_id=h.case_id or t.transfer_id,
                      at=h.created_at)  # fmt: skip
            return Effects()

        transfer_id = body.transfer_id  # type: ignore[attr-defined]
        key, t = self._find_transfer(transfer_id, h, mine)
        effects = Effects()
        if isinstance(body, ReceiptOverdue):
            if h.sender != t.exporter:
                raise IllegalTransition(f"only the exporting state ({t.exporter}) raises it")
            _addressed(h, _others(t, h.sender), "a message of this transfer")
            if t.stage in (transfers.Stage.NOTIFIED, transfers.Stage.AUTHORIZED):
                raise (IllegalTransition if mine else NotYet)("the transfer was not dispatched")
            if mine and t.stage is not transfers.Stage.DISPATCHED:
                raise IllegalTransition(f"the receipt was confirmed ({t.stage.value})")
            t = replace(t, overdue_alerted=True)
        elif isinstance(body, DiscrepancyReport):
            if h.sender != t.importer:
                raise IllegalTransition(f"only the importing state ({t.importer}) reports it")
            if t.stage is transfers.Stage.DISPATCHED:
                raise (IllegalTransition if mine else NotYet)("no receipt confirmation yet")
            if t.stage is not transfers.Stage.DISCREPANCY:
                raise IllegalTransition(f"the receipt matched the dispatch ({t.stage.value})")
            reported = {(x.line, x.quantity_expected, x.quantity_received) for x in body.lines}
            if reported != set(transfers.discrepancies(t.dispatched, t.received)):
                raise IllegalTransition("the report does not match the receipt confirmation")
            _addressed(h, _others(t, h.sender), "a message of this transfer")
        else:
            _addressed(h, _others(t, h.sender), "a message of this transfer")
            event: transfers.Event
            if isinstance(body, ImportConfirmation):
                if h.sender != t.importer:
                    raise IllegalTransition(f"only the importing state ({t.importer}) confirms")
                event = transfers.Confirmed(h.sender, body.decision)
            elif isinstance(body, TransitAuthorization):
                if h.sender not in t.transit:
                    raise IllegalTransition(f"{h.sender} is not a transit state of this transfer")
                event = transfers.Confirmed(h.sender, body.decision)
            elif isinstance(body, DispatchNotice):
                event = transfers.Dispatched(h.sender, {i.line: i.quantity for i in body.items})
            elif isinstance(body, ReceiptConfirmation):
                event = transfers.Received(
                    h.sender, {x.line: x.quantity_received for x in body.lines}
                )
            else:
                raise IllegalTransition(f"{h.kind} is not part of a transfer")
            t, fx = transfers.apply(t, event, crossing=not mine)
            if isinstance(body, DispatchNotice):
                t = replace(t, expected_arrival=body.expected_arrival)
            for e in fx if mine else []:  # the importer's node reports; the others only record
                if isinstance(e, transfers.SendDiscrepancy) and isinstance(
                    body, ReceiptConfirmation
                ):
                    report = DiscrepancyReport(
                        transfer_id=t.transfer_id,
                        lines=[
                            DiscrepancyLine(line=n, quantity_expected=e_, quantity_received=r)
                            for n, e_, r in e.lines
                        ],
                        narrative=_discrepancy_narrative(body),
                        officer=body.officer,
                    )
                    effects.follow_ups.append(
                        FollowUp(
                            report,
                            _others(t, self.party),
                            h.handling,
                            h.confidential,
                            h.case_id,
                            h.msg_id,
                        )
                    )
        self._put(TRANSFER, key, t, open=_transfer_open(t), at=h.created_at)
        return effects

    def _find_transfer(
        self, transfer_id: str, h: ProtectedHeader, mine: bool
    ) -> tuple[str, transfers.Transfer]:
        return self._find(
            TRANSFER, transfers.Transfer, transfer_id, h, mine,
            id_of=lambda t: t.transfer_id, owner_of=lambda t: t.exporter, parties_of=_parties,
            noun="transfer", missing=f"no transfer {transfer_id} notified",
        )  # fmt: skip

    def _find(
        self,
        family: str,
        kind: type[_T],
        case_id: str,
        h: ProtectedHeader,
        mine: bool,
        *,
        id_of: Callable[[_T], str],
        owner_of: Callable[[_T], str],
        parties_of: Callable[[_T], Iterable[str]],
        noun: str,
        missing: str,
    ) -> tuple[str, _T]:
        """The case a message names by its id, among those both its sender and this node are
        parties to (two states may use the same id; the recipients then tell them apart: the
        case's owner, its exporter or proposer, is among them or sent it)."""
        found, known = [], []
        for key, data, _ in self.store.cases(family, key_suffix=f"/{case_id}"):
            case = _load(kind, data)
            parties = set(parties_of(case))
            if id_of(case) == case_id and self.party in parties:
                known.append(case)
                if h.sender in parties:
                    found.append((key, case))
        if len(found) > 1:
            found = [(k, c) for k, c in found if owner_of(c) in {h.sender, *h.recipients}]
        if len(found) == 1:
            return found[0]
        if not found and known and all(owner_of(c) in h.recipients for c in known):
            raise IllegalTransition(f"{h.sender} is not a party to {noun} {case_id}")
        if not found:
            # the case is opened by its owner: another party's message can overtake that one
            raise (IllegalTransition if mine else NotYet)(missing)
        raise IllegalTransition(f"{noun} id {case_id} is ambiguous")

    # -- controlled deliveries (Art. XVIII) ------------------------------------------------------

    def _delivery(self, h: ProtectedHeader, body: Body, mine: bool) -> Effects:
        at = h.created_at
        if isinstance(body, DeliveryProposal):
            op = cd.proposed(
                body.operation_id, h.sender, list(body.participants),
                [(leg.from_state, leg.to_state) for leg in body.route], at,
            )  # fmt: skip
            _addressed(h, _others_op(op, h.sender), "a proposal")
            key = operation_key(op.proposer, op.operation_id)
            if self.store.case(DELIVERY, key) is not None:
                raise IllegalTransition(f"operation {op.operation_id} was already proposed")
            self._put(DELIVERY, key, op, open=True, case_id=h.case_id or op.operation_id, at=at)
            return Effects()
        key, op = self._find_operation(body.operation_id, h, mine)  # type: ignore[attr-defined]
        _addressed(h, _others_op(op, h.sender), "a message of this operation")
        event: cd.Event
        if isinstance(body, DeliveryConsent):
            event = cd.Consented(h.sender, at)
        elif isinstance(body, DeliveryDecline):
            event = cd.Declined(h.sender, at)
        elif isinstance(body, CustodyHandover):
            if h.sender not in (body.from_state, body.to_state):
                raise IllegalTransition("a hand-over is reported by one of its two states")
            event = cd.HandedOver(body.from_state, body.to_state, body.at, body.seals_intact)
        elif isinstance(body, Interception):
            event = cd.Intercepted(h.sender, body.decision, body.decided_at)
        elif isinstance(body, DeliveryClosure):
            # never later than it was sent: a closure dated ahead would take steps "before" it
            closed_at = min(body.closed_at, at)
            last = max(when for when, _, _ in op.timeline) if op.timeline else None
            if mine and last is not None and closed_at < last:
                raise IllegalTransition(
                    f"the closure is dated before the operation's last step ({last.isoformat()})"
                )
            event = cd.Closed(h.sender, body.outcome, closed_at)
        else:
            raise IllegalTransition(f"{h.kind} is not part of a controlled delivery")
        op = cd.apply(op, event, crossing=not mine, sender=h.sender)
        open_ = op.phase in (cd.Phase.PROPOSED, cd.Phase.ACTIVE)
        self._put(DELIVERY, key, op, open=open_, at=at)
        return Effects()

    def _find_operation(
        self, operation_id: str, h: ProtectedHeader, mine: bool
    ) -> tuple[str, cd.Operation]:
        return self._find(
            DELIVERY, cd.Operation, operation_id, h, mine,
            id_of=lambda o: o.operation_id, owner_of=lambda o: o.proposer,
            parties_of=lambda o: o.participants, noun="operation",
            missing=f"no operation {operation_id} proposed",
        )  # fmt: skip

    # -- confidentiality (Art. XII) --------------------------------------------------------------

    def _confidentiality(self, h: ProtectedHeader, body: Body, mine: bool) -> Effects:
        subject_id: str = body.subject_msg_id  # type: ignore[attr-defined]
        # Requests and notices go from the holder to the originator, answers the other way.
        from_holder = isinstance(body, ConsentRequest | DisclosureNotice)
        holder = h.sender if from_holder else h.recipients[0]
        originator = h.recipients[0] if from_holder else h.sender
        if len(h.recipients) != 1:
            raise IllegalTransition("an Art. XII step goes to one state only")
        self._check_subject(subject_id, holder=holder, originator=originator)
        key = f"{subject_id}/{holder}"
        record = self._get(CONFIDENTIALITY, key, Handling) or Handling(
            subject_id, originator, holder
        )
        effects = Effects()
        if isinstance(body, ConsentRequest):
            recipients = frozenset(body.proposed_recipients)
            if body.use is IntendedUse.ONWARD_SHARING and (
                not recipients or recipients & {holder, originator}
            ):
                raise IllegalTransition("onward sharing names the third states it would reach")
            record = replace(record, asked=(*record.asked, Asked(h.msg_id, body.use, recipients)))
            if mine:
                effects.noted.append(Noted(EventType.CONSENT_REQUESTED, subject_id))
        elif isinstance(body, ConsentAnswer):
            asked = next((a for a in record.asked if a.msg_id == body.request_msg_id), None)
            if asked is None:
                raise IllegalTransition(f"no consent request {body.request_msg_id} to answer")
            if asked.answered:
                raise IllegalTransition(f"consent request {body.request_msg_id} was answered")
            consent = art12.Consent(asked.use, body.decision, asked.recipients, body.valid_until)
            record = replace(
                record,
                asked=tuple(replace(a, answered=True) if a is asked else a for a in record.asked),
                consents=(*record.consents, consent),
            )
            if mine:
                effects.noted.append(Noted(EventType.CONSENT_ANSWERED, subject_id))
        elif isinstance(body, DisclosureNotice):
            record = replace(record, notices=(*record.notices, h.msg_id))
            if mine:
                effects.noted.append(Noted(EventType.DISCLOSURE_NOTIFIED, subject_id))
        self._put(CONFIDENTIALITY, key, record, open=False, case_id=h.case_id, at=h.created_at)
        return effects

    def _check_subject(self, subject_id: str, *, holder: str, originator: str) -> None:
        """The subject is a message ``originator`` sent and ``holder`` received, as this node's
        store knows it (this node is one of the two)."""
        m = self.store.message(subject_id)
        if self.party == holder:
            ok = m is not None and m.direction == "in" and m.sender == originator
            if not ok:
                raise IllegalTransition(f"{subject_id} is not a message received from {originator}")
        else:
            ok = m is not None and m.direction == "out" and holder in m.recipients
            if not ok:
                raise IllegalTransition(f"{subject_id} is not a message of ours sent to {holder}")
            original = self.store.original_of(subject_id)
            if original is not None:  # its provider decides, not the state that forwarded it
                source = self.store.message(original)
                provider = source.sender if source is not None else "its provider"
                raise IllegalTransition(
                    f"{subject_id} is a forwarded copy of message {original}: ask {provider}"
                )
        if m is not None and m.kind.startswith("protocol."):
            raise IllegalTransition("receipts and rejections are not subject to Art. XII")

    def received_view(self, m: StoredMessage) -> art12.Received | None:
        """What Art. XII's rules need to know of a received message, or None if it was sent."""
        if m.direction != "in":
            return None
        record = self.handling_record(m.msg_id, self.party)
        return art12.Received(
            originator=m.sender,
            handling=HandlingCode(m.handling),
            confidential=m.confidential,
            consents=record.consents if record else (),
            disclosure_notice_delivered=any(
                s.state == "delivered"
                for n in (record.notices if record else ())
                for s in self.store.recipient_statuses(n)
            ),
        )

    def handling_record(self, msg_id: str, holder: str) -> Handling | None:
        return self._get(CONFIDENTIALITY, f"{msg_id}/{holder}", Handling)

    # -- rebuilding ------------------------------------------------------------------------------

    def replay(self, messages: Iterable[tuple[ProtectedHeader, Body]]) -> tuple[int, int]:
        """Make the state again from the messages (oldest first); returns (applied, skipped).

        Effects are not carried out: what they sent is among the messages. A message the
        procedure refuses now is skipped (it was refused when it arrived, or it is a duplicate).
        """
        self.store.clear_cases()
        applied = skipped = 0
        for h, body in messages:
            try:
                self._apply(h, body, mine=h.sender == self.party)
                applied += 1
            except IllegalTransition:
                skipped += 1
        return applied, skipped


def _trace_key(request_msg_id: str, state: str) -> str:
    return f"{request_msg_id}/{state}"


def transfer_key(exporter: str, transfer_id: str) -> str:
    """A transfer's key in the store: its id is the exporter's, unique only with it."""
    return f"{exporter}/{transfer_id}"


def operation_key(proposer: str, operation_id: str) -> str:
    """An operation's key in the store: its id is the proposer's, unique only with it."""
    return f"{proposer}/{operation_id}"


def _parties(t: transfers.Transfer) -> list[str]:
    return [t.exporter, t.importer, *t.transit]


def _others(t: transfers.Transfer, party: str) -> tuple[str, ...]:
    return tuple(p for p in _parties(t) if p != party)


def _others_op(op: cd.Operation, party: str) -> tuple[str, ...]:
    return tuple(p for p in op.participants if p != party)


def _addressed(h: ProtectedHeader, expected: Iterable[str], what: str) -> None:
    """Every party of the case gets its messages, and no one else."""
    expected = set(expected)
    if set(h.recipients) != expected:
        raise IllegalTransition(
            f"{what} goes to {', '.join(sorted(expected)) or 'no one'}, "
            f"not {', '.join(sorted(h.recipients))}"
        )


def _transfer_open(t: transfers.Transfer) -> bool:
    return t.stage in (transfers.Stage.NOTIFIED, transfers.Stage.AUTHORIZED) or (
        t.stage is transfers.Stage.DISPATCHED and not t.overdue_alerted
    )


def _discrepancy_narrative(body: ReceiptConfirmation) -> str:
    remarks = [f"line {x.line}: {x.remarks}" for x in body.lines if x.remarks]
    text = f"Quantities received at {body.place} differ from the dispatch notice."
    return " ".join([text, *remarks])[:20_000]  # the schema's LongText


def is_casework(kind: str) -> bool:
    return kind.split(".", 1)[0] in FAMILIES


__all__ = [
    "CONFIDENTIALITY",
    "DELIVERY",
    "FAMILIES",
    "TRACING",
    "TRANSFER",
    "Casework",
    "ConsentDecision",
    "Effects",
    "FollowUp",
    "Handling",
    "IllegalTransition",
    "NotYet",
    "Noted",
    "is_casework",
]
