"""Controlled delivery (Art. XVIII) as a pure state machine, the same at every participant.

proposed -> (each participant consents, case by case) active -> hand-overs, interceptions ->
closed. One decline ends it before it starts. Messages go to the operation's participants only,
so every participant applies the same events and holds the same timeline: its entries are dated by
the events themselves and kept in date order, whatever order the messages arrived in.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator

from schemas.controlled_delivery import (
    ClosureOutcome,
    CustodyHandover,
    DeliveryClosure,
    DeliveryConsent,
    DeliveryDecline,
    DeliveryProposal,
    Interception,
    InterceptionDecision,
)
from services import i18n
from services.node.workflows.errors import IllegalTransition, NotYet
from services.node.workflows.steps import Decision, Save, Step, addressed, find_case

#: A timeline entry: (when, rank of the step in the procedure, code, its parameters as pairs).
Entry = tuple[datetime, int, str, tuple[tuple[str, str], ...]]

#: The English lines stores written before the entries were codes hold, read back as codes.
_LEGACY = (
    (re.compile(r"proposed by (?P<party>\S+)"), "proposed"),
    (re.compile(r"consent of (?P<party>\S+)"), "consent"),
    (re.compile(r"declined by (?P<party>\S+)"), "declined"),
    (re.compile(r"active: every participant consented"), "active"),
    (re.compile(r"custody (?P<src>\S+) -> (?P<dst>\S+), seals intact"), "custody"),
    (re.compile(r"custody (?P<src>\S+) -> (?P<dst>\S+), SEALS NOT INTACT"), "custody_seals_broken"),
    (re.compile(r"interception by (?P<party>\S+): (?P<decision>\S+)"), "interception"),
    (re.compile(r"closed: (?P<outcome>\S+)"), "closed"),
)


def _entries(value: Any) -> Any:
    """A stored timeline, its entries of an older store (an English line) made codes."""
    if not isinstance(value, list | tuple):
        return value
    entries = []
    for entry in value:
        if isinstance(entry, list | tuple) and len(entry) == 3 and isinstance(entry[2], str):
            at, rank, line = entry
            for pattern, code in _LEGACY:
                if m := pattern.fullmatch(line):
                    entry = (at, rank, code, tuple(sorted(m.groupdict().items())))
                    break
        entries.append(entry)
    return entries


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
    #: (when, to_state) of every hand-over taken, in date order
    handovers: tuple[tuple[datetime, str], ...] = ()
    #: (when, rank, what happened, its parameters) in date order; at one instant, in the order of
    #: the procedure. What happened is a code (``timeline.<code>`` in the catalogs), never prose.
    timeline: Annotated[tuple[Entry, ...], BeforeValidator(_entries)] = field(default_factory=tuple)
    outcome: ClosureOutcome | None = None
    consented_at: datetime | None = None  # the latest consent so far
    declines: tuple[tuple[datetime, str], ...] = ()  # (when, who), in date order
    closed_at: datetime | None = None

    @property
    def awaiting(self) -> list[str]:
        """Participants that have neither consented nor declined."""
        answered = self.consents | {who for _, who in self.declines}
        return [p for p in self.participants if p != self.proposer and p not in answered]


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
    operation_id: str,
    proposer: str,
    participants: list[str],
    route: list[tuple[str, str]],
    at: datetime | None = None,
) -> Operation:
    if proposer not in participants:
        raise IllegalTransition("delivery.proposer_in_route")
    outside = {s for leg in route for s in leg} - set(participants)
    if outside:
        raise IllegalTransition("delivery.route_outside", states=", ".join(sorted(outside)))
    for (_, to), (frm, _) in itertools.pairwise(route):
        if to != frm:
            raise IllegalTransition("delivery.route_broken", left=to, right=frm)
    op = Operation(operation_id, proposer, tuple(participants), tuple(route), custody=route[0][0])
    return op if at is None else _log(op, "proposed", at, party=proposer)


def apply(
    op: Operation, event: Event, *, crossing: bool = True, sender: str | None = None
) -> Operation:
    """The operation after ``event``; IllegalTransition says why an event cannot be taken.

    With ``crossing`` (another participant's message), a step that crossed the message ending
    the operation is taken into its timeline: an answer to the proposal after a decline or an
    abort (nothing can start anyway), a hand-over or interception dated before the closure. An
    officer's own step after the end is refused (``crossing=False``). A hand-over or interception
    that reaches a participant after the closure is taken whatever its date, since its sender's
    node refuses its own steps once it knows of the closure, unless ``sender`` is the proposer:
    its steps must be dated before its own closure. Phase, the decline that
    counts and the moment it became active follow from the events' dates, not from the order
    they arrived in, so every participant holding the same events holds the same operation.
    """
    match event:
        case Consented(by=by, at=at) | Declined(by=by, at=at):
            if by not in op.participants or by == op.proposer:
                raise IllegalTransition("delivery.not_asked", party=by)
            if by not in op.awaiting:
                raise IllegalTransition("delivery.already_answered", party=by)
            ended = op.phase in (Phase.DECLINED, Phase.CLOSED)
            if op.phase is not Phase.PROPOSED and not (crossing and ended):
                raise IllegalTransition("delivery.consent_late", phase=op.phase.value)
            if isinstance(event, Declined):  # Art. XVIII: case by case; one no ends it
                op = replace(op, declines=tuple(sorted((*op.declines, (at, by)))))
                op = _log(op, "declined", at, party=by)
            else:
                latest = max(at, op.consented_at or at)
                op = replace(op, consents=op.consents | {by}, consented_at=latest)
                op = _log(op, "consent", at, party=by)
            return _derive(op)
        case HandedOver(from_state=src, to_state=dst, at=at, seals_intact=intact):
            if (src, dst) not in op.route:
                raise IllegalTransition("delivery.not_a_leg", src=src, dst=dst)
            _active(op, at if crossing else None, sender == op.proposer)
            if op.custody != src:
                _custody(op, src)
            handovers = tuple(sorted((*op.handovers, (at, dst))))
            op = replace(op, custody=dst, handovers=handovers)
            return _log(op, "custody" if intact else "custody_seals_broken", at, src=src, dst=dst)
        case Intercepted(by=by, decision=decision, at=at):
            _active(op, at if crossing else None, sender == op.proposer)
            # judged by who held it then: the next hand-over may have been reported here first
            holder = _holder(op, at)
            if by != holder:
                _custody(op, by, holder)
            return _log(op, "interception", at, party=by, decision=decision.value)
        case Closed(by=by, outcome=outcome, at=at):
            if by != op.proposer:
                raise IllegalTransition("delivery.proposer_closes", proposer=op.proposer)
            aborted = outcome is ClosureOutcome.ABORTED  # also withdraws a proposal
            if op.phase is Phase.PROPOSED and not aborted:
                raise NotYet("delivery.close_not_yet")
            if op.phase is Phase.CLOSED or (op.phase is Phase.DECLINED and not aborted):
                raise IllegalTransition("delivery.close_not_active", phase=op.phase.value)
            op = replace(op, outcome=outcome, closed_at=at)
            return _derive(_log(op, "closed", at, outcome=outcome.value))
    raise IllegalTransition("unknown_event", event=repr(event))


_ACTIVE = "active"  # every participant consented


def _ran(op: Operation) -> bool:
    """Every participant consented, no one declined, and before any closure."""
    everyone = not op.awaiting and not op.declines
    return everyone and (
        op.closed_at is None or (op.consented_at is not None and op.consented_at < op.closed_at)
    )


def _derive(op: Operation) -> Operation:
    """Phase, the decline that counts and the 'active' entry, from the events' dates."""
    if op.outcome is not None:
        phase = Phase.CLOSED
    elif op.declines:
        phase = Phase.DECLINED
    elif not op.awaiting:
        phase = Phase.ACTIVE
    else:
        phase = Phase.PROPOSED
    timeline = [e for e in op.timeline if e[2] != _ACTIVE]
    if _ran(op) and op.consented_at is not None:
        # dated by the last consent, wherever it arrived last
        timeline.append((op.consented_at, _RANK.index(_ACTIVE), _ACTIVE, ()))
    return replace(
        op,
        phase=phase,
        declined_by=op.declines[0][1] if op.declines else None,
        timeline=tuple(sorted(timeline)),
    )


def _active(op: Operation, at: datetime | None = None, by_proposer: bool = False) -> None:
    """``at`` is given for another participant's step (it may have crossed the closure)."""
    if op.phase is Phase.CLOSED and at is not None:
        if not op.declines and op.awaiting:  # closed here before the last consent arrived
            raise NotYet("delivery.closed_early")
        assert op.closed_at is not None
        if _ran(op) and (not by_proposer or at < op.closed_at):
            return  # a step that crossed the closure
    if op.phase is Phase.PROPOSED:  # the last consent may still be on its way here
        raise NotYet("delivery.not_active_yet")
    if op.phase is not Phase.ACTIVE:
        raise IllegalTransition("delivery.not_active", phase=op.phase.value)


def _holder(op: Operation, at: datetime) -> str:
    """Who held the consignment at ``at``, by the hand-overs taken so far."""
    holder = op.route[0][0]
    for when, dst in op.handovers:
        if when <= at:
            holder = dst
    return holder


def _custody(op: Operation, claimed: str, holder: str | None = None) -> None:
    """``claimed`` acts as the holder of the consignment, but ``holder`` (by default the present
    one) holds it: later on the route, the hand-over to it may still be on its way here;
    otherwise it is wrong."""
    holder = holder or op.custody
    holders = [op.route[0][0], *(dst for _, dst in op.route)]
    later = holders[holders.index(holder) + 1 :] if holder in holders else []
    error = NotYet if claimed in later else IllegalTransition
    raise error("delivery.not_holder", claimed=claimed, holder=holder or "-")


_RANK = ("proposed", "consent", "declined", "active", "custody", "interception", "closed")


def _log(op: Operation, what: str, at: datetime, **params: str) -> Operation:
    rank = next(i for i, word in enumerate(_RANK) if what.startswith(word))
    entry = (at, rank, what, tuple(sorted(params.items())))
    return replace(op, timeline=tuple(sorted((*op.timeline, entry))))


def describe(what: str, params: tuple[tuple[str, str], ...], language: str = "en") -> str:
    """A timeline entry in ``language`` (its ``timeline.<code>`` message in the catalogs)."""
    return i18n.translate(f"timeline.{what}", dict(params), language)


def timeline_lines(op: Operation) -> list[str]:
    """The timeline in English, one dated line per entry (as scripts read ``--json``)."""
    return [f"{at.isoformat(timespec='seconds')} {describe(what, params)}"
            for at, _, what, params in op.timeline]  # fmt: skip


# -- messages: who may send what to whom -------------------------------------------------------


def operation_key(proposer: str, operation_id: str) -> str:
    """An operation's key at a node: its id is the proposer's, unique only with it."""
    return f"{proposer}/{operation_id}"


def others(op: Operation, party: str) -> tuple[str, ...]:
    """Whom ``party``'s messages of this operation go to: every other participant."""
    return tuple(p for p in op.participants if p != party)


def is_open(op: Operation) -> bool:
    """Whether the operation is still to run or running."""
    return op.phase in (Phase.PROPOSED, Phase.ACTIVE)


def case_ref(step: Step) -> str:
    """The operation id ``step`` names: the caller loads every case under it for :func:`decide`."""
    return str(step.body.operation_id)  # type: ignore[attr-defined]


def decide(cases: Mapping[str, Operation], step: Step) -> Decision[Operation]:
    """The operation after ``step`` (``cases``: the node's operations whose key ends with the id
    the step names, oldest first); :class:`IllegalTransition` says why the step is refused."""
    body = step.body
    if isinstance(body, DeliveryProposal):
        op = proposed(
            body.operation_id, step.sender, list(body.participants),
            [(leg.from_state, leg.to_state) for leg in body.route], step.at,
        )  # fmt: skip
        # Art. XVIII: the states concerned are asked, and no one else learns of the operation
        addressed(step, others(op, step.sender), "addressed.proposal")
        key = operation_key(op.proposer, op.operation_id)
        if key in cases:
            raise IllegalTransition("delivery.already_proposed", operation=op.operation_id)
        return Decision((Save(key, op, True, step.case_id or op.operation_id),))
    key, op = find_case(
        cases, body.operation_id, step,  # type: ignore[attr-defined]
        id_of=lambda o: o.operation_id, owner_of=lambda o: o.proposer,
        parties_of=lambda o: o.participants, noun="delivery",
        missing=("delivery.no_operation", {"operation": body.operation_id}),  # type: ignore[attr-defined]
    )  # fmt: skip
    # Art. XVIII: every step goes to all the other participants, and no one else
    addressed(step, others(op, step.sender), "addressed.operation")
    op = apply(op, _event(op, step), crossing=not step.mine, sender=step.sender)
    return Decision((Save(key, op, is_open(op)),))


def _event(op: Operation, step: Step) -> Event:
    """The operation event a consent, decline, hand-over, interception or closure stands for."""
    body, at = step.body, step.at
    if isinstance(body, DeliveryConsent):
        return Consented(step.sender, at)
    if isinstance(body, DeliveryDecline):
        return Declined(step.sender, at)
    if isinstance(body, CustodyHandover):
        if step.sender not in (body.from_state, body.to_state):
            raise IllegalTransition("delivery.handover_party")
        return HandedOver(body.from_state, body.to_state, body.at, body.seals_intact)
    if isinstance(body, Interception):
        return Intercepted(step.sender, body.decision, body.decided_at)
    if isinstance(body, DeliveryClosure):
        # never later than it was sent: a closure dated ahead would take steps "before" it
        closed_at = min(body.closed_at, at)
        last = max(when for when, *_ in op.timeline) if op.timeline else None
        if step.mine and last is not None and closed_at < last:
            raise IllegalTransition("delivery.closure_before_last", last=last.isoformat())
        return Closed(step.sender, body.outcome, closed_at)
    raise IllegalTransition("delivery.not_a_step", kind=step.kind)
