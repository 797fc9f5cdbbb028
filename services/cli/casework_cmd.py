"""The officer's commands for the Convention's procedures: ``trace``, ``transfer``, ``delivery``,
and Article XII's ``consent``, ``disclose``, ``forward`` and ``export``.

Each command builds its message from the procedure's state and a few options (or a JSON body from
``cifta template <kind>`` where there is much to say), then queues it like ``cifta send``: the
node refuses, with the reason, any step the procedure does not allow.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from schemas import Body, HandlingCode
from schemas.base import Officer
from schemas.confidentiality import (
    ConsentAnswer,
    ConsentDecision,
    ConsentRequest,
    DisclosureNotice,
    IntendedUse,
)
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
from schemas.tracing import (
    Outcome,
    Priority,
    TracingAcknowledgement,
    TracingRequest,
    TracingResponse,
)
from schemas.transfers import (
    Decision,
    DispatchNotice,
    ImportConfirmation,
    ReceiptConfirmation,
    ReceivedLine,
    TransferNotice,
    TransitAuthorization,
)
from services.cli.audit_cmd import _aware as _when
from services.cli.node_cmd import CliError, _core, _officer, _read_body
from services.cli.tables import dumps, table
from services.core.envelope import OpenedEnvelope, ProtectedHeader, header_time
from services.core.files import write_new
from services.node.casework import DELIVERY, TRANSFER, operation_key, transfer_key
from services.node.core import NodeCore
from services.node.store import iso
from services.node.workflows import controlled_delivery as cd
from services.node.workflows import tracing, transfers

_C = TypeVar("_C")

# -- shared ----------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _states(text: str | None) -> list[str]:
    return [p.strip().upper() for p in (text or "").split(",") if p.strip()]


def _officer_body(core: NodeCore, args: argparse.Namespace) -> Officer:
    """The officer as messages name them: ``--officer "Name|Position|Agency"`` (or
    CIFTA_OFFICER); a missing position or agency is the node's point of contact's."""
    parts = [p.strip() for p in _officer(args).split("|")]
    entry = core.directory.entries.get(core.party)
    agency = entry.point_of_contact if entry is not None else f"{core.party} point of contact"
    return Officer(
        name=parts[0],
        position=parts[1] if len(parts) > 1 and parts[1] else "CIFTA liaison officer",
        agency=parts[2] if len(parts) > 2 and parts[2] else agency,
    )


def _handling(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "handling": HandlingCode(args.handling),
        "confidential": bool(args.confidential),
        "handling_note": args.note,
    }


def _queued(args: argparse.Namespace, header: ProtectedHeader, extra: str = "") -> int:
    if args.json:
        print(
            dumps({"msg_id": header.msg_id, "kind": header.kind, "recipients": header.recipients})
        )
    else:
        to = ", ".join(header.recipients)
        print(f"queued {header.kind} {header.msg_id} for {to}" + (f"; {extra}" if extra else ""))
    return 0


def _lines(values: Sequence[str] | None) -> dict[int, int]:
    """``--line 1=40 --line 2=38``: quantities by item line."""
    out: dict[int, int] = {}
    for v in values or []:
        line, _, quantity = v.partition("=")
        try:
            out[int(line)] = int(quantity)
        except ValueError:
            raise CliError(f"--line {v!r}: write LINE=QUANTITY, e.g. 1=40") from None
    return out


def _short(t: datetime | date | None) -> str:
    if t is None:
        return ""
    if isinstance(t, datetime):
        return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return t.isoformat()


def _opened_body(core: NodeCore, msg_id: str) -> Body:
    message = core.store.message(msg_id)
    if message is None:
        raise CliError(f"no message {msg_id}")
    return core.open_stored(message).body


# -- tracing (Art. XIII.3) -------------------------------------------------------------------------


def cmd_trace_new(args: argparse.Namespace) -> int:
    core = _core(args)
    body = _read_body("tracing.request", args.body)
    assert isinstance(body, TracingRequest)
    priority = Priority(args.priority) if args.priority else body.priority
    justification = args.justification or body.urgency_justification
    filed = header_time(core.clock())  # the request is filed, and due, from its sealing
    due = core.casework.policy.due(priority, filed)
    try:
        body = TracingRequest.model_validate(
            body.model_dump() | {
                "priority": priority, "urgency_justification": justification, "due_at": due,
            }
        )  # fmt: skip
    except ValueError as exc:
        raise CliError(f"the request is not valid: {exc}") from None
    try:
        asked = tracing.requested_states(body, _states(args.to), core.party)
    except tracing.IllegalTransition as exc:
        raise CliError(str(exc)) from None
    on_network = [s for s in asked if s in core.directory.entries]
    off = [s for s in asked if s not in on_network]
    if not on_network:
        raise CliError(
            f"{', '.join(off)} (country of manufacture or of last import) is not on the network:"
            " name the state to ask with --to"
        )
    compose: Any = core.compose
    if args.attach:  # the files are stored at the hub first (imported here: it imports this)
        from services.cli import attachment_cmd

        compose = functools.partial(attachment_cmd.send, args, core)
    header = compose(body, on_network, case_id=args.case, created_at=filed, **_handling(args))
    note = f"due {_short(due)} UTC ({priority.value})"
    if off:
        note += f"; not on the network, not asked: {', '.join(off)}"
    return _queued(args, header, note)


def cmd_trace_list(args: argparse.Namespace) -> int:
    core = _core(args)
    now = _now()
    traces = [t for t in core.casework.all_traces() if not args.open or t.open]
    if args.json:
        print(dumps([_trace_json(t, now) for t in traces]))
        return 0
    rows = [
        (
            t.request_msg_id,
            f"{t.requester}->{t.requested}",
            t.priority.value,
            t.status.value + (" OVERDUE" if t.overdue(now) else ""),
            _short(t.filed_at),
            _short(t.due_at),
            t.outcome.value if t.outcome else "",
            t.reminders_sent,
        )
        for t in traces
    ]
    print(table(["request", "asked", "priority", "status", "filed", "due", "outcome",
                 "reminders"], rows))  # fmt: skip
    return 0


def _trace_json(t: tracing.Trace, now: datetime) -> dict[str, Any]:
    return {
        "request_msg_id": t.request_msg_id,
        "requester": t.requester,
        "requested": t.requested,
        "priority": t.priority.value,
        "status": t.status.value,
        "overdue": t.overdue(now),
        "filed_at": iso(t.filed_at),
        "due_at": iso(t.due_at),
        "acknowledged_at": iso(t.acknowledged_at) if t.acknowledged_at else None,
        "answered_at": iso(t.answered_at) if t.answered_at else None,
        "outcome": t.outcome.value if t.outcome else None,
        "reminders_sent": t.reminders_sent,
        "overdue_sent": t.overdue_sent,
    }


def cmd_trace_respond(args: argparse.Namespace) -> int:
    core = _core(args)
    body: Body
    if args.ack:
        body = TracingAcknowledgement(
            request_msg_id=args.request_msg_id,
            received_at=_now(),
            reference=args.reference,
            expected_answer_by=_when(args.expected_by),
        )
    elif args.body:
        body = _read_body("tracing.response", args.body)
        if not isinstance(body, TracingResponse) or body.request_msg_id != args.request_msg_id:
            raise CliError(f"the response's request_msg_id is not {args.request_msg_id}")
    elif args.outcome == Outcome.NOT_FOUND.value:
        body = TracingResponse(
            request_msg_id=args.request_msg_id,
            outcome=Outcome.NOT_FOUND,
            narrative=args.narrative,
            responding_officer=_officer_body(core, args),
        )
    else:
        raise CliError(
            "--ack, or --outcome not_found, or --body with a tracing.response that carries the "
            "chain of transfers found (`cifta template tracing.response`)"
        )
    header = core.reply(args.request_msg_id, body)
    return _queued(args, header)


def cmd_trace_stats(args: argparse.Namespace) -> int:
    core = _core(args)
    stats = tracing.stats(core.casework.all_traces(), _now())

    def hours(d: Any) -> float | None:
        return None if d is None else round(d.total_seconds() / 3600, 1)

    if args.json:
        print(dumps([
            {
                "state": s.state, "received": s.received, "answered": s.answered,
                "median_response_h": hours(s.median_response),
                "p90_response_h": hours(s.p90_response),
                "on_time_share": s.on_time_share, "outcomes": s.outcomes,
            }
            for s in stats
        ]))  # fmt: skip
        return 0
    rows = [
        (
            s.state,
            s.received,
            s.answered,
            "" if s.median_response is None else hours(s.median_response),
            "" if s.p90_response is None else hours(s.p90_response),
            "" if s.on_time_share is None else f"{s.on_time_share:.0%}",
            ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items())),
        )
        for s in stats
    ]
    print("tracing requests by state asked (Art. XIII.3: prompt and accurate responses)")
    print(table(["state asked", "received", "answered", "median h", "p90 h", "on time",
                 "outcomes"], rows))  # fmt: skip
    return 0


# -- licensed transfers (Art. IX) ------------------------------------------------------------------


def _transfer(core: NodeCore, transfer_id: str, exporter: str | None) -> transfers.Transfer:
    return _one(
        [t for t in core.casework.all_transfers() if t.transfer_id == transfer_id],
        lambda t: t.exporter, exporter, f"transfer {transfer_id}", "--exporter",
    )  # fmt: skip


def _one(cases: list[_C], owner_of: Callable[[_C], str], owner: str | None, what: str,
         option: str) -> _C:  # fmt: skip
    """The one case of this id (of ``owner``, when several states used the id)."""
    found = [c for c in cases if owner is None or owner_of(c) == owner]
    if not found:
        raise CliError(f"no {what}" + (f" of {owner}" if owner else ""))
    if len(found) > 1:
        raise CliError(f"{what} exists from several states: pass {option}")
    return found[0]


def _notice(core: NodeCore, t: transfers.Transfer) -> tuple[str, TransferNotice]:
    """The transfer's notice, as this node stored it."""
    for m in core.store.messages(kind="transfer.notice", direction=None):
        if m.sender != t.exporter:
            continue
        body = core.open_stored(m).body
        if isinstance(body, TransferNotice) and body.transfer_id == t.transfer_id:
            return m.msg_id, body
    raise CliError(f"the notice of transfer {t.transfer_id} is not in this node's store")


