"""``cifta trace`` (tracing requests, Art. XIII.3) and ``cifta transfer`` (licensed transfers,
Art. IX): argparse and rendering over the application layer, which fills in what the procedure
already knows and refuses, with the reason, any step the procedure does not allow."""

from __future__ import annotations

import argparse

from schemas.tracing import Outcome, Priority
from schemas.transfers import Decision
from services.cli import attachment_cmd, messages
from services.cli.messages import t as _
from services.cli.node_access import (
    add_common,
    add_dry_run,
    add_handling,
    handling,
    node,
    officer,
    pairs,
    print_json,
    print_queued,
    quantities,
    read_body,
    states,
)
from services.cli.tables import table, utc_minute
from services.node.application import command
from services.node.application.procedure_models import (
    AcknowledgeTrace,
    AnswerTrace,
    ConfirmTransfer,
    DispatchTransfer,
    FileTracingRequest,
    NotifyTransfer,
    ReceiveTransfer,
)

# -- tracing ---------------------------------------------------------------------------------------


def cmd_trace_new(args: argparse.Namespace) -> int:
    cmd = command(
        FileTracingRequest,
        officer=officer(args),
        body=read_body(args.body),
        to=states(args.to),
        priority=args.priority,
        justification=args.justification,
        case_id=args.case,
        dry_run=args.dry_run,
        attachments=attachment_cmd.files(args),
        **handling(args),
    )
    return attachment_cmd.queue(args, cmd)


def cmd_trace_list(args: argparse.Namespace) -> int:
    traces = node(args).traces(open_only=args.open)
    if args.json:
        print_json([t.model_dump(mode="json") for t in traces])
        return 0
    rows = [
        (
            t.short_id,
            f"{t.requester}->{t.requested}",
            messages.value(t.priority),
            messages.status(t.status) + (" " + messages.text("word.overdue") if t.overdue else ""),
            utc_minute(t.filed_at),
            utc_minute(t.due_at),
            messages.value(t.outcome),
            t.reminders_sent,
        )
        for t in traces
    ]
    cols = ("request", "asked", "priority", "status", "filed", "due", "outcome", "reminders")
    print(table(messages.headers(*cols), rows))
    return 0


def cmd_trace_respond(args: argparse.Namespace) -> int:
    app, who = node(args), officer(args)
    if args.ack:
        ack = command(
            AcknowledgeTrace,
            officer=who,
            request_msg_id=args.request_msg_id,
            reference=args.reference,
            expected_by=args.expected_by,
            dry_run=args.dry_run,
        )
        return print_queued(args, app.acknowledge_trace(ack))
    cmd = command(
        AnswerTrace,
        officer=who,
        request_msg_id=args.request_msg_id,
        body=read_body(args.body) if args.body else None,
        outcome=args.outcome,
        narrative=args.narrative,
        dry_run=args.dry_run,
    )
    return print_queued(args, app.answer_trace(cmd))


def cmd_trace_stats(args: argparse.Namespace) -> int:
    stats = node(args).trace_stats()
    if args.json:
        print_json([s.model_dump(mode="json") for s in stats])
        return 0
    rows = [
        (
            s.state,
            s.received,
            s.answered,
            "" if s.median_response_h is None else messages.number(s.median_response_h),
            "" if s.p90_response_h is None else messages.number(s.p90_response_h),
            "" if s.on_time_share is None else messages.percent(s.on_time_share),
            ", ".join(f"{messages.value(k)} {v}" for k, v in sorted(s.outcomes.items())),
        )
        for s in stats
    ]
    print(messages.text("trace.stats_title"))
    cols = ("state_asked", "received", "answered", "median_h", "p90_h", "on_time", "outcomes")
    print(table(messages.headers(*cols), rows))
    return 0


# -- transfers -------------------------------------------------------------------------------------


