"""Controlled deliveries (Art. XVIII) and Article XII's consents, disclosure notices, forwarding
and export: the officer's steps."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas import Body, HandlingCode
from schemas.confidentiality import ConsentAnswer, ConsentRequest, DisclosureNotice
from schemas.controlled_delivery import (
    CustodyHandover,
    DeliveryClosure,
    DeliveryConsent,
    DeliveryDecline,
    DeliveryProposal,
)
from services.node.application.errors import ApplicationError
from services.node.application.models import Notice, Queued
from services.node.application.plumbing import (
    check_recipients,
    handling_options,
    parse_body,
    refusals,
    resolve,
    submit,
)
from services.node.application.procedure_models import (
    AnswerConsent,
    CloseDelivery,
    ConsentDelivery,
    DeclineDelivery,
    Exported,
    ExportMessage,
    ForwardMessage,
    NotifyDisclosure,
    OperationStep,
    ProposeDelivery,
    RecordHandover,
    RecordInterception,
    RequestConsent,
)
from services.node.casework import DELIVERY, operation_key
from services.node.core import NodeCore
from services.node.store import iso
from services.node.workflows import controlled_delivery as cd


def _now() -> datetime:
    return datetime.now(UTC)


def find_operation(core: NodeCore, operation_id: str, proposer: str | None) -> cd.Operation:
    """The one operation of this id (of ``proposer``, when several states used the id)."""
    found = [
        o
        for o in core.casework.all_operations()
        if o.operation_id == operation_id and (proposer is None or o.proposer == proposer.upper())
    ]
    if not found:
        raise ApplicationError(
            "procedure.not_found", what="operation", id=operation_id, owner=proposer
        )
    if len(found) > 1:
        raise ApplicationError(
            "procedure.ambiguous",
            what="operation",
            id=operation_id,
            owners=[o.proposer for o in found],
            option="proposer",
        )
    return found[0]


def _step(core: NodeCore, cmd: OperationStep, build: Callable[[cd.Operation], Body]) -> Queued:
    """Queue a message of an operation for all its other participants and no one else
    (Art. XVIII: the operation is known to the states concerned only), in its case."""
    op = find_operation(core, cmd.operation_id, cmd.proposer)
    body = build(op)
    to = [p for p in op.participants if p != core.party]
    case_id = core.casework.case_id(DELIVERY, operation_key(op.proposer, op.operation_id))
    options = handling_options(cmd, HandlingCode.H2)
    return submit(core, body, cmd, lambda: core.compose(body, to, case_id=case_id, **options))


def propose(core: NodeCore, cmd: ProposeDelivery) -> Queued:
    body = parse_body("delivery.proposal", cmd.body)
    assert isinstance(body, DeliveryProposal)
    to = check_recipients(core, [p for p in body.participants if p != core.party])
    options = handling_options(cmd, HandlingCode.H2)
    result = submit(
        core,
        body,
        cmd,
        lambda: core.compose(body, to, case_id=cmd.case_id or body.operation_id, **options),
    )
    notice = Notice(
        code="delivery.consent_asked", params={"operation_id": body.operation_id, "states": to}
    )
    return result.model_copy(update={"notices": [notice]})


def consent(core: NodeCore, cmd: ConsentDelivery) -> Queued:
    return _step(
        core,
        cmd,
        lambda op: DeliveryConsent(
            operation_id=op.operation_id,
            conditions=cmd.conditions,
            contact=cmd.officer.as_officer(),
        ),
    )


def decline(core: NodeCore, cmd: DeclineDelivery) -> Queued:
    return _step(
        core, cmd, lambda op: DeliveryDecline(operation_id=op.operation_id, reason=cmd.reason)
    )


def handover(core: NodeCore, cmd: RecordHandover) -> Queued:
    return _step(
        core,
        cmd,
        lambda op: CustodyHandover(
            operation_id=op.operation_id,
            from_state=cmd.from_state.upper(),
            to_state=cmd.to_state.upper(),
            at=cmd.at or _now(),
            place=cmd.place,
            container_ids=cmd.containers,
            seal_ids=cmd.seals,
            seals_intact=cmd.seals_intact,
            remarks=cmd.remarks,
        ),
    )


def intercept(core: NodeCore, cmd: RecordInterception) -> Queued:
    def build(op: cd.Operation) -> Body:
        return parse_body(
            "delivery.interception",
            {
                "operation_id": op.operation_id,
                "decision": cmd.decision.value,
                "decided_at": (cmd.at or _now()).isoformat(),
                "inventory": cmd.inventory,
                "new_seal_ids": cmd.new_seals,
            },
        )

    return _step(core, cmd, build)


def close(core: NodeCore, cmd: CloseDelivery) -> Queued:
    return _step(
        core,
        cmd,
        lambda op: DeliveryClosure(
            operation_id=op.operation_id, outcome=cmd.outcome, closed_at=_now(), summary=cmd.summary
        ),
    )


# -- Article XII ---------------------------------------------------------------------------------


def _received(core: NodeCore, msg_id: str) -> tuple[str, str]:
    """(msg_id, originator) of a message this node received."""
    m = resolve(core, msg_id)
    if m.direction != "in":
        raise ApplicationError("message.not_received", msg_id=m.msg_id)
    return m.msg_id, m.sender


def request_consent(core: NodeCore, cmd: RequestConsent) -> Queued:
    """Ask a message's originator for consent to a use Art. XII reserves to it."""
    msg_id, originator = _received(core, cmd.msg_id)
    body = parse_body(
        "confidentiality.consent_request",
        {
            "subject_msg_id": msg_id,
            "use": cmd.use.value,
            "proposed_recipients": [s.upper() for s in cmd.to],
            "purpose": cmd.purpose,
        },
    )
    assert isinstance(body, ConsentRequest)
    return submit(
        core,
        body,
        cmd,
        lambda: core.compose(body, [originator], handling=HandlingCode.H1, in_reply_to=msg_id),
    )