def _to_transfer(core: NodeCore, t: transfers.Transfer) -> list[str]:
    return [p for p in (t.exporter, t.importer, *t.transit) if p != core.party]


def cmd_transfer_new(args: argparse.Namespace) -> int:
    core = _core(args)
    body = _read_body("transfer.notice", args.body)
    assert isinstance(body, TransferNotice)
    to = [body.importer.country, *body.transit_states]
    header = core.compose(body, to, case_id=args.case or body.transfer_id, **_handling(args))
    return _queued(args, header, f"transfer {body.transfer_id}")


def cmd_transfer_confirm(args: argparse.Namespace) -> int:
    core = _core(args)
    t = _transfer(core, args.transfer_id, args.exporter)
    notice_id, notice = _notice(core, t)
    decision = Decision(args.decision)
    common: dict[str, Any] = {
        "transfer_id": t.transfer_id, "decision": decision, "reason": args.reason,
        "conditions": args.condition or [], "officer": _officer_body(core, args),
    }  # fmt: skip
    body: Body
    try:
        if core.party == t.importer:
            body = ImportConfirmation(import_licence=notice.import_licence, **common)
        elif core.party in t.transit:
            body = TransitAuthorization(
                authorization_number=args.number,
                valid_until=date.fromisoformat(args.valid_until) if args.valid_until else None,
                **common,
            )
        else:
            raise CliError(f"{core.party} is neither the importing nor a transit state")
    except ValueError as exc:
        raise CliError(f"the confirmation is not valid: {exc}") from None
    return _queued(args, _compose_transfer(core, args, t, body, in_reply_to=notice_id))


