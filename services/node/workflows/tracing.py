"""Tracing (Art. XIII.3, markings of Art. VI) as a pure state machine: ``apply(trace, event)``
returns the new state and the messages to send. No broker, no clock read inside: time comes in
with each event, so every deadline is tested without waiting.

One ``Trace`` follows one request at one requested state: a request sent to the country of
manufacture and to the country of last legal import is two traces, answered independently.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schemas import HandlingCode
from schemas.tracing import (
    Outcome,
    Priority,
    TracingAcknowledgement,
    TracingOverdue,
    TracingReminder,
    TracingRequest,
    TracingResponse,
)
from services.node.workflows.errors import IllegalTransition, NotYet
from services.node.workflows.steps import Decision, Effects, FollowUp, Save, Step, addressed

__all__ = ["IllegalTransition", "NotYet"]


@dataclass(frozen=True)
class TracingPolicy:
    """Due dates and reminders. The defaults follow published tracing practice: an answer within
    24 hours for an urgent request, within 7 days for a routine one."""

    urgent: timedelta = timedelta(hours=24)
    routine: timedelta = timedelta(days=7)
    #: Reminders when these fractions of the period have passed without an answer.
    reminders_at: tuple[float, ...] = (0.5, 0.85)

    def period(self, priority: Priority) -> timedelta:
        return self.urgent if priority is Priority.URGENT else self.routine

    def due(self, priority: Priority, filed_at: datetime) -> datetime:
        return filed_at + self.period(priority)


#: Published practice: 24 hours for an urgent request, 7 days for a routine one.
DEFAULT_POLICY = TracingPolicy()


def requested_states(request: TracingRequest, named: Sequence[str], requester: str) -> list[str]:
    """Where a request goes: the states named; where none is, the country of manufacture and the
    country of last legal import (the import marking), as firearms tracing practice does."""
    markings = request.firearm.markings
    imported = markings.import_marking.country if markings.import_marking else None
    candidates = list(named) or [markings.country_of_manufacture, *([imported] if imported else [])]
    states = [s for s in dict.fromkeys(candidates) if s != requester]
    if not states:
        raise IllegalTransition("trace.no_state")
    return states


class Status(StrEnum):
    FILED = "filed"  # sent, not yet acknowledged
    ACKNOWLEDGED = "acknowledged"
    ANSWERED = "answered"


@dataclass(frozen=True)
class Trace:
    request_msg_id: str
    requester: str
    requested: str
    priority: Priority
    filed_at: datetime
    due_at: datetime
    status: Status = Status.FILED
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    outcome: Outcome | None = None
    reminders_sent: int = 0
    overdue_sent: bool = False

    @property
    def open(self) -> bool:
        return self.status is not Status.ANSWERED

    def overdue(self, now: datetime) -> bool:
        return self.open and now >= self.due_at

    @property
    def answered_on_time(self) -> bool:
        return self.answered_at is not None and self.answered_at <= self.due_at


# -- events in, effects out ---------------------------------------------------------------------


@dataclass(frozen=True)
class Acknowledged:
    by: str
    at: datetime


@dataclass(frozen=True)
class Answered:
    by: str
    outcome: Outcome
    at: datetime


@dataclass(frozen=True)
class Tick:
    """Time passes (a timer, or the node starting again after being down)."""

    now: datetime


Event = Acknowledged | Answered | Tick


@dataclass(frozen=True)
class SendReminder:
    to: str
    request_msg_id: str
    due_at: datetime
    sequence: int


@dataclass(frozen=True)
class SendOverdue:
    to: str
    request_msg_id: str
    due_at: datetime


Effect = SendReminder | SendOverdue


def file(
    request_msg_id: str,
    request: TracingRequest,
    requester: str,
    requested: str,
    filed_at: datetime,
    policy: TracingPolicy = DEFAULT_POLICY,
    *,
    stated: bool = False,
) -> Trace:
    """A new trace of a request. Its due date follows from its priority under ``policy``, or,
    with ``stated``, is the one the request states (as the requested state receives it)."""
    return Trace(
        request_msg_id=request_msg_id,
        requester=requester,
        requested=requested,
        priority=request.priority,
        filed_at=filed_at,
        due_at=request.due_at if stated else policy.due(request.priority, filed_at),
    )


def apply(
    trace: Trace, event: Event, policy: TracingPolicy = DEFAULT_POLICY
) -> tuple[Trace, list[Effect]]:
    """The trace after ``event``, and what the requesting node must send because of it."""
    match event:
        case Acknowledged(by=by, at=at):
            _from_requested(trace, by)
            if trace.status is Status.ANSWERED and trace.answered_at and at <= trace.answered_at:
                # sent before the answer, arrived after it: the answer already acknowledged it
                return replace(trace, acknowledged_at=min(at, trace.acknowledged_at or at)), []
            if trace.status is not Status.FILED:
                raise IllegalTransition("trace.already_status", status=trace.status.value)
            return replace(trace, status=Status.ACKNOWLEDGED, acknowledged_at=at), []
        case Answered(by=by, outcome=outcome, at=at):
            _from_requested(trace, by)
            if trace.status is Status.ANSWERED:
                raise IllegalTransition("trace.already_answered")
            # an answer without a prior acknowledgement acknowledges it too
            ack = trace.acknowledged_at or at
            answered = replace(
                trace, status=Status.ANSWERED, acknowledged_at=ack, answered_at=at, outcome=outcome
            )
            return answered, []
        case Tick(now=now):
            return _deadlines(trace, now, policy)
    raise IllegalTransition("unknown_event", event=repr(event))


def _from_requested(trace: Trace, by: str) -> None:
    if by != trace.requested:
        raise IllegalTransition("trace.not_asked", party=by, requested=trace.requested)


def _deadlines(trace: Trace, now: datetime, policy: TracingPolicy) -> tuple[Trace, list[Effect]]:
    """Reminders before the due date, one overdue notice after it: each sent once, even if the
    node was down when it fell due (it fires at the next tick)."""
    if not trace.open:
        return trace, []
    effects: list[Effect] = []
    if now >= trace.due_at:
        if not trace.overdue_sent:
            effects.append(SendOverdue(trace.requested, trace.request_msg_id, trace.due_at))
            trace = replace(trace, overdue_sent=True)
        return trace, effects
    period = trace.due_at - trace.filed_at
    due_reminders = sum(1 for f in policy.reminders_at if now >= trace.filed_at + period * f)
    if due_reminders > trace.reminders_sent:
        # after a long absence only the latest reminder goes: one message, not a burst
        effects.append(
            SendReminder(trace.requested, trace.request_msg_id, trace.due_at, due_reminders)
        )
        trace = replace(trace, reminders_sent=due_reminders)
    return trace, effects


# -- messages: who may send what to whom -------------------------------------------------------


def trace_key(request_msg_id: str, state: str) -> str:
    """A trace's key at a node: one per (request, state asked)."""
    return f"{request_msg_id}/{state}"


