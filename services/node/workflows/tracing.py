"""Tracing (Art. XIII.3, markings of Art. VI) as a pure state machine: ``apply(trace, event)``
returns the new state and the messages to send. No broker, no clock read inside: time comes in
with each event, so every deadline is tested without waiting.

One ``Trace`` follows one request at one requested state: a request sent to the country of
manufacture and to the country of last legal import is two traces, answered independently.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.tracing import Outcome, Priority, TracingRequest
from services.node.workflows.errors import IllegalTransition, NotYet

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
        raise IllegalTransition(
            "no state to ask: name one (the firearm was made and imported here)"
        )
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
                raise IllegalTransition(f"the request was already {trace.status.value}")
            return replace(trace, status=Status.ACKNOWLEDGED, acknowledged_at=at), []
        case Answered(by=by, outcome=outcome, at=at):
            _from_requested(trace, by)
            if trace.status is Status.ANSWERED:
                raise IllegalTransition("the request was already answered")
            # an answer without a prior acknowledgement acknowledges it too
            ack = trace.acknowledged_at or at
            answered = replace(
                trace, status=Status.ANSWERED, acknowledged_at=ack, answered_at=at, outcome=outcome
            )
            return answered, []
        case Tick(now=now):
            return _deadlines(trace, now, policy)
    raise IllegalTransition(f"unknown event {event!r}")


def _from_requested(trace: Trace, by: str) -> None:
    if by != trace.requested:
        raise IllegalTransition(f"{by} was not asked: {trace.requested} was")


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