def _compose_transfer(
    core: NodeCore, args: argparse.Namespace, t: transfers.Transfer, body: Body, **options: Any
) -> ProtectedHeader:
    """Queue a message of transfer ``t`` for its other parties, in its case."""
    case_id = core.casework.case_id(TRANSFER, transfer_key(t.exporter, t.transfer_id))
    return core.compose(body, _to_transfer(core, t), case_id=case_id, **options, **_handling(args))


def cmd_transfer_dispatch(args: argparse.Namespace) -> int:
    core = _core(args)
    t = _transfer(core, args.transfer_id, core.party)
    _, notice = _notice(core, t)
    quantities = _lines(args.line)
    items = [i.model_copy(update={"quantity": quantities.get(i.line, i.quantity)})
             for i in notice.items]  # fmt: skip
    body = DispatchNotice(
        transfer_id=t.transfer_id,
        dispatched_at=_now(),
        carrier=args.carrier,
        transport_document=args.document,
        items=items,
        expected_arrival=date.fromisoformat(args.arrival) if args.arrival else t.expected_arrival,
        seal_ids=args.seal or [],
    )
    return _queued(args, _compose_transfer(core, args, t, body))


def cmd_transfer_receive(args: argparse.Namespace) -> int:
    core = _core(args)
    t = _transfer(core, args.transfer_id, args.exporter)
    received = {**t.dispatched, **_lines(args.line)}  # unnamed lines: received as dispatched
    remarks = dict(r.partition("=")[::2] for r in args.remark or [])
    body = ReceiptConfirmation(
        transfer_id=t.transfer_id,
        received_at=_now(),
        place=args.place,
        lines=[
            ReceivedLine(line=n, quantity_received=q, remarks=remarks.get(str(n)) or None)
            for n, q in sorted(received.items())
        ],
        officer=_officer_body(core, args),
    )
    header = _compose_transfer(core, args, t, body)
    after = _transfer(core, args.transfer_id, t.exporter)
    extra = "quantities differ: discrepancy report queued" if after.stage.value == (
        "discrepancy"
    ) else "quantities as dispatched"  # fmt: skip
    return _queued(args, header, extra)


