"""Tracing (Art. XIII.3) and licensed transfers (Art. IX): the officer's steps and the lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from schemas import Body, HandlingCode
from schemas.attachment import AttachmentManifest
from schemas.tracing import (
    Outcome,
    Priority,
    TracingAcknowledgement,
    TracingRequest,
    TracingResponse,
)
from schemas.transfers import (
    DispatchNotice,
    ImportConfirmation,
    ReceiptConfirmation,
    ReceivedLine,
    TransferNotice,
    TransitAuthorization,
)
from services.core.envelope import header_time
from services.node.application.errors import ApplicationError
from services.node.application.models import Notice, OfficerIdentity, Queued
from services.node.application.plumbing import (
    check_recipients,
    handling_options,
    parse_body,
    placeholders,
    resolve,
    step_refused,
    submit,
    with_attachments,
)
from services.node.application.procedure_models import (
    AcknowledgeTrace,
    AnswerTrace,
    ConfirmTransfer,
    DispatchTransfer,
    FileTracingRequest,
    NotifyTransfer,
    ReceiveTransfer,
)
from services.node.casework import TRANSFER, transfer_key
from services.node.core import NodeCore
from services.node.workflows import tracing, transfers
from services.node.workflows.errors import IllegalTransition


def _now() -> datetime:
    return datetime.now(UTC)


def file_request(
    core: NodeCore, cmd: FileTracingRequest, attachments: Sequence[AttachmentManifest] = ()
) -> Queued:
    """File a tracing request, due from the instant it is sealed (the policy's period), naming
    ``attachments`` (already stored at the hub for every state asked: ``attachments.send``)."""
    given = dict(cmd.body)
    unfilled = placeholders(given)  # before any field is read: a template's text is no value
    if unfilled:
        raise ApplicationError("body.not_filled_in", kind="tracing.request", fields=unfilled)
    _acting_officer(given, "requesting_officer", cmd.officer)
    priority = cmd.priority or _priority(given.get("priority"))
    justification = cmd.justification or given.get("urgency_justification")
    if priority is Priority.URGENT and not justification:
        # an urgent request says why (tracing.request's schema); asked as the command's field
        raise ApplicationError("field.required", field="justification", when="priority=urgent")
    filed = header_time(core.clock())
    due = core.casework.policy.due(priority, filed)
    body = parse_body(
        "tracing.request",
        given
        | {
            "priority": priority.value,
            "urgency_justification": justification,
            "due_at": due.isoformat(),
        },
    )
    assert isinstance(body, TracingRequest)
    body = with_attachments(body, attachments)
    named = [s.strip().upper() for s in cmd.to if s.strip()]
    if named:  # states the officer typed: each checked as any recipient is
        check_recipients(core, named)
    try:
        asked = tracing.requested_states(body, named, core.party)
    except IllegalTransition as exc:
        raise step_refused(body.KIND, exc) from None
    on_network = [s for s in asked if s in core.directory.entries]
    off = [s for s in asked if s not in on_network]
    if not on_network:
        raise ApplicationError("recipient.off_network", states=off)
    options = handling_options(cmd, HandlingCode.H1)
    case_id = cmd.case_id or body.case_reference
    result = submit(
        core,
        body,
        cmd,
        lambda: core.compose(
            body,
            on_network,
            case_id=case_id,
            created_at=filed,
            **options,
        ),
    )
    notices = [
        Notice(code="tracing.due", params={"due_at": due.isoformat(), "priority": priority.value})
    ]
    if off:
        notices.append(Notice(code="tracing.not_asked_off_network", params={"states": off}))
    return result.model_copy(update={"notices": notices})


def _priority(given: Any) -> Priority:
    """The body's priority (routine where it names none); an unknown one names the field."""
    if given in (None, ""):
        return Priority.ROUTINE
    try:
        return Priority(given)
    except ValueError:
        problem = {"field": "priority", "problem": "enum", "input": str(given)}
        raise ApplicationError("body.invalid", kind="tracing.request", problems=[problem]) from None


def _acting_officer(given: dict[str, Any], field: str, officer: OfficerIdentity) -> None:
    """Put the officer acting in ``given[field]``: the message is recorded and signed for them,
    so a body naming someone else (an example edited in part, say) never speaks for another.
    The body's email and phone are kept only where it names this very officer."""
    acting = officer.as_officer().model_dump(mode="json", exclude_none=True)
    named = given.get(field)
    if isinstance(named, dict) and all(named.get(k) == v for k, v in acting.items()):
        acting = named | acting
    given[field] = acting


def acknowledge(core: NodeCore, cmd: AcknowledgeTrace) -> Queued:
    request = resolve(core, cmd.request_msg_id)
    body = TracingAcknowledgement(
        request_msg_id=request.msg_id,
        received_at=_now(),
        reference=cmd.reference,
        expected_answer_by=cmd.expected_by,
    )
    return submit(core, body, cmd, lambda: core.reply(request.msg_id, body))


def answer(core: NodeCore, cmd: AnswerTrace) -> Queued:
    """Answer a request; the body's request id, outcome and officer come from what is known."""
    request = resolve(core, cmd.request_msg_id)
    given: dict[str, Any] = dict(cmd.body or {})
    unfilled = placeholders(given)
    if unfilled:
        raise ApplicationError("body.not_filled_in", kind="tracing.response", fields=unfilled)
    _acting_officer(given, "responding_officer", cmd.officer)
    if given.get("request_msg_id") not in (None, request.msg_id):
        raise ApplicationError(
            "body.mismatch",
            field="request_msg_id",
            expected=request.msg_id,
            found=given["request_msg_id"],
        )
    if cmd.outcome is not None and given.get("outcome") not in (None, cmd.outcome.value):
        raise ApplicationError(
            "body.mismatch", field="outcome", expected=cmd.outcome.value, found=given["outcome"]
        )
    if cmd.body is None and cmd.outcome is not Outcome.NOT_FOUND:
        # a found or partial answer carries the chain of transfers: a body to fill in
        raise ApplicationError("field.required", field="body", when="outcome=found|partial")
    given |= {"request_msg_id": request.msg_id}
    if cmd.outcome is not None:
        given["outcome"] = cmd.outcome.value
    if cmd.narrative:
        given.setdefault("narrative", cmd.narrative)
    body = parse_body(
        "tracing.response",
        given,
    )
    assert isinstance(body, TracingResponse)
    return submit(core, body, cmd, lambda: core.reply(request.msg_id, body))


# -- licensed transfers (Art. IX) ----------------------------------------------------------------


def find_transfer(core: NodeCore, transfer_id: str, exporter: str | None) -> transfers.Transfer:
    """The one transfer of this id (of ``exporter``, when several states used the id)."""
    found = [
        t
        for t in core.casework.all_transfers()
        if t.transfer_id == transfer_id and (exporter is None or t.exporter == exporter.upper())
    ]
    if not found:
        raise ApplicationError(
            "procedure.not_found", what="transfer", id=transfer_id, owner=exporter
        )
    if len(found) > 1:
        raise ApplicationError(
            "procedure.ambiguous",
            what="transfer",
            id=transfer_id,
            owners=[t.exporter for t in found],
            option="exporter",
        )
    return found[0]


def _notice(core: NodeCore, t: transfers.Transfer) -> tuple[str, TransferNotice]:
    """The transfer's notice, as this node stored it (under the transfer's case)."""
    case_id = core.casework.case_id(TRANSFER, transfer_key(t.exporter, t.transfer_id))
    candidates = core.store.messages(kind="transfer.notice", direction=None, case_id=case_id)
    for m in candidates or core.store.messages(kind="transfer.notice", direction=None):
        if m.sender != t.exporter:
            continue
        body = core.open_stored(m).body
        if isinstance(body, TransferNotice) and body.transfer_id == t.transfer_id:
            return m.msg_id, body
    raise ApplicationError(
        "procedure.not_found", what="transfer_notice", id=t.transfer_id, owner=t.exporter
    )


def _send_transfer(
    core: NodeCore, cmd: Any, t: transfers.Transfer, body: Body, **options: Any
) -> Queued:
    """Queue a message of transfer ``t`` for all its other parties, in its case."""
    to = [p for p in (t.exporter, t.importer, *t.transit) if p != core.party]
    case_id = core.casework.case_id(TRANSFER, transfer_key(t.exporter, t.transfer_id))
    handling = handling_options(cmd, HandlingCode.H1)
    return submit(
        core,
        body,
        cmd,
        lambda: core.compose(body, to, case_id=case_id, **options, **handling),
    )


def notify_transfer(core: NodeCore, cmd: NotifyTransfer) -> Queued:
    body = parse_body("transfer.notice", cmd.body)
    assert isinstance(body, TransferNotice)
    to = check_recipients(core, [body.importer.country, *body.transit_states])
    options = handling_options(cmd, HandlingCode.H1)
    return submit(
        core,
        body,
        cmd,
        lambda: core.compose(body, to, case_id=cmd.case_id or body.transfer_id, **options),
    )


def confirm_transfer(core: NodeCore, cmd: ConfirmTransfer) -> Queued:
    t = find_transfer(core, cmd.transfer_id, cmd.exporter)
    notice_id, notice = _notice(core, t)
    common: dict[str, Any] = {
        "transfer_id": t.transfer_id,
        "decision": cmd.decision.value,
        "reason": cmd.reason,
        "conditions": cmd.conditions,
        "officer": cmd.officer.as_officer().model_dump(),
    }
    if core.party == t.importer:
        kind = "transfer.import_confirmation"
        common["import_licence"] = notice.import_licence.model_dump(mode="json")
    elif core.party in t.transit:
        kind = "transfer.transit_authorization"
        common |= {"authorization_number": cmd.number, "valid_until": cmd.valid_until}
    else:
        raise ApplicationError(
            "procedure.not_a_party", what="transfer", id=t.transfer_id, party=core.party
        )
    body = parse_body(kind, common)
    assert isinstance(body, ImportConfirmation | TransitAuthorization)
    return _send_transfer(core, cmd, t, body, in_reply_to=notice_id)


def dispatch_transfer(core: NodeCore, cmd: DispatchTransfer) -> Queued:
    t = find_transfer(core, cmd.transfer_id, core.party)
    _, notice = _notice(core, t)
    items = [
        i.model_copy(update={"quantity": cmd.lines.get(i.line, i.quantity)}) for i in notice.items
    ]
    body = DispatchNotice(
        transfer_id=t.transfer_id,
        dispatched_at=_now(),
        carrier=cmd.carrier,
        transport_document=cmd.document,
        items=items,
        expected_arrival=cmd.arrival or t.expected_arrival,
        seal_ids=cmd.seals,
    )
    return _send_transfer(core, cmd, t, body)


def receive_transfer(core: NodeCore, cmd: ReceiveTransfer) -> Queued:
    t = find_transfer(core, cmd.transfer_id, cmd.exporter)
    received = {**t.dispatched, **cmd.lines}  # lines not named: received as dispatched
    body = ReceiptConfirmation(
        transfer_id=t.transfer_id,
        received_at=_now(),
        place=cmd.place,
        lines=[
            ReceivedLine(line=n, quantity_received=q, remarks=cmd.remarks.get(n) or None)
            for n, q in sorted(received.items())
        ],
        officer=cmd.officer.as_officer(),
    )
    result = _send_transfer(core, cmd, t, body)
    differs = bool(transfers.discrepancies(t.dispatched, received))
    code = "transfer.discrepancy_reported" if differs else "transfer.received_as_dispatched"
    return result.model_copy(update={"notices": [Notice(code=code)]})