def cmd_transfer_new(args: argparse.Namespace) -> int:
    cmd = command(
        NotifyTransfer,
        officer=officer(args),
        body=read_body(args.body),
        case_id=args.case,
        dry_run=args.dry_run,
        **handling(args),
    )
    return print_queued(args, node(args).notify_transfer(cmd))


def cmd_transfer_confirm(args: argparse.Namespace) -> int:
    cmd = command(
        ConfirmTransfer,
        officer=officer(args),
        transfer_id=args.transfer_id,
        exporter=args.exporter,
        decision=args.decision,
        reason=args.reason,
        conditions=args.condition or [],
        number=args.number,
        valid_until=args.valid_until,
        dry_run=args.dry_run,
        **handling(args),
    )
    return print_queued(args, node(args).confirm_transfer(cmd))


def cmd_transfer_dispatch(args: argparse.Namespace) -> int:
    cmd = command(
        DispatchTransfer,
        officer=officer(args),
        transfer_id=args.transfer_id,
        carrier=args.carrier,
        document=args.document,
        seals=args.seal or [],
        arrival=args.arrival,
        lines=quantities(args.line),
        dry_run=args.dry_run,
        **handling(args),
    )
    return print_queued(args, node(args).dispatch_transfer(cmd))


def cmd_transfer_receive(args: argparse.Namespace) -> int:
    cmd = command(
        ReceiveTransfer,
        officer=officer(args),
        transfer_id=args.transfer_id,
        exporter=args.exporter,
        place=args.place,
        lines=quantities(args.line),
        remarks=pairs(args.remark, "remarks", "line_text"),
        dry_run=args.dry_run,
        **handling(args),
    )
    return print_queued(args, node(args).receive_transfer(cmd))


def cmd_transfer_list(args: argparse.Namespace) -> int:
    ts = node(args).transfers()
    if args.json:
        print_json([t.model_dump(mode="json") for t in ts])
        return 0
    rows = []
    for t in ts:
        if t.stage == "notified":
            detail = messages.text(
                "transfer.waiting_for", states=", ".join(t.missing_confirmations)
            )
        elif t.stage == "refused":
            detail = messages.text("transfer.refused_by", state=t.refused_by)
        elif t.stage == "discrepancy":
            detail = "; ".join(
                messages.text("transfer.line_differs", line=n, dispatched=q, received=r)
                for n, q, r in t.discrepancies
            )
        elif t.stage == "dispatched" and t.overdue_alerted:
            detail = messages.text("transfer.receipt_overdue")
        else:
            detail = ""
        rows.append(
            (
                t.transfer_id,
                t.exporter,
                t.importer,
                ",".join(t.transit) or "-",
                messages.text(f"stage.{t.stage}"),
                t.expected_arrival.isoformat(),
                detail,
            )
        )
    cols = ("transfer", "exporter", "importer", "transit", "stage", "arrival", "detail")
    print(table(messages.headers(*cols), rows))
    return 0


# -- parsers ---------------------------------------------------------------------------------------