def cmd_transfer_list(args: argparse.Namespace) -> int:
    core = _core(args)
    ts = core.casework.all_transfers()
    if args.json:
        print(dumps([
            {
                "transfer_id": t.transfer_id, "exporter": t.exporter, "importer": t.importer,
                "transit": list(t.transit), "stage": t.stage.value,
                "missing_confirmations": t.missing_confirmations if t.stage.value in (
                    "notified", "authorized") else [],
                "refused_by": t.refused_by, "expected_arrival": t.expected_arrival.isoformat(),
                "dispatched": t.dispatched, "received": t.received,
                "overdue_alerted": t.overdue_alerted,
            }
            for t in ts
        ]))  # fmt: skip
        return 0
    rows = []
    for t in ts:
        if t.stage is transfers.Stage.NOTIFIED:
            detail = "waiting for " + ", ".join(t.missing_confirmations)
        elif t.stage is transfers.Stage.REFUSED:
            detail = f"refused by {t.refused_by}"
        elif t.stage is transfers.Stage.DISCREPANCY:
            detail = "; ".join(
                f"line {n}: {q} dispatched, {r} received"
                for n, q, r in transfers.discrepancies(t.dispatched, t.received)
            )
        elif t.stage is transfers.Stage.DISPATCHED and t.overdue_alerted:
            detail = "RECEIPT OVERDUE"
        else:
            detail = ""
        rows.append((t.transfer_id, t.exporter, t.importer, ",".join(t.transit) or "-",
                     t.stage.value, t.expected_arrival.isoformat(), detail))  # fmt: skip
    print(table(["transfer", "exporter", "importer", "transit", "stage", "arrival", ""], rows))
    return 0


# -- controlled deliveries (Art. XVIII) ------------------------------------------------------------


def _operation(core: NodeCore, operation_id: str, proposer: str | None) -> cd.Operation:
    return _one(
        [o for o in core.casework.all_operations() if o.operation_id == operation_id],
        lambda o: o.proposer, proposer, f"operation {operation_id}", "--proposer",
    )  # fmt: skip


def _send_op(core: NodeCore, args: argparse.Namespace, op: cd.Operation, body: Body) -> int:
    to = [p for p in op.participants if p != core.party]
    case_id = core.casework.case_id(DELIVERY, operation_key(op.proposer, op.operation_id))
    return _queued(args, core.compose(body, to, case_id=case_id, **_handling(args)))


def cmd_delivery_propose(args: argparse.Namespace) -> int:
    core = _core(args)
    body = _read_body("delivery.proposal", args.body)
    assert isinstance(body, DeliveryProposal)
    to = [p for p in body.participants if p != core.party]
    header = core.compose(body, to, case_id=args.case or body.operation_id, **_handling(args))
    return _queued(args, header, f"operation {body.operation_id}: consent asked of {len(to)}")