def answer_consent(core: NodeCore, cmd: AnswerConsent) -> Queued:
    request = resolve(core, cmd.request_msg_id)
    with refusals():
        asked = core.open_stored(request).body
    if not isinstance(asked, ConsentRequest):
        raise ApplicationError(
            "body.mismatch",
            field="kind",
            expected="confidentiality.consent_request",
            found=request.kind,
        )
    body = parse_body(
        "confidentiality.consent_answer",
        {
            "request_msg_id": request.msg_id,
            "subject_msg_id": asked.subject_msg_id,
            "decision": cmd.decision.value,
            "conditions": cmd.conditions,
            "reason": cmd.reason,
            "valid_until": cmd.valid_until.isoformat() if cmd.valid_until else None,
        },
    )
    assert isinstance(body, ConsentAnswer)
    return submit(
        core, body, cmd, lambda: core.reply(request.msg_id, body, handling=HandlingCode.H1)
    )


def notify_disclosure(core: NodeCore, cmd: NotifyDisclosure) -> Queued:
    """Tell a message's originator, before it happens, that it must be disclosed (Art. XII)."""
    msg_id, originator = _received(core, cmd.msg_id)
    body = parse_body(
        "confidentiality.disclosure_notice",
        {
            "subject_msg_id": msg_id,
            "legal_basis": cmd.legal_basis,
            "disclosed_to": cmd.to,
            "planned_disclosure_at": (cmd.at or _now()).isoformat(),
            "scope": cmd.scope,
            "officer": cmd.officer.as_officer().model_dump(),
        },
    )
    assert isinstance(body, DisclosureNotice)
    result = submit(
        core,
        body,
        cmd,
        lambda: core.compose(body, [originator], handling=HandlingCode.H1, in_reply_to=msg_id),
    )
    return result.model_copy(update={"notices": [Notice(code="disclosure.originator_told")]})


def forwards_files(core: NodeCore, msg_id: str) -> bool:
    """Whether forwarding this message stores files at the hub first (it has attachments)."""
    with refusals():  # opened to check it, never shown: no opening recorded
        return bool(core.open_stored(resolve(core, msg_id)).body.attachments)


def forward(core: NodeCore, cmd: ForwardMessage, *, files_stored: bool = False) -> Queued:
    """Share a received message with other states, as Art. XII allows (H2: with consent). A
    message with attachments is sent through ``attachments.forward`` (``forward_attached``),
    which stores its files at the hub for the new states first (``files_stored``); a dry run of
    it checks everything here and stores nothing."""
    m = resolve(core, cmd.msg_id)
    to = check_recipients(core, cmd.to)
    with refusals():
        body = core.open_stored(m).body  # opened to check it, never shown: no opening recorded
    stored = files_stored or cmd.dry_run  # a dry run is rolled back: it queues nothing
    if body.attachments and not stored:  # the files go up first, over the hub: async
        raise ValueError("a message with attachments is forwarded with forward_attached()")
    result = submit(core, body, cmd, lambda: core.forward(
        m.msg_id, to, cmd.officer.recorded, files_stored=stored))  # fmt: skip
    if result.preview is not None:
        # A dry run records nothing, so it shows no content: reading the body is an opening,
        # recorded under the officer's name (`show`), which Art. XII's accounting relies on.
        result = result.model_copy(
            update={"preview": result.preview.model_copy(update={"body": {}})}
        )
    notice = Notice(code="forward.copy_of", params={"msg_id": m.msg_id})
    return result.model_copy(update={"notices": [notice]})


def export(core: NodeCore, cmd: ExportMessage, write: Callable[[Exported], None]) -> Exported:
    """Take a message out of the network, as Art. XII allows: ``write`` puts the record where it
    goes, and the export is recorded (under the officer's name) once that succeeded."""
    m = resolve(core, cmd.msg_id)
    done: list[Exported] = []

    def record(opened: Any) -> None:
        h = opened.header
        exported = Exported(
            msg_id=h.msg_id,
            kind=h.kind,
            record={
                "exported_at": iso(_now()),
                "exported_by": cmd.officer.recorded,
                "judicial_use": cmd.judicial,
                "msg_id": h.msg_id,
                "kind": h.kind,
                "sender": h.sender,
                "recipients": h.recipients,
                "created_at": iso(h.created_at),
                "handling": h.handling.value,
                "handling_note": h.handling_note,
                "confidential": h.confidential,
                "body": json.loads(opened.plaintext),
            },
        )
        write(exported)
        done.append(exported)

    with refusals():
        core.export(m.msg_id, cmd.officer.recorded, judicial=cmd.judicial, write=record)
    return done[0]
