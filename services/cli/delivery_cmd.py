"""``cifta delivery`` (controlled deliveries, Art. XVIII) and Article XII's ``consent``,
``disclose``, ``forward`` and ``export``: argparse and rendering over the application layer."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from schemas.confidentiality import ConsentDecision, IntendedUse
from schemas.controlled_delivery import ClosureOutcome, InterceptionDecision
from services.cli import messages
from services.cli.messages import t as _
from services.cli.node_access import (
    add_common,
    add_dry_run,
    add_handling,
    handling,
    node,
    officer,
    print_json,
    print_queued,
    read_body,
    read_json,
    states,
)
from services.cli.progress import progress_bar
from services.cli.tables import table, utc_second
from services.core.files import write_new
from services.node.application import ApplicationError, command
from services.node.application.procedure_models import (
    AnswerConsent,
    CloseDelivery,
    ConsentDelivery,
    DeclineDelivery,
    Exported,
    ExportMessage,
    ForwardMessage,
    NotifyDisclosure,
    ProposeDelivery,
    RecordHandover,
    RecordInterception,
    RequestConsent,
)


def _step(args: argparse.Namespace) -> dict[str, object]:
    """What every step of an operation names."""
    return {
        "officer": officer(args),
        "operation_id": args.operation_id,
        "proposer": args.proposer,
        "dry_run": args.dry_run,
        **handling(args),
    }


def cmd_delivery_propose(args: argparse.Namespace) -> int:
    cmd = command(
        ProposeDelivery,
        officer=officer(args),
        body=read_body(args.body),
        case_id=args.case,
        dry_run=args.dry_run,
        **handling(args),
    )
    return print_queued(args, node(args).propose_delivery(cmd))


def cmd_delivery_consent(args: argparse.Namespace) -> int:
    cmd = command(ConsentDelivery, conditions=args.condition or [], **_step(args))
    return print_queued(args, node(args).consent_delivery(cmd))


def cmd_delivery_decline(args: argparse.Namespace) -> int:
    cmd = command(DeclineDelivery, reason=args.reason, **_step(args))
    return print_queued(args, node(args).decline_delivery(cmd))


def cmd_delivery_handover(args: argparse.Namespace) -> int:
    cmd = command(
        RecordHandover,
        from_state=args.from_state,
        to_state=args.to_state,
        place=args.place,
        at=args.at,
        containers=args.container or [],
        seals=args.seal or [],
        seals_intact=not args.seals_broken,
        remarks=args.remarks,
        **_step(args),
    )
    return print_queued(args, node(args).record_handover(cmd))


def cmd_delivery_intercept(args: argparse.Namespace) -> int:
    inventory = read_json(args.inventory, "inventory") if args.inventory else []
    if not isinstance(inventory, list):
        raise ApplicationError(
            "value.invalid", field="inventory", value=args.inventory, expected="json_file"
        )
    cmd = command(
        RecordInterception,
        decision=args.decision,
        inventory=inventory,
        new_seals=args.new_seal or [],
        at=args.at,
        **_step(args),
    )
    return print_queued(args, node(args).record_interception(cmd))


def cmd_delivery_close(args: argparse.Namespace) -> int:
    cmd = command(CloseDelivery, outcome=args.outcome, summary=args.summary, **_step(args))
    return print_queued(args, node(args).close_delivery(cmd))


def cmd_delivery_timeline(args: argparse.Namespace) -> int:
    op = node(args).operation(args.operation_id, args.proposer)
    if args.json:
        print_json(op.model_dump(mode="json"))
        return 0
    print(
        messages.text(
            "operation.header",
            operation_id=op.operation_id,
            proposer=op.proposer,
            phase=messages.status(op.phase),
        )
    )
    print(messages.text("operation.route", route=" -> ".join(op.route), custody=op.custody))
    if op.awaiting:
        print(messages.text("operation.awaiting", states=", ".join(op.awaiting)))
    for e in op.entries:  # the decision and outcome named, as the console names them
        what = messages.timeline(e.code, e.params)
        print(f"  {utc_second(e.at)} {what}")
    return 0


def cmd_delivery_list(args: argparse.Namespace) -> int:
    ops = node(args).operations()
    if args.json:
        print_json(
            [
                o.model_dump(
                    mode="json",
                    include={"operation_id", "proposer", "participants", "phase", "custody"},
                )
                for o in ops
            ]
        )
        return 0
    rows = [
        (
            o.operation_id,
            o.proposer,
            ",".join(o.participants),
            messages.status(o.phase),
            o.custody or "",
        )
        for o in ops
    ]
    cols = ("operation", "proposer", "participants", "phase", "custody")
    print(table(messages.headers(*cols), rows))
    return 0


# -- Article XII -----------------------------------------------------------------------------------


def cmd_consent_request(args: argparse.Namespace) -> int:
    cmd = command(
        RequestConsent,
        officer=officer(args),
        msg_id=args.msg_id,
        use=args.use,
        to=states(args.to),
        purpose=args.purpose,
        dry_run=args.dry_run,
    )
    return print_queued(args, node(args).request_consent(cmd))


def cmd_consent_answer(args: argparse.Namespace) -> int:
    cmd = command(
        AnswerConsent,
        officer=officer(args),
        request_msg_id=args.request_msg_id,
        decision=args.decision,
        conditions=args.condition or [],
        reason=args.reason,
        valid_until=args.valid_until,
        dry_run=args.dry_run,
    )
    return print_queued(args, node(args).answer_consent(cmd))


def cmd_disclose(args: argparse.Namespace) -> int:
    cmd = command(
        NotifyDisclosure,
        officer=officer(args),
        msg_id=args.msg_id,
        to=args.to,
        legal_basis=args.legal_basis,
        scope=args.scope,
        at=args.at,
        dry_run=args.dry_run,
    )
    return print_queued(args, node(args).notify_disclosure(cmd))


def cmd_forward(args: argparse.Namespace) -> int:
    cmd = command(
        ForwardMessage,
        officer=officer(args),
        msg_id=args.msg_id,
        to=states(args.to),
        dry_run=args.dry_run,
    )
    app = node(args)
    if not app.forwards_files(cmd.msg_id):
        return print_queued(args, app.forward(cmd))
    # its files go up first, from this node's own copies (a progress bar at a terminal)
    return print_queued(args, asyncio.run(app.forward_attached(cmd, progress_bar("uploading"))))


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    cmd = command(ExportMessage, officer=officer(args), msg_id=args.msg_id, judicial=args.judicial)

    def write(exported: Exported) -> None:
        text = json.dumps(exported.record, indent=2, ensure_ascii=False) + "\n"
        try:  # never overwrites; on disk before the export is recorded
            write_new(out, text.encode())
        except FileExistsError:
            raise ApplicationError("export.exists", path=str(out)) from None
        except OSError as exc:
            raise ApplicationError("io.failed", path=str(out), problem=exc.strerror) from None

    done = node(args).export(cmd, write)
    if args.json:
        print_json({"msg_id": done.msg_id, "kind": done.kind, "path": str(out)})
    else:
        print(messages.text("exported", kind=done.kind, msg_id=done.msg_id, path=out))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    applied, skipped = node(args).rebuild_casework()
    print(messages.text("rebuilt", applied=applied, skipped=skipped))
    return 0


# -- parsers ---------------------------------------------------------------------------------------


def _command(
    group: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    text: str,
    *,
    handling: str | None = "H2",
    recorded: bool = True,
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = group.add_parser(name, help=text, description=text)
    add_common(p, officer=recorded)
    if handling is not None:
        add_handling(p, handling)
    return p


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    delivery = sub.add_parser("delivery", help=_("controlled deliveries (Art. XVIII)"))
    g = delivery.add_subparsers(dest="delivery_command", required=True)
    p = _command(g, "propose", _("propose an operation to the states concerned"))
    p.add_argument("--body", required=True, help=_("a delivery.proposal JSON (`cifta template`)"))
    p.add_argument("--case", help=_("case reference (default: the operation id)"))
    p.set_defaults(func=cmd_delivery_propose)

    def op_command(name: str, text: str, **kw: bool) -> argparse.ArgumentParser:
        p = _command(g, name, text, **kw)  # type: ignore[arg-type]
        p.add_argument("operation_id")
        p.add_argument("--proposer", help=_("the proposing state, if the id is not unique"))
        return p

    p = op_command("consent", _("consent to the operation"))
    p.add_argument("--condition", action="append")
    p.set_defaults(func=cmd_delivery_consent)
    p = op_command("decline", _("decline the operation"))
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_delivery_decline)
    p = op_command("handover", _("record a custody hand-over at a border"))
    p.add_argument("--from", dest="from_state", required=True)
    p.add_argument("--to", dest="to_state", required=True)
    p.add_argument("--place", required=True)
    p.add_argument("--at", help=_("YYYY-MM-DD or RFC 3339 (default: now)"))
    p.add_argument("--container", action="append")
    p.add_argument("--seal", action="append")
    p.add_argument("--seals-broken", action="store_true")
    p.add_argument("--remarks")
    p.set_defaults(func=cmd_delivery_handover)
    p = op_command("intercept", _("record the interception decision (Art. XVIII.2)"))
    p.add_argument(
        "--decision",
        required=True,
        choices=[x.value for x in InterceptionDecision],
        help=messages.choices(None, InterceptionDecision),
    )
    p.add_argument("--inventory", help=_("JSON file: the items removed or substituted"))
    p.add_argument("--new-seal", action="append")
    p.add_argument("--at", help=_("YYYY-MM-DD or RFC 3339 (default: now)"))
    p.set_defaults(func=cmd_delivery_intercept)
    p = op_command("close", _("close the operation (the proposing state)"))
    p.add_argument(
        "--outcome",
        required=True,
        choices=[x.value for x in ClosureOutcome],
        help=messages.choices(None, ClosureOutcome),
    )
    p.add_argument("--summary", required=True)
    p.set_defaults(func=cmd_delivery_close)
    p = g.add_parser("timeline", help=_("the operation's timeline, as every participant holds it"))
    add_common(p, officer=False)
    p.add_argument("operation_id")
    p.add_argument("--proposer", help=_("the proposing state, if the id is not unique"))
    p.set_defaults(func=cmd_delivery_timeline)
    p = _command(g, "list", _("controlled deliveries"), handling=None, recorded=False)
    p.set_defaults(func=cmd_delivery_list)

    consent = sub.add_parser("consent", help=_("Art. XII: ask for or give consent"))
    g = consent.add_subparsers(dest="consent_command", required=True)
    p = _command(g, "request", _("ask a message's originator for consent"), handling=None)
    add_dry_run(p)
    p.add_argument("msg_id")
    p.add_argument(
        "--use",
        required=True,
        choices=[x.value for x in IntendedUse],
        help=messages.choices(None, IntendedUse),
    )
    p.add_argument("--to", help=_("the states to share it with (onward_sharing)"))
    p.add_argument("--purpose", required=True)
    p.set_defaults(func=cmd_consent_request)
    p = _command(
        g,
        "answer",
        _("answer a consent request about one of this node's messages"),
        handling=None,
    )
    add_dry_run(p)
    p.add_argument("request_msg_id")
    p.add_argument(
        "--decision",
        required=True,
        choices=[x.value for x in ConsentDecision],
        help=messages.choices(None, ConsentDecision),
    )
    p.add_argument("--condition", action="append")
    p.add_argument("--reason")
    p.add_argument("--valid-until", help=_("YYYY-MM-DD or RFC 3339"))
    p.set_defaults(func=cmd_consent_answer)

    p = _command(
        sub,
        "disclose",
        _("tell a message's originator, before it happens, that it must be disclosed (Art. XII)"),
        handling=None,
    )
    add_dry_run(p)
    p.add_argument("msg_id")
    p.add_argument("--to", required=True, help=_("to whom it will be disclosed (a court, say)"))
    p.add_argument("--legal-basis", required=True)
    p.add_argument("--scope", required=True)
    p.add_argument("--at", help=_("planned disclosure time, YYYY-MM-DD or RFC 3339 (default: now)"))
    p.set_defaults(func=cmd_disclose)
    p = _command(
        sub,
        "forward",
        _(
            "share a received message with other states (Art. XII: H2 needs the originator's "
            "consent)"
        ),
        handling=None,
    )
    p.add_argument("msg_id")
    p.add_argument("--to", required=True, help=_("states, comma-separated"))
    add_dry_run(p)
    p.set_defaults(func=cmd_forward)
    p = _command(
        sub,
        "export",
        _("write a message to a file to take it out of the network (Art. XII checks; audited)"),
        handling=None,
    )
    p.add_argument("msg_id")
    p.add_argument("--out", required=True, help=_("the file to write (must not exist)"))
    p.add_argument("--judicial", action="store_true", help=_("for use in judicial proceedings"))
    p.set_defaults(func=cmd_export)