def cmd_delivery_consent(args: argparse.Namespace) -> int:
    core = _core(args)
    op = _operation(core, args.operation_id, args.proposer)
    body = DeliveryConsent(operation_id=op.operation_id, conditions=args.condition or [],
                           contact=_officer_body(core, args))  # fmt: skip
    return _send_op(core, args, op, body)


def cmd_delivery_decline(args: argparse.Namespace) -> int:
    core = _core(args)
    op = _operation(core, args.operation_id, args.proposer)
    return _send_op(core, args, op, DeliveryDecline(operation_id=op.operation_id,
                                                    reason=args.reason))  # fmt: skip


def cmd_delivery_handover(args: argparse.Namespace) -> int:
    core = _core(args)
    op = _operation(core, args.operation_id, args.proposer)
    body = CustodyHandover(
        operation_id=op.operation_id,
        from_state=args.from_state.upper(),
        to_state=args.to_state.upper(),
        at=_when(args.at) or _now(),
        place=args.place,
        container_ids=args.container or [],
        seal_ids=args.seal or [],
        seals_intact=not args.seals_broken,
        remarks=args.remarks,
    )
    return _send_op(core, args, op, body)


def cmd_delivery_intercept(args: argparse.Namespace) -> int:
    core = _core(args)
    op = _operation(core, args.operation_id, args.proposer)
    inventory: list[Any] = []
    if args.inventory:
        inventory = json.loads(Path(args.inventory).read_text())
    try:
        body = Interception(
            operation_id=op.operation_id,
            decision=InterceptionDecision(args.decision),
            decided_at=_when(args.at) or _now(),
            inventory=inventory,
            new_seal_ids=args.new_seal or [],
        )
    except ValueError as exc:
        raise CliError(f"the interception is not valid: {exc}") from None
    return _send_op(core, args, op, body)


def cmd_delivery_close(args: argparse.Namespace) -> int:
    core = _core(args)
    op = _operation(core, args.operation_id, args.proposer)
    body = DeliveryClosure(operation_id=op.operation_id, outcome=ClosureOutcome(args.outcome),
                           closed_at=_now(), summary=args.summary)  # fmt: skip
    return _send_op(core, args, op, body)


def cmd_delivery_timeline(args: argparse.Namespace) -> int:
    core = _core(args)
    op = _operation(core, args.operation_id, args.proposer)
    lines = cd.timeline_lines(op)
    if args.json:
        print(dumps({
            "operation_id": op.operation_id, "proposer": op.proposer,
            "participants": list(op.participants), "phase": op.phase.value,
            "custody": op.custody, "timeline": lines,
        }))  # fmt: skip
        return 0
    route = " -> ".join([op.route[0][0], *(dst for _, dst in op.route)])
    print(f"operation {op.operation_id} proposed by {op.proposer}: {op.phase.value}")
    print(f"route {route}; custody {op.custody}")
    if op.awaiting and op.phase is cd.Phase.PROPOSED:
        print(f"awaiting consent of {', '.join(op.awaiting)}")
    for line in lines:
        print("  " + line)
    return 0


def cmd_delivery_list(args: argparse.Namespace) -> int:
    core = _core(args)
    ops = core.casework.all_operations()
    if args.json:
        print(dumps([{"operation_id": o.operation_id, "proposer": o.proposer,
                      "participants": list(o.participants), "phase": o.phase.value,
                      "custody": o.custody} for o in ops]))  # fmt: skip
        return 0
    rows = [(o.operation_id, o.proposer, ",".join(o.participants), o.phase.value,
             o.custody or "") for o in ops]  # fmt: skip
    print(table(["operation", "proposer", "participants", "phase", "custody"], rows))
    return 0


# -- Article XII -----------------------------------------------------------------------------------


def _originator(core: NodeCore, msg_id: str) -> str:
    m = core.store.message(msg_id)
    if m is None or m.direction != "in":
        raise CliError(f"{msg_id} is not a message this node received")
    return m.sender