def keys(step: Step) -> list[str]:
    """The traces ``step`` moves, for the caller to load before :func:`decide`."""
    body = step.body
    if isinstance(body, TracingRequest):
        # the requesting node keeps a trace per state asked; each requested node its own
        asked = step.recipients if step.mine else (step.party,)
        return [trace_key(step.msg_id, state) for state in asked]
    if isinstance(body, TracingAcknowledgement | TracingResponse):
        return [trace_key(body.request_msg_id, step.sender)]
    if isinstance(body, TracingReminder | TracingOverdue):
        return [trace_key(body.request_msg_id, _reminded(step))]
    return []


def decide(
    traces: Mapping[str, Trace | None], step: Step, policy: TracingPolicy = DEFAULT_POLICY
) -> Decision[Trace]:
    """The traces after ``step`` (``traces``: the node's trace under each of :func:`keys`, None
    where it has none); :class:`IllegalTransition` says why the step is refused."""
    body = step.body
    if isinstance(body, TracingRequest):
        return _filed(traces, step, body, policy)
    if isinstance(body, TracingAcknowledgement | TracingResponse):
        # Art. XIII.3: the requested state answers the requesting state, and it alone
        key = trace_key(body.request_msg_id, step.sender)
        trace = _known(traces.get(key), body.request_msg_id, step.sender)
        addressed(step, [trace.requester], "addressed.trace_answer")
        event: Event
        if isinstance(body, TracingAcknowledgement):
            event = Acknowledged(step.sender, step.at)
        else:
            event = Answered(step.sender, body.outcome, step.at)
        trace, _ = apply(trace, event, policy)
        return Decision((Save(key, trace, trace.open),))
    if isinstance(body, TracingReminder | TracingOverdue):
        return _reminder(traces, step, body)
    return Decision()


def _filed(
    traces: Mapping[str, Trace | None],
    step: Step,
    body: TracingRequest,
    policy: TracingPolicy,
) -> Decision[Trace]:
    if body.due_at <= step.at:
        raise IllegalTransition("trace.due_before_filed")
    saves: list[Save[Trace]] = []
    for key in keys(step):
        if traces.get(key) is not None or any(s.key == key for s in saves):
            raise IllegalTransition("trace.already_filed", msg_id=step.msg_id)
        # the requested state keeps the due date the request states
        trace = file(step.msg_id, body, step.sender, key.rsplit("/", 1)[1], step.at, policy,
                     stated=True)  # fmt: skip
        saves.append(Save(key, trace, True, step.case_id))
    return Decision(tuple(saves))


