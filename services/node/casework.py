"""The Convention's procedures in the node: load, decide, save. The rules are the pure decide
functions of ``services/node/workflows/``; this module finds the cases a message moves in the
store, hands them over with the message, saves what they decide and returns the effects.

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

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from schemas import Body, HandlingCode
from schemas.confidentiality import ConsentDecision
from services.core.envelope import ProtectedHeader
from services.node.store import Store, StoredMessage
from services.node.workflows import confidentiality as art12
from services.node.workflows import controlled_delivery as cd
from services.node.workflows import tracing, transfers
from services.node.workflows.confidentiality import Handling
from services.node.workflows.controlled_delivery import operation_key
from services.node.workflows.errors import IllegalTransition, NotYet
from services.node.workflows.steps import Decision, Effects, FollowUp, Noted, Step
from services.node.workflows.transfers import transfer_key

FAMILIES = ("tracing", "transfer", "delivery", "confidentiality")
TRACING, TRANSFER, DELIVERY, CONFIDENTIALITY = FAMILIES

_T = TypeVar("_T")

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

    def _under(self, family: str, case_ref: str, kind: type[_T]) -> dict[str, _T]:
        """Every case of ``family`` keyed ``<owner>/<case_ref>``, oldest first."""
        rows = self.store.cases(family, key_suffix=f"/{case_ref}")
        return {key: _load(kind, data) for key, data, _ in rows}

    def _save(self, family: str, decision: Decision[Any], at: datetime) -> Effects:
        for s in decision.saves:
            self.store.put_case(
                family, s.key, _dump(s.state), open=s.open, case_id=s.case_id, now=at
            )
        return decision.effects

    def _all(self, family: str, kind: type[_T]) -> list[_T]:
        return [_load(kind, s) for _, s, _ in self.store.cases(family)]

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
        if family not in FAMILIES:
            return Effects()
        step = Step(
            msg_id=h.msg_id, kind=h.kind, sender=h.sender, recipients=tuple(h.recipients),
            at=h.created_at, body=body, party=self.party, mine=mine, handling=h.handling,
            confidential=h.confidential, case_id=h.case_id,
        )  # fmt: skip
        try:
            decision = self._decide(family, step)
        except ValidationError as exc:  # a follow-up the step would need cannot be built
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
            raise IllegalTransition("step.followup_invalid", kind=h.kind, fields=fields) from None
        return self._save(family, decision, h.created_at)

    def _decide(self, family: str, step: Step) -> Decision[Any]:
        """Load what ``step`` moves and ask its procedure's decide function."""
        if family == TRACING:
            traces = {k: self._get(TRACING, k, tracing.Trace) for k in tracing.keys(step)}
            return tracing.decide(traces, step, self.policy)
        if family == TRANSFER:
            ref = transfers.case_ref(step)
            return transfers.decide(self._under(TRANSFER, ref, transfers.Transfer), step)
        if family == DELIVERY:
            ref = cd.case_ref(step)
            return cd.decide(self._under(DELIVERY, ref, cd.Operation), step)
        key = art12.key(step)
        record = self._get(CONFIDENTIALITY, key, Handling)
        subject = self._subject(art12.subject_of(step))
        return art12.decide(record, subject, step)

    def _subject(self, msg_id: str) -> art12.Subject | None:
        m = self.store.message(msg_id)
        if m is None:
            return None
        copy_of = self.store.original_of(msg_id)
        source = self.store.message(copy_of) if copy_of is not None else None
        return art12.Subject(
            direction=m.direction, sender=m.sender, recipients=tuple(m.recipients), kind=m.kind,
            copy_of=copy_of, provider=source.sender if source is not None else None,
        )  # fmt: skip

    def watched(self) -> list[tuple[str, str]]:
        """(family, key) of the cases whose deadlines this node watches, while they are open."""
        out = []
        for key, data, _ in self.store.cases(TRACING, open_only=True):
            if tracing.watches(_load(tracing.Trace, data), self.party):
                out.append((TRACING, key))
        for key, data, _ in self.store.cases(TRANSFER, open_only=True):
            if transfers.watches(_load(transfers.Transfer, data), self.party):
                out.append((TRANSFER, key))
        return out

    def tick(self, family: str, key: str, now: datetime) -> Effects:
        """Time passes for one case: what its deadlines ask, each acted on once, even if they fell
        due while the node was down (inside the caller's transaction)."""
        row = self.store.case(family, key)
        if row is None:
            return Effects()
        data, case_id = row
        decision: Decision[Any]
        if family == TRACING:
            trace = _load(tracing.Trace, data)
            decision = tracing.tick(key, trace, case_id, now, self.policy)
        elif family == TRANSFER:
            t = _load(transfers.Transfer, data)
            decision = transfers.tick(key, t, case_id, now, self.party)
        else:
            return Effects()
        return self._save(family, decision, now)

    # -- Art. XII, as the forward and export rules need it ----------------------------------------

    def received_view(self, m: StoredMessage) -> art12.Received | None:
        """What Art. XII's rules need to know of a received message, or None if it was sent."""
        if m.direction != "in":
            return None
        record = self.handling_record(m.msg_id, self.party)
        notices = record.notices if record else ()
        statuses = [s.state for n in notices for s in self.store.recipient_statuses(n)]
        return art12.received(m.sender, HandlingCode(m.handling), m.confidential, record, statuses)

    def handling_record(self, msg_id: str, holder: str) -> Handling | None:
        return self._get(CONFIDENTIALITY, art12.record_key(msg_id, holder), Handling)

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
    "operation_key",
    "transfer_key",
]
