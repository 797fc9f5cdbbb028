"""What officers look up about the procedures: traces and their statistics, transfers,
operations and their timelines, and one list of what is due across procedures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.node.application.models import Deadline
from services.node.application.plumbing import short_id
from services.node.application.procedure_models import (
    OperationView,
    TimelineEntry,
    TraceStatsView,
    TraceView,
    TransferView,
)
from services.node.core import NodeCore
from services.node.workflows import controlled_delivery as cd
from services.node.workflows import tracing, transfers


def traces(
    core: NodeCore, *, open_only: bool = False, now: datetime | None = None
) -> list[TraceView]:
    now = now or datetime.now(UTC)
    return [
        TraceView(
            request_msg_id=t.request_msg_id,
            short_id=short_id(t.request_msg_id),
            requester=t.requester,
            requested=t.requested,
            priority=t.priority.value,
            status=t.status.value,
            overdue=t.overdue(now),
            filed_at=t.filed_at,
            due_at=t.due_at,
            acknowledged_at=t.acknowledged_at,
            answered_at=t.answered_at,
            outcome=t.outcome.value if t.outcome else None,
            reminders_sent=t.reminders_sent,
            overdue_sent=t.overdue_sent,
        )
        for t in core.casework.all_traces()
        if not open_only or t.open
    ]


def _hours(d: timedelta | None) -> float | None:
    return None if d is None else round(d.total_seconds() / 3600, 1)


def trace_stats(core: NodeCore, now: datetime | None = None) -> list[TraceStatsView]:
    """Per state asked (Art. XIII.3: prompt and accurate responses)."""
    return [
        TraceStatsView(
            state=s.state,
            received=s.received,
            answered=s.answered,
            median_response_h=_hours(s.median_response),
            p90_response_h=_hours(s.p90_response),
            on_time_share=s.on_time_share,
            outcomes=dict(s.outcomes),
        )
        for s in tracing.stats(core.casework.all_traces(), now or datetime.now(UTC))
    ]


def transfer_list(core: NodeCore) -> list[TransferView]:
    out = []
    for t in core.casework.all_transfers():
        waiting = t.stage in (transfers.Stage.NOTIFIED, transfers.Stage.AUTHORIZED)
        out.append(
            TransferView(
                transfer_id=t.transfer_id,
                exporter=t.exporter,
                importer=t.importer,
                transit=list(t.transit),
                stage=t.stage.value,
                missing_confirmations=t.missing_confirmations if waiting else [],
                refused_by=t.refused_by,
                expected_arrival=t.expected_arrival,
                dispatched=dict(t.dispatched),
                received=dict(t.received),
                discrepancies=list(transfers.discrepancies(t.dispatched, t.received))
                if t.stage is transfers.Stage.DISCREPANCY
                else [],
                overdue_alerted=t.overdue_alerted,
            )
        )
    return out


def operation_view(op: cd.Operation) -> OperationView:
    route = [op.route[0][0], *(dst for _, dst in op.route)] if op.route else []
    return OperationView(
        operation_id=op.operation_id,
        proposer=op.proposer,
        participants=list(op.participants),
        phase=op.phase.value,
        custody=op.custody,
        awaiting=list(op.awaiting) if op.phase is cd.Phase.PROPOSED else [],
        route=route,
        timeline=cd.timeline_lines(op),
        entries=[
            TimelineEntry(at=at, code=code, params=dict(params))
            for at, _, code, params in op.timeline
        ],
    )


def operations(core: NodeCore) -> list[OperationView]:
    return [operation_view(o) for o in core.casework.all_operations()]


def deadlines(core: NodeCore, now: datetime | None = None) -> list[Deadline]:
    """What this state waits for or owes, across procedures, soonest first."""
    now = now or datetime.now(UTC)
    out: list[Deadline] = []
    for t in core.casework.all_traces():
        if not t.open:
            continue
        mine = t.requested == core.party  # we owe the answer; else we wait for it
        out.append(
            Deadline(
                family="tracing",
                what="tracing.answer_owed" if mine else "tracing.answer_awaited",
                reference=t.request_msg_id,
                parties=[t.requester if mine else t.requested],
                due_at=t.due_at,
                overdue=t.overdue(now),
            )
        )
    for tr in core.casework.all_transfers():
        if tr.stage in (transfers.Stage.NOTIFIED,):
            out.append(
                Deadline(
                    family="transfer",
                    what="transfer.confirmation_awaited",
                    reference=tr.transfer_id,
                    parties=tr.missing_confirmations,
                    due_at=None,
                    overdue=False,
                )
            )
        elif tr.stage is transfers.Stage.DISPATCHED:
            arrival = datetime.combine(tr.expected_arrival, datetime.min.time(), UTC)
            out.append(
                Deadline(
                    family="transfer",
                    what="transfer.receipt_awaited",
                    reference=tr.transfer_id,
                    parties=[tr.importer],
                    due_at=arrival,
                    overdue=tr.overdue_alerted or now >= arrival + timedelta(days=1),
                )
            )
    for op in core.casework.all_operations():
        if op.phase is cd.Phase.PROPOSED and op.awaiting:
            out.append(
                Deadline(
                    family="delivery",
                    what="delivery.consent_awaited",
                    reference=op.operation_id,
                    parties=list(op.awaiting),
                    due_at=None,
                    overdue=False,
                )
            )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(out, key=lambda d: (not d.overdue, d.due_at or far))
