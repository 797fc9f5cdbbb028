"""Licensed transfers (Art. IX) as a pure state machine, kept by every party to the transfer.

notified -> (every confirmation present) authorized -> dispatched -> received [-> discrepancy]
A refusal by the importing state or a transit state stops it (IX.2, IX.3): the exporting node
refuses to dispatch until the importing state has confirmed its licence and every transit state
has authorized the transit. After the expected arrival without a receipt confirmation the
exporting node raises an overdue-receipt alert, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from schemas.transfers import Decision, TransferNotice
from services.node.workflows.errors import IllegalTransition, NotYet


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
                raise IllegalTransition(f"only the exporting state ({t.exporter}) dispatches")
            if t.stage is Stage.NOTIFIED:
                missing = ", ".join(t.missing_confirmations)
                # Art. IX.2 and IX.3: no dispatch before the import licence is confirmed and
                # every transit state has authorized the transit (at another party, the last
                # confirmation may still be on its way: not yet)
                raise NotYet(f"not authorized for dispatch: waiting for {missing}")
            if t.stage is not Stage.AUTHORIZED:
                raise IllegalTransition(f"not authorized for dispatch: {_stage(t)}")
            return replace(t, stage=Stage.DISPATCHED, dispatched=dict(lines)), []
        case Received(by=by, lines=lines):
            if by != t.importer:
                raise IllegalTransition(f"only the importing state ({t.importer}) confirms receipt")
            if t.stage in (Stage.NOTIFIED, Stage.AUTHORIZED):
                raise NotYet(f"nothing dispatched to receive ({t.stage.value})")
            if t.stage is not Stage.DISPATCHED:
                raise IllegalTransition(f"nothing dispatched to receive ({_stage(t)})")
            extra = sorted(set(lines) - set(t.dispatched))
            if extra:
                raise IllegalTransition(f"line {extra[0]} was not dispatched")
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
    raise IllegalTransition(f"unknown event {event!r}")


def discrepancies(
    dispatched: dict[int, int], received: dict[int, int]
) -> tuple[tuple[int, int, int], ...]:
    """(line, dispatched, received) of every line received in another quantity."""
    return tuple(
        (line, expected, received.get(line, 0))
        for line, expected in sorted(dispatched.items())
        if received.get(line, 0) != expected
    )


def _stage(t: Transfer) -> str:
    return f"refused by {t.refused_by}" if t.stage is Stage.REFUSED else t.stage.value


def _confirmed(t: Transfer, by: str, decision: Decision, crossing: bool = False) -> Transfer:
    if by != t.importer and by not in t.transit:
        raise IllegalTransition(f"{by} is neither the importing nor a transit state")
    answered = t.import_confirmed if by == t.importer else by in t.transit_authorized
    if answered or by in t.refusals:
        raise IllegalTransition(f"{by} has already confirmed")
    crossed = crossing and t.stage is Stage.REFUSED
    if t.stage not in (Stage.NOTIFIED, Stage.AUTHORIZED) and not crossed:
        raise IllegalTransition(f"confirmations come before dispatch ({_stage(t)})")
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