def cmd_consent_request(args: argparse.Namespace) -> int:
    core = _core(args)
    originator = _originator(core, args.msg_id)
    try:
        body = ConsentRequest(
            subject_msg_id=args.msg_id,
            use=IntendedUse(args.use),
            proposed_recipients=_states(args.to),
            purpose=args.purpose,
        )
    except ValueError as exc:
        raise CliError(f"the request is not valid: {exc}") from None
    header = core.compose(body, [originator], handling=HandlingCode.H1, in_reply_to=args.msg_id)
    return _queued(args, header)


def cmd_consent_answer(args: argparse.Namespace) -> int:
    core = _core(args)
    request = _opened_body(core, args.request_msg_id)
    if not isinstance(request, ConsentRequest):
        raise CliError(f"{args.request_msg_id} is not a consent request")
    decision = ConsentDecision(args.decision)
    try:
        body = ConsentAnswer(
            request_msg_id=args.request_msg_id, subject_msg_id=request.subject_msg_id,
            decision=decision, conditions=args.condition or [], reason=args.reason,
            valid_until=_when(args.valid_until),
        )  # fmt: skip
    except ValueError as exc:
        raise CliError(f"the answer is not valid: {exc}") from None
    header = core.reply(args.request_msg_id, body, handling=HandlingCode.H1)
    return _queued(args, header)


def cmd_disclose(args: argparse.Namespace) -> int:
    core = _core(args)
    originator = _originator(core, args.msg_id)
    body = DisclosureNotice(
        subject_msg_id=args.msg_id,
        legal_basis=args.legal_basis,
        disclosed_to=args.to,
        planned_disclosure_at=_when(args.at) or _now(),
        scope=args.scope,
        officer=_officer_body(core, args),
    )
    header = core.compose(body, [originator], handling=HandlingCode.H1, in_reply_to=args.msg_id)
    return _queued(args, header, "the originator is told before the disclosure (Art. XII)")


def cmd_forward(args: argparse.Namespace) -> int:
    core = _core(args)
    header = core.forward(args.msg_id, _states(args.to), _officer(args))
    return _queued(args, header, f"forwarded copy of {args.msg_id}")