def _reminder(
    traces: Mapping[str, Trace | None], step: Step, body: TracingReminder | TracingOverdue
) -> Decision[Trace]:
    state = _reminded(step)
    key = trace_key(body.request_msg_id, state)
    trace = traces.get(key)
    if trace is None:
        if not step.mine:  # the request itself may still be on its way here
            raise NotYet("trace.no_request", request=body.request_msg_id, state=state)
        trace = _known(trace, body.request_msg_id, state)
    # Art. XIII.3: the requesting state reminds the state it asked
    if step.sender != trace.requester:
        raise IllegalTransition("trace.requester_reminds", requester=trace.requester)
    addressed(step, [trace.requested], "addressed.reminder")
    if step.mine and not trace.open:
        raise IllegalTransition("trace.already_answered")
    if isinstance(body, TracingOverdue) and step.at < trace.due_at:
        raise IllegalTransition("trace.not_due", due=trace.due_at.isoformat())
    if isinstance(body, TracingReminder):
        trace = replace(trace, reminders_sent=max(trace.reminders_sent, body.sequence))
    else:
        trace = replace(trace, overdue_sent=True)
    return Decision((Save(key, trace, trace.open),))


def _reminded(step: Step) -> str:
    """The state a reminder or overdue notice goes to, as this node keeps its trace."""
    return step.recipients[0] if step.mine else step.party


def _known(trace: Trace | None, request_msg_id: str, state: str) -> Trace:
    if trace is None:
        raise IllegalTransition("trace.no_request", request=request_msg_id, state=state)
    return trace


def watches(trace: Trace, party: str) -> bool:
    """Whether ``party`` watches this trace's due date: only the requesting state does."""
    return trace.requester == party


def tick(
    key: str, trace: Trace, case_id: str | None, now: datetime, policy: TracingPolicy
) -> Decision[Trace]:
    """Time passes for one trace: the reminder or overdue notice it asks the requester's node
    to send, each once, even if it fell due while the node was down."""
    trace, due = apply(trace, Tick(now), policy)
    follow_ups = []
    for e in due:
        body: TracingReminder | TracingOverdue
        if isinstance(e, SendReminder):
            body = TracingReminder(
                request_msg_id=e.request_msg_id, due_at=e.due_at, sequence=e.sequence
            )
        else:
            body = TracingOverdue(request_msg_id=e.request_msg_id, due_at=e.due_at, case_id=case_id)
        follow_ups.append(
            FollowUp(body, (e.to,), HandlingCode.H1, False, case_id, e.request_msg_id)
        )
    return Decision((Save(key, trace, trace.open),), Effects(follow_ups=tuple(follow_ups)))


# -- statistics: "prompt and accurate responses" -------------------------------------------------


@dataclass(frozen=True)
class StateStats:
    state: str
    received: int
    answered: int
    median_response: timedelta | None
    p90_response: timedelta | None
    on_time_share: float | None
    outcomes: dict[str, int] = field(default_factory=dict)


def stats(traces: Iterable[Trace], now: datetime) -> list[StateStats]:
    """Per requested state: requests received and answered, median and 90th-percentile response
    time, the share answered on time (of those answered or already overdue)."""
    by_state: dict[str, list[Trace]] = {}
    for t in traces:
        by_state.setdefault(t.requested, []).append(t)
    out = []
    for state in sorted(by_state):
        ts = by_state[state]
        answered = [t for t in ts if t.answered_at is not None]
        times: list[timedelta] = sorted(
            t.answered_at - t.filed_at for t in answered if t.answered_at is not None
        )
        judged = [t for t in ts if t.answered_at is not None or now >= t.due_at]
        on_time = sum(1 for t in judged if t.answered_on_time)
        outcomes: dict[str, int] = {}
        for t in answered:
            outcomes[t.outcome.value] = outcomes.get(t.outcome.value, 0) + 1  # type: ignore[union-attr]
        out.append(
            StateStats(
                state=state,
                received=len(ts),
                answered=len(answered),
                median_response=_median(times),
                p90_response=_percentile(times, 0.9),
                on_time_share=on_time / len(judged) if judged else None,
                outcomes=outcomes,
            )
        )
    return out


def _median(values: Sequence[timedelta]) -> timedelta | None:
    if not values:
        return None
    seconds = statistics.median(v.total_seconds() for v in values)
    return timedelta(seconds=seconds)


def _percentile(values: Sequence[timedelta], q: float) -> timedelta | None:
    """The nearest-rank percentile."""
    if not values:
        return None
    rank = max(1, -(-int(q * 100) * len(values) // 100))  # ceil(q * n)
    return values[rank - 1]