def _command(
    group: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    text: str,
    *,
    handling: str | None = "H1",
    recorded: bool = True,
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = group.add_parser(name, help=text, description=text)
    add_common(p, officer=recorded)
    if handling is not None:
        add_handling(p, handling)
    return p


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    trace = sub.add_parser("trace", help=_("tracing requests (Art. XIII.3)"))
    g = trace.add_subparsers(dest="trace_command", required=True)
    p = _command(g, "new", _("file a tracing request for a seized firearm"))
    p.add_argument(
        "--body",
        required=True,
        help=_(
            "a tracing.request JSON (`cifta template`); requesting_officer, due_at and priority "
            "are filled in"
        ),
    )
    p.add_argument(
        "--to",
        help=_("states to ask (default: country of manufacture and of last legal import)"),
    )
    p.add_argument(
        "--priority",
        choices=[x.value for x in Priority],
        help=messages.choices(_("default: the body's, else routine"), Priority),
    )
    p.add_argument("--justification", help=_("why it is urgent (required with urgent)"))
    p.add_argument("--case", help=_("case reference (default: the body's case_reference)"))
    attachment_cmd.add_attach(p)
    p.set_defaults(func=cmd_trace_new)
    p = _command(g, "list", _("tracing requests sent and received"), handling=None, recorded=False)
    p.add_argument("--open", action="store_true", help=_("only those not yet answered"))
    p.set_defaults(func=cmd_trace_list)
    p = _command(g, "respond", _("acknowledge or answer a tracing request"), handling=None)
    add_dry_run(p)
    p.add_argument("request_msg_id", help=_("the request (its id, short id or a unique prefix)"))
    p.add_argument("--ack", action="store_true", help=_("acknowledge receipt"))
    p.add_argument("--reference", help=_("your reference (with --ack)"))
    p.add_argument(
        "--expected-by",
        help=_("when you expect to answer (with --ack): YYYY-MM-DD or RFC 3339"),
    )
    p.add_argument(
        "--outcome",
        choices=[x.value for x in Outcome],
        help=messages.choices(_("not_found needs no body; found and partial take --body"), Outcome),
    )
    p.add_argument("--narrative", help=_("what was searched"))
    p.add_argument(
        "--body",
        help=_(
            "a tracing.response JSON with the chain of transfers found (request_msg_id and "
            "responding_officer are filled in)"
        ),
    )
    p.set_defaults(func=cmd_trace_respond)
    p = _command(
        g,
        "stats",
        _("per state asked: received, answered, response times, on time"),
        handling=None,
        recorded=False,
    )
    p.set_defaults(func=cmd_trace_stats)

    transfer = sub.add_parser("transfer", help=_("licensed transfers (Art. IX)"))
    g = transfer.add_subparsers(dest="transfer_command", required=True)
    p = _command(g, "new", _("notify the importing and transit states of a transfer"))
    p.add_argument("--body", required=True, help=_("a transfer.notice JSON (`cifta template`)"))
    p.add_argument("--case", help=_("case reference (default: the transfer id)"))
    p.set_defaults(func=cmd_transfer_new)
    p = _command(g, "confirm", _("confirm the import licence (importer) or authorize the transit"))
    p.add_argument("transfer_id")
    p.add_argument("--exporter", help=_("the exporting state, if the id is not unique"))
    p.add_argument(
        "--decision",
        choices=[x.value for x in Decision],
        default="authorized",
        help=messages.choices(None, Decision),
    )
    p.add_argument("--reason", help=_("why it is refused"))
    p.add_argument("--condition", action="append")
    p.add_argument("--number", help=_("transit authorization number"))
    p.add_argument("--valid-until", help=_("transit authorization valid until (YYYY-MM-DD)"))
    p.set_defaults(func=cmd_transfer_confirm)
    p = _command(g, "dispatch", _("tell the parties it has shipped (only once authorized)"))
    p.add_argument("transfer_id")
    p.add_argument("--carrier", required=True)
    p.add_argument("--document", required=True, help=_("air waybill, bill of lading"))
    p.add_argument("--seal", action="append")
    p.add_argument("--arrival", help=_("expected arrival (YYYY-MM-DD; default: the notice's)"))
    p.add_argument("--line", action="append", help=_("LINE=QUANTITY shipped, if not as notified"))
    p.set_defaults(func=cmd_transfer_dispatch)
    p = _command(g, "receive", _("confirm receipt with the quantities received (Art. IX.4)"))
    p.add_argument("transfer_id")
    p.add_argument("--exporter", help=_("the exporting state, if the id is not unique"))
    p.add_argument("--place", required=True)
    p.add_argument("--line", action="append", help=_("LINE=QUANTITY received, where it differs"))
    p.add_argument("--remark", action="append", help=_("LINE=TEXT"))
    p.set_defaults(func=cmd_transfer_receive)
    p = _command(g, "list", _("transfers and where each stands"), handling=None, recorded=False)
    p.set_defaults(func=cmd_transfer_list)
