"""Controlled delivery (Art. XVIII) as a pure state machine, the same at every participant.

proposed -> (each participant consents, case by case) active -> hand-overs, interceptions ->
closed. One decline ends it before it starts. Messages go to the operation's participants only,
so every participant applies the same events and holds the same timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from schemas.controlled_delivery import ClosureOutcome, InterceptionDecision
from services.node.workflows.tracing import IllegalTransition


class Phase(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"  # every participant consented
    DECLINED = "declined"
    CLOSED = "closed"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    proposer: str
    participants: tuple[str, ...]
    route: tuple[tuple[str, str], ...]  # (from_state, to_state) per leg, in order
    phase: Phase = Phase.PROPOSED
    consents: frozenset[str] = frozenset()
    declined_by: str | None = None
    custody: str | None = None  # who holds the consignment now
    timeline: tuple[str, ...] = field(default_factory=tuple)
    outcome: ClosureOutcome | None = None

    @property
    def awaiting(self) -> list[str]:
        return [p for p in self.participants if p != self.proposer and p not in self.consents]


@dataclass(frozen=True)
class Consented:
    by: str
    at: datetime


@dataclass(frozen=True)
class Declined:
    by: str
    at: datetime


@dataclass(frozen=True)
class HandedOver:
    from_state: str
    to_state: str
    at: datetime
    seals_intact: bool


@dataclass(frozen=True)
class Intercepted:
    by: str
    decision: InterceptionDecision
    at: datetime


@dataclass(frozen=True)
class Closed:
    by: str
    outcome: ClosureOutcome
    at: datetime


Event = Consented | Declined | HandedOver | Intercepted | Closed


def proposed(
    operation_id: str, proposer: str, participants: list[str], route: list[tuple[str, str]]
) -> Operation:
    if proposer not in participants:
        raise IllegalTransition("the proposing state takes part in its operation")
    outside = {s for leg in route for s in leg} - set(participants)
    if outside:
        raise IllegalTransition(f"the route crosses states not asked: {', '.join(sorted(outside))}")
    return Operation(
        operation_id, proposer, tuple(participants), tuple(route), custody=route[0][0],
        timeline=(f"proposed by {proposer}",),
    )  # fmt: skip


def apply(op: Operation, event: Event) -> Operation:
    """The operation after ``event``; IllegalTransition says why an event cannot be taken."""
    match event:
        case Consented(by=by, at=at) | Declined(by=by, at=at):
            if op.phase is not Phase.PROPOSED:
                raise IllegalTransition(f"consent is asked before the operation ({op.phase.value})")
            if by not in op.awaiting:
                raise IllegalTransition(f"{by} is not a participant awaited for consent")
            if isinstance(event, Declined):  # Art. XVIII: case by case; one no ends it
                return _log(
                    replace(op, phase=Phase.DECLINED, declined_by=by), f"declined by {by}", at
                )
            op = _log(replace(op, consents=op.consents | {by}), f"consent of {by}", at)
            if not op.awaiting:
                op = _log(
                    replace(op, phase=Phase.ACTIVE), "active: every participant consented", at
                )
            return op
        case HandedOver(from_state=src, to_state=dst, at=at, seals_intact=intact):
            _active(op)
            if (src, dst) not in op.route:
                raise IllegalTransition(f"{src} to {dst} is not a leg of the route")
            if op.custody != src:
                raise IllegalTransition(f"{src} does not hold the consignment ({op.custody} does)")
            seals = "seals intact" if intact else "SEALS NOT INTACT"
            return _log(replace(op, custody=dst), f"custody {src} -> {dst}, {seals}", at)
        case Intercepted(by=by, decision=decision, at=at):
            _active(op)
            if by != op.custody:
                raise IllegalTransition(f"{by} does not hold the consignment ({op.custody} does)")
            return _log(op, f"interception by {by}: {decision.value}", at)
        case Closed(by=by, outcome=outcome, at=at):
            if op.phase is not Phase.ACTIVE:
                raise IllegalTransition(f"only an active operation is closed ({op.phase.value})")
            if by != op.proposer:
                raise IllegalTransition(f"the proposing state ({op.proposer}) closes it")
            return _log(
                replace(op, phase=Phase.CLOSED, outcome=outcome), f"closed: {outcome.value}", at
            )
    raise IllegalTransition(f"unknown event {event!r}")


def _active(op: Operation) -> None:
    if op.phase is not Phase.ACTIVE:
        raise IllegalTransition(f"the operation is not active ({op.phase.value})")


def _log(op: Operation, what: str, at: datetime) -> Operation:
    return replace(op, timeline=(*op.timeline, f"{at.isoformat(timespec='minutes')} {what}"))