def cmd_export(args: argparse.Namespace) -> int:
    core = _core(args)
    out = Path(args.out)
    officer = _officer(args)

    def write(opened: OpenedEnvelope) -> None:
        h = opened.header
        record = {
            "exported_at": iso(_now()),
            "exported_by": officer,
            "judicial_use": args.judicial,
            "msg_id": h.msg_id,
            "kind": h.kind,
            "sender": h.sender,
            "recipients": h.recipients,
            "created_at": iso(h.created_at),
            "handling": h.handling.value,
            "handling_note": h.handling_note,
            "confidential": h.confidential,
            "body": json.loads(opened.plaintext),
        }
        # never overwrites; on disk before the export is recorded
        write_new(out, (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode())

    opened = core.export(args.msg_id, officer, judicial=args.judicial, write=write)
    h = opened.header
    print(f"exported {h.kind} {h.msg_id} to {out} (0600); recorded in the audit log")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    core = _core(args)
    applied, skipped = core.rebuild_casework()
    print(f"procedures rebuilt from {applied} messages ({skipped} refused again, not applied)")
    return 0


#: Bad dates, numbers and files in options: the message says which.
ERRORS = (ValueError,)


# -- parsers ---------------------------------------------------------------------------------------


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    home = os.environ.get("CIFTA_NODE_HOME")

    def command(
        group: argparse._SubParsersAction,  # type: ignore[type-arg]
        name: str,
        text: str,
        *,
        handling: str | None = "H1",
        officer: bool = False,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=text, description=text)
        p.add_argument("--home", default=home, help="the node's home (or CIFTA_NODE_HOME)")
        p.add_argument("--json", action="store_true")
        if handling is not None:
            p.add_argument("--handling", choices=[h.value for h in HandlingCode],
                           default=handling, help=f"H0-H3 (default {handling})")  # fmt: skip
            p.add_argument("--note", help="the restriction, for handling code H3")
            p.add_argument("--confidential", action="store_true",
                           help="ask for Article XII confidentiality")  # fmt: skip
        if officer:
            p.add_argument(
                "--officer",
                help='"Name|Position|Agency" (default: CIFTA_OFFICER, else the login name)',
            )
        return p

    # tracing
    trace = sub.add_parser("trace", help="tracing requests (Art. XIII.3)")
    g = trace.add_subparsers(dest="trace_command", required=True)
    p = command(g, "new", "file a tracing request for a seized firearm")
    p.add_argument("--body", required=True, help="a tracing.request JSON (`cifta template`)")
    p.add_argument("--to", help="states to ask (default: country of manufacture and of last "
                                "legal import)")  # fmt: skip
    p.add_argument("--priority", choices=[x.value for x in Priority])
    p.add_argument("--justification", help="why it is urgent")
    p.add_argument("--case", help="case reference (opaque)")
    p.add_argument("--attach", action="append", default=[], metavar="FILE",
                   help="a photograph or scan to send with it (repeatable)")  # fmt: skip
    p.set_defaults(func=cmd_trace_new)
    p = command(g, "list", "tracing requests sent and received", handling=None)
    p.add_argument("--open", action="store_true", help="only those not yet answered")
    p.set_defaults(func=cmd_trace_list)
    p = command(g, "respond", "acknowledge or answer a tracing request", handling=None,
                officer=True)  # fmt: skip
    p.add_argument("request_msg_id")
    p.add_argument("--ack", action="store_true", help="acknowledge receipt")
    p.add_argument("--reference", help="your reference (with --ack)")
    p.add_argument("--expected-by", help="when you expect to answer, ISO 8601 (with --ack)")
    p.add_argument("--outcome", choices=[x.value for x in Outcome])
    p.add_argument("--narrative", help="what was searched (with --outcome not_found)")
    p.add_argument("--body", help="a tracing.response JSON with the chain of transfers found")
    p.set_defaults(func=cmd_trace_respond)
    p = command(g, "stats", "per state asked: received, answered, response times, on time",
                handling=None)  # fmt: skip
    p.set_defaults(func=cmd_trace_stats)

    # transfers
    transfer = sub.add_parser("transfer", help="licensed transfers (Art. IX)")
    g = transfer.add_subparsers(dest="transfer_command", required=True)
    p = command(g, "new", "notify the importing and transit states of a transfer")
    p.add_argument("--body", required=True, help="a transfer.notice JSON (`cifta template`)")
    p.add_argument("--case", help="case reference (default: the transfer id)")
    p.set_defaults(func=cmd_transfer_new)
    p = command(g, "confirm", "confirm the import licence (importer) or authorize the transit",
                officer=True)  # fmt: skip
    p.add_argument("transfer_id")
    p.add_argument("--exporter", help="the exporting state, if the id is not unique")
    p.add_argument("--decision", choices=[x.value for x in Decision], default="authorized")
    p.add_argument("--reason", help="why it is refused")
    p.add_argument("--condition", action="append")
    p.add_argument("--number", help="transit authorization number")
    p.add_argument("--valid-until", help="transit authorization valid until (YYYY-MM-DD)")
    p.set_defaults(func=cmd_transfer_confirm)
    p = command(g, "dispatch", "tell the parties it has shipped (only once authorized)")
    p.add_argument("transfer_id")
    p.add_argument("--carrier", required=True)
    p.add_argument("--document", required=True, help="air waybill, bill of lading")
    p.add_argument("--seal", action="append")
    p.add_argument("--arrival", help="expected arrival (YYYY-MM-DD; default: the notice's)")
    p.add_argument("--line", action="append", help="LINE=QUANTITY shipped, if not as notified")
    p.set_defaults(func=cmd_transfer_dispatch)
    p = command(g, "receive", "confirm receipt with the quantities received (Art. IX.4)",
                officer=True)  # fmt: skip
    p.add_argument("transfer_id")
    p.add_argument("--exporter", help="the exporting state, if the id is not unique")
    p.add_argument("--place", required=True)
    p.add_argument("--line", action="append", help="LINE=QUANTITY received, where it differs")
    p.add_argument("--remark", action="append", help="LINE=TEXT")
    p.set_defaults(func=cmd_transfer_receive)
    p = command(g, "list", "transfers and where each stands", handling=None)
    p.set_defaults(func=cmd_transfer_list)

    # controlled deliveries
    delivery = sub.add_parser("delivery", help="controlled deliveries (Art. XVIII)")
    g = delivery.add_subparsers(dest="delivery_command", required=True)
    p = command(g, "propose", "propose an operation to the states concerned", handling="H2")
    p.add_argument("--body", required=True, help="a delivery.proposal JSON (`cifta template`)")
    p.add_argument("--case", help="case reference (default: the operation id)")
    p.set_defaults(func=cmd_delivery_propose)

    def op_command(name: str, text: str, **kw: Any) -> argparse.ArgumentParser:
        p = command(g, name, text, handling="H2", **kw)
        p.add_argument("operation_id")
        p.add_argument("--proposer", help="the proposing state, if the id is not unique")
        return p

    p = op_command("consent", "consent to the operation", officer=True)
    p.add_argument("--condition", action="append")
    p.set_defaults(func=cmd_delivery_consent)
    p = op_command("decline", "decline the operation")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_delivery_decline)
    p = op_command("handover", "record a custody hand-over at a border")
    p.add_argument("--from", dest="from_state", required=True)
    p.add_argument("--to", dest="to_state", required=True)
    p.add_argument("--place", required=True)
    p.add_argument("--at", help="ISO 8601 (default: now)")
    p.add_argument("--container", action="append")
    p.add_argument("--seal", action="append")
    p.add_argument("--seals-broken", action="store_true")
    p.add_argument("--remarks")
    p.set_defaults(func=cmd_delivery_handover)
    p = op_command("intercept", "record the interception decision (Art. XVIII.2)")
    p.add_argument("--decision", required=True, choices=[x.value for x in InterceptionDecision])
    p.add_argument("--inventory", help="JSON file: the items removed or substituted")
    p.add_argument("--new-seal", action="append")
    p.add_argument("--at", help="ISO 8601 (default: now)")
    p.set_defaults(func=cmd_delivery_intercept)
    p = op_command("close", "close the operation (the proposing state)")
    p.add_argument("--outcome", required=True, choices=[x.value for x in ClosureOutcome])
    p.add_argument("--summary", required=True)
    p.set_defaults(func=cmd_delivery_close)
    p = op_command("timeline", "the operation's timeline, as every participant holds it")
    p.set_defaults(func=cmd_delivery_timeline)
    p = command(g, "list", "controlled deliveries", handling=None)
    p.set_defaults(func=cmd_delivery_list)

    # Article XII
    consent = sub.add_parser("consent", help="Art. XII: ask for or give consent")
    g = consent.add_subparsers(dest="consent_command", required=True)
    p = command(g, "request", "ask a message's originator for consent", handling=None)
    p.add_argument("msg_id")
    p.add_argument("--use", required=True, choices=[x.value for x in IntendedUse])
    p.add_argument("--to", help="the states to share it with (onward_sharing)")
    p.add_argument("--purpose", required=True)
    p.set_defaults(func=cmd_consent_request)
    p = command(g, "answer", "answer a consent request about one of this node's messages",
                handling=None)  # fmt: skip
    p.add_argument("request_msg_id")
    p.add_argument("--decision", required=True, choices=[x.value for x in ConsentDecision])
    p.add_argument("--condition", action="append")
    p.add_argument("--reason")
    p.add_argument("--valid-until", help="ISO 8601")
    p.set_defaults(func=cmd_consent_answer)

    p = command(sub, "disclose", "tell a message's originator, before it happens, that it must "
                "be disclosed (Art. XII)", handling=None, officer=True)  # fmt: skip
    p.add_argument("msg_id")
    p.add_argument("--to", required=True, help="to whom it will be disclosed (a court, say)")
    p.add_argument("--legal-basis", required=True)
    p.add_argument("--scope", required=True)
    p.add_argument("--at", help="planned disclosure time, ISO 8601 (default: now)")
    p.set_defaults(func=cmd_disclose)
    p = command(sub, "forward", "share a received message with other states (Art. XII: H2 "
                "needs the originator's consent)", handling=None, officer=True)  # fmt: skip
    p.add_argument("msg_id")
    p.add_argument("--to", required=True, help="states, comma-separated")
    p.set_defaults(func=cmd_forward)
    p = command(sub, "export", "write a message to a file to take it out of the network "
                "(Art. XII checks; audited)", handling=None, officer=True)  # fmt: skip
    p.add_argument("msg_id")
    p.add_argument("--out", required=True, help="the file to write (must not exist)")
    p.add_argument("--judicial", action="store_true", help="for use in judicial proceedings")
    p.set_defaults(func=cmd_export)
