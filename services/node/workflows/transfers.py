"""Licensed transfers (Art. IX) as a pure state machine, kept by every party to the transfer.

notified -> (every confirmation present) authorized -> dispatched -> received [-> discrepancy]
A refusal by the importing state or a transit state stops it (IX.2, IX.3): the exporting node
refuses to dispatch until the importing state has confirmed its licence and every transit state
has authorized the transit. After the expected arrival without a receipt confirmation the
exporting node raises an overdue-receipt alert, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from schemas import HandlingCode
from schemas.transfers import (
    Decision,
    DiscrepancyLine,
    DiscrepancyReport,
    DispatchNotice,
    ImportConfirmation,
    ReceiptConfirmation,
    ReceiptOverdue,
    TransferNotice,
    TransitAuthorization,
)
from services.node.workflows import steps
from services.node.workflows.errors import IllegalTransition, NotYet, RefusalCode
from services.node.workflows.steps import (
    Effects,
    FollowUp,
    Save,
    Step,
    addressed,
    find_case,
    not_yet,
)


class Stage(StrEnum):
    NOTIFIED = "notified"
    AUTHORIZED = "authorized"  # every confirmation present: may be dispatched
    REFUSED = "refused"  # the importing or a transit state refused
    DISPATCHED = "dispatched"
    RECEIVED = "received"  # the receipt confirmation matches what was dispatched
    DISCREPANCY = "discrepancy"  # received, with quantities that differ


@dataclass(frozen=True)
class Transfer:
    transfer_id: str
    exporter: str
    importer: str
    transit: tuple[str, ...]
    expected_arrival: date
    dispatched: dict[int, int] = field(default_factory=dict)  # line -> quantity
    stage: Stage = Stage.NOTIFIED
    import_confirmed: bool = False
    transit_authorized: frozenset[str] = frozenset()
    refused_by: str | None = None  # the first of ``refusals`` by code: the same at every party
    refusals: frozenset[str] = frozenset()
    received: dict[int, int] = field(default_factory=dict)
    overdue_alerted: bool = False

    @property
    def missing_confirmations(self) -> list[str]:
        missing = [] if self.import_confirmed else [self.importer]
        return missing + [t for t in self.transit if t not in self.transit_authorized]


# -- events and effects ---------------------------------------------------------------------


@dataclass(frozen=True)
class Confirmed:
    """An import licence confirmation (from the importer) or transit authorization."""

    by: str
    decision: Decision


@dataclass(frozen=True)
class Dispatched:
    by: str
    lines: dict[int, int]


@dataclass(frozen=True)
class Received:
    by: str
    lines: dict[int, int]


@dataclass(frozen=True)
class Tick:
    now: datetime


Event = Confirmed | Dispatched | Received | Tick


@dataclass(frozen=True)
class SendDiscrepancy:
    """The importing node reports what differs (line, expected, received)."""

    to: str
    lines: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class AlertReceiptOverdue:
    transfer_id: str
    days_overdue: int


Effect = SendDiscrepancy | AlertReceiptOverdue


def notified(notice: TransferNotice, exporter: str) -> Transfer:
    importer = notice.importer.country
    return Transfer(
        transfer_id=notice.transfer_id,
        exporter=exporter,
        importer=importer,
        transit=tuple(notice.transit_states),
        expected_arrival=notice.expected_arrival,
        dispatched={i.line: i.quantity for i in notice.items},
    )


def apply(t: Transfer, event: Event, *, crossing: bool = False) -> tuple[Transfer, list[Effect]]:
    """The transfer after ``event`` and what to do because of it. With ``crossing`` (another
    party's message), a confirmation or refusal that crossed a refusal is recorded, so that
    every party holds the same transfer; an officer's own after a known refusal is refused."""
    match event:
        case Confirmed(by=by, decision=decision):
            return _confirmed(t, by, decision, crossing), []
        case Dispatched(by=by, lines=lines):
            if by != t.exporter:
                raise IllegalTransition("transfer.exporter_dispatches", exporter=t.exporter)
            if t.stage is Stage.NOTIFIED:
                missing = ", ".join(t.missing_confirmations)
                # Art. IX.2 and IX.3: no dispatch before the import licence is confirmed and
                # every transit state has authorized the transit (at another party, the last
                # confirmation may still be on its way: not yet)
                raise NotYet("transfer.awaiting", missing=missing)
            if t.stage is not Stage.AUTHORIZED:
                raise _refused_at(t, "transfer.not_authorized", "transfer.refused_not_authorized")
            return replace(t, stage=Stage.DISPATCHED, dispatched=dict(lines)), []
        case Received(by=by, lines=lines):
            if by != t.importer:
                raise IllegalTransition("transfer.importer_confirms_receipt", importer=t.importer)
            if t.stage in (Stage.NOTIFIED, Stage.AUTHORIZED):
                raise NotYet("transfer.nothing_dispatched", stage=t.stage.value)
            if t.stage is not Stage.DISPATCHED:
                raise _refused_at(
                    t, "transfer.nothing_dispatched", "transfer.refused_nothing_dispatched"
                )
            extra = sorted(set(lines) - set(t.dispatched))
            if extra:
                raise IllegalTransition("transfer.line_not_dispatched", line=str(extra[0]))
            diff = discrepancies(t.dispatched, lines)
            stage = Stage.DISCREPANCY if diff else Stage.RECEIVED
            effects: list[Effect] = [SendDiscrepancy(t.exporter, diff)] if diff else []
            return replace(t, stage=stage, received=dict(lines)), effects
        case Tick(now=now):
            if t.stage is Stage.DISPATCHED and not t.overdue_alerted:
                days = (now.date() - t.expected_arrival).days
                if days >= 1:  # the day after the expected arrival, without a receipt
                    return replace(t, overdue_alerted=True), [
                        AlertReceiptOverdue(t.transfer_id, days)
                    ]
            return t, []
    raise IllegalTransition("unknown_event", event=repr(event))


def discrepancies(
    dispatched: dict[int, int], received: dict[int, int]
) -> tuple[tuple[int, int, int], ...]:
    """(line, dispatched, received) of every line received in another quantity."""
    return tuple(
        (line, expected, received.get(line, 0))
        for line, expected in sorted(dispatched.items())
        if received.get(line, 0) != expected
    )


def _refused_at(t: Transfer, code: RefusalCode, refused: RefusalCode) -> IllegalTransition:
    """Refusal ``code`` naming the transfer's stage, or ``refused`` naming who refused it."""
    if t.stage is Stage.REFUSED:
        return IllegalTransition(refused, refused_by=str(t.refused_by))
    return IllegalTransition(code, stage=t.stage.value)


def _confirmed(t: Transfer, by: str, decision: Decision, crossing: bool = False) -> Transfer:
    if by != t.importer and by not in t.transit:
        raise IllegalTransition("transfer.not_confirming_party", party=by)
    answered = t.import_confirmed if by == t.importer else by in t.transit_authorized
    if answered or by in t.refusals:
        raise IllegalTransition("transfer.already_confirmed", party=by)
    crossed = crossing and t.stage is Stage.REFUSED
    if t.stage not in (Stage.NOTIFIED, Stage.AUTHORIZED) and not crossed:
        raise _refused_at(t, "transfer.confirm_after_dispatch", "transfer.refused_confirm")
    if decision is Decision.REFUSED:
        refusals = t.refusals | {by}
        return replace(t, stage=Stage.REFUSED, refusals=refusals, refused_by=min(refusals))
    if by == t.importer:
        t = replace(t, import_confirmed=True)
    else:
        t = replace(t, transit_authorized=t.transit_authorized | {by})
    if t.stage is Stage.REFUSED:
        return t
    return replace(t, stage=Stage.NOTIFIED if t.missing_confirmations else Stage.AUTHORIZED)


# -- messages: who may send what to whom -------------------------------------------------------


def transfer_key(exporter: str, transfer_id: str) -> str:
    """A transfer's key at a node: its id is the exporter's, unique only with it."""
    return f"{exporter}/{transfer_id}"


def parties(t: Transfer) -> list[str]:
    """The states a transfer concerns: the exporting, importing and transit states."""
    return [t.exporter, t.importer, *t.transit]


def others(t: Transfer, party: str) -> tuple[str, ...]:
    """Whom ``party``'s messages of this transfer go to: every other party, and no one else."""
    return tuple(p for p in parties(t) if p != party)


def is_open(t: Transfer) -> bool:
    """Whether the transfer still waits for something (a confirmation, a dispatch, a receipt
    before its overdue alert)."""
    return t.stage in (Stage.NOTIFIED, Stage.AUTHORIZED) or (
        t.stage is Stage.DISPATCHED and not t.overdue_alerted
    )


def watches(t: Transfer, party: str) -> bool:
    """Whether ``party`` watches this transfer's expected arrival: only the exporter does."""
    return t.exporter == party


def case_ref(step: Step) -> str:
    """The transfer id ``step`` names: the caller loads every case under it for :func:`decide`."""
    return str(step.body.transfer_id)  # type: ignore[attr-defined]


def decide(cases: Mapping[str, Transfer], step: Step) -> steps.Decision[Transfer]:
    """The transfer after ``step`` (``cases``: the node's transfers whose key ends with the id
    the step names, oldest first), and the report the importer's node sends if the receipt
    differs from the dispatch; :class:`IllegalTransition` says why the step is refused."""
    body = step.body
    if isinstance(body, TransferNotice):
        return _notified(cases, step, body)
    key, t = find_case(
        cases, body.transfer_id, step,  # type: ignore[attr-defined]
        id_of=lambda t: t.transfer_id, owner_of=lambda t: t.exporter, parties_of=parties,
        noun="transfer", missing=("transfer.not_notified", {"transfer": body.transfer_id}),  # type: ignore[attr-defined]
    )  # fmt: skip
    effects = Effects()
    if isinstance(body, ReceiptOverdue):
        t = _overdue(t, step)
    elif isinstance(body, DiscrepancyReport):
        _reported(t, step, body)
    else:
        # Art. IX: every party of the transfer is told of every step, and no one else
        addressed(step, others(t, step.sender), "addressed.transfer")
        t, fx = apply(t, _event(t, step), crossing=not step.mine)
        if isinstance(body, DispatchNotice):
            t = replace(t, expected_arrival=body.expected_arrival)
        if step.mine and isinstance(body, ReceiptConfirmation):
            # the importer's node reports; the others only record
            effects = _discrepancy_report(t, step, body, fx)
    return steps.Decision((Save(key, t, is_open(t)),), effects)


def _notified(
    cases: Mapping[str, Transfer], step: Step, body: TransferNotice
) -> steps.Decision[Transfer]:
    # Art. IX.1: the exporting state notifies the importing and transit states of its licence
    if body.exporter.country != step.sender:
        raise IllegalTransition(
            "transfer.exporter_notifies", exporter=body.exporter.country, sender=step.sender
        )
    t = notified(body, step.sender)
    addressed(step, others(t, step.sender), "addressed.transfer_notice")
    key = transfer_key(t.exporter, t.transfer_id)
    if key in cases:
        raise IllegalTransition("transfer.already_notified", transfer=t.transfer_id)
    return steps.Decision((Save(key, t, True, step.case_id or t.transfer_id),))


def _event(t: Transfer, step: Step) -> Event:
    """The transfer event a confirmation, dispatch or receipt message stands for."""
    body = step.body
    if isinstance(body, ImportConfirmation):
        # Art. IX.2: the importing state confirms its import licence
        if step.sender != t.importer:
            raise IllegalTransition("transfer.importer_confirms", importer=t.importer)
        return Confirmed(step.sender, body.decision)
    if isinstance(body, TransitAuthorization):
        # Art. IX.3: each transit state authorizes the transit
        if step.sender not in t.transit:
            raise IllegalTransition("transfer.not_transit", party=step.sender)
        return Confirmed(step.sender, body.decision)
    if isinstance(body, DispatchNotice):
        return Dispatched(step.sender, {i.line: i.quantity for i in body.items})
    if isinstance(body, ReceiptConfirmation):
        # Art. IX.4: the importing state confirms receipt with the quantities received
        return Received(step.sender, {x.line: x.quantity_received for x in body.lines})
    raise IllegalTransition("transfer.not_a_step", kind=step.kind)


def _overdue(t: Transfer, step: Step) -> Transfer:
    """A receipt-overdue notice: the exporter's, after dispatch, before a receipt."""
    if step.sender != t.exporter:
        raise IllegalTransition("transfer.exporter_raises", exporter=t.exporter)
    addressed(step, others(t, step.sender), "addressed.transfer")
    if t.stage in (Stage.NOTIFIED, Stage.AUTHORIZED):
        not_yet(step, "transfer.not_dispatched")
    if step.mine and t.stage is not Stage.DISPATCHED:
        raise IllegalTransition("transfer.receipt_confirmed", stage=t.stage.value)
    return replace(t, overdue_alerted=True)


def _reported(t: Transfer, step: Step, body: DiscrepancyReport) -> None:
    """A discrepancy report: the importer's, matching its receipt confirmation."""
    if step.sender != t.importer:
        raise IllegalTransition("transfer.importer_reports", importer=t.importer)
    if t.stage is Stage.DISPATCHED:
        not_yet(step, "transfer.no_receipt_yet")
    if t.stage is not Stage.DISCREPANCY:
        raise IllegalTransition("transfer.receipt_matched", stage=t.stage.value)
    reported = {(x.line, x.quantity_expected, x.quantity_received) for x in body.lines}
    if reported != set(discrepancies(t.dispatched, t.received)):
        raise IllegalTransition("transfer.report_mismatch")
    addressed(step, others(t, step.sender), "addressed.transfer")


def _discrepancy_report(
    t: Transfer, step: Step, body: ReceiptConfirmation, fx: list[Effect]
) -> Effects:
    """The report the importer's node sends with a receipt that differs from the dispatch."""
    follow_ups = []
    for e in fx:
        if not isinstance(e, SendDiscrepancy):
            continue
        report = DiscrepancyReport(
            transfer_id=t.transfer_id,
            lines=[
                DiscrepancyLine(line=n, quantity_expected=e_, quantity_received=r)
                for n, e_, r in e.lines
            ],
            narrative=_discrepancy_narrative(body),
            officer=body.officer,
        )
        to = others(t, step.party)
        follow_ups.append(
            FollowUp(report, to, step.handling, step.confidential, step.case_id, step.msg_id)
        )
    return Effects(follow_ups=tuple(follow_ups))


def _discrepancy_narrative(body: ReceiptConfirmation) -> str:
    remarks = [f"line {x.line}: {x.remarks}" for x in body.lines if x.remarks]
    text = f"Quantities received at {body.place} differ from the dispatch notice."
    return " ".join([text, *remarks])[:20_000]  # the schema's LongText


def tick(
    key: str, t: Transfer, case_id: str | None, now: datetime, party: str
) -> steps.Decision[Transfer]:
    """Time passes for one transfer: the exporter's overdue-receipt alert, and the notice it
    sends the other parties, once, the day after the expected arrival without a receipt."""
    t, due = apply(t, Tick(now))
    alerts, follow_ups = [], []
    for a in due:
        if isinstance(a, AlertReceiptOverdue):
            alerts.append(
                f"transfer {a.transfer_id}: no receipt confirmation from {t.importer}, "
                f"{a.days_overdue} day(s) after the expected arrival"
            )
            overdue = ReceiptOverdue(
                transfer_id=t.transfer_id, expected_arrival=t.expected_arrival,
                days_overdue=min(a.days_overdue, 3650),
            )  # fmt: skip
            follow_ups.append(FollowUp(overdue, others(t, party), HandlingCode.H1, False, case_id))
    effects = Effects(follow_ups=tuple(follow_ups), alerts=tuple(alerts))
    return steps.Decision((Save(key, t, is_open(t)),), effects)
