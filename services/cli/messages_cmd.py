"""The officer's message commands: send, reply, inbox, show, status, case, deadlines, template.

They work on the node's home directly (keys, directory, store) through the application layer;
the running node (``cifta node run``) publishes what they queue and stores what arrives.
"""

from __future__ import annotations

import argparse

from services.cli import attachment_cmd, messages
from services.cli.messages import t as _
from services.cli.node_access import (
    add_common,
    add_handling,
    handling,
    node,
    officer,
    print_json,
    print_queued,
    read_body,
    states,
)
from services.cli.tables import dumps, table, utc_minute
from services.node.application import ApplicationError, command
from services.node.application.models import (
    InboxQuery,
    MessageSummary,
    MessageView,
    ReplyMessage,
    SendMessage,
)


def cmd_send(args: argparse.Namespace) -> int:
    if args.handling is None:
        raise ApplicationError("field.required", field="handling", when=None)
    cmd = command(
        SendMessage,
        officer=officer(args),
        kind=args.kind,
        body=read_body(args.body),
        to=states(args.to),
        case_id=args.case,
        expires_at=args.expires,
        dry_run=args.dry_run,
        attachments=attachment_cmd.files(args),
        **handling(args),
    )
    return attachment_cmd.queue(args, cmd)


def cmd_reply(args: argparse.Namespace) -> int:
    cmd = command(
        ReplyMessage,
        officer=officer(args),
        msg_id=args.msg_id,
        kind=args.kind,
        body=read_body(args.body),
        to_all=args.all,
        dry_run=args.dry_run,
        **handling(args),
    )
    return print_queued(args, node(args).reply(cmd))


def _rows(listed: list[MessageSummary]) -> str:
    rows = [
        (
            m.created_at[:16].replace("T", " "),
            "<-" + m.sender if m.direction == "in" else "->" + ",".join(m.recipients),
            messages.title(m.kind),
            m.handling + (" C" if m.confidential else ""),
            m.case_id or "",
            "" if m.direction == "out" or m.read else messages.text("word.new"),
            m.short_id,
        )
        for m in listed
    ]
    cols = [
        "col.created",
        "col.from_to",
        "col.title",
        "col.handling",
        "col.case",
        "col.new",
        "col.id",
    ]
    return table([messages.text(c) for c in cols], rows)


def cmd_inbox(args: argparse.Namespace) -> int:
    direction = "all" if args.all else ("out" if args.sent else "in")
    q = command(
        InboxQuery,
        direction=direction,
        case_id=args.case,
        kind=args.kind,
        state=args.state,
        unread=args.unread,
        protocol=args.protocol,
    )
    listed = node(args).inbox(q)
    if args.json:
        print_json([m.model_dump(mode="json") for m in listed])
    else:
        print(_rows(listed))
    return 0


def cmd_case(args: argparse.Namespace) -> int:
    listed = node(args).thread(args.case_id)
    if args.json:
        print_json([m.model_dump(mode="json") for m in listed])
    else:
        print(_rows(listed))
    return 0


def render_view(v: MessageView) -> str:
    """A message as labelled fields, with the codes it carries explained."""
    s = v.summary
    out = [
        messages.text("view.header", title=messages.title(s.kind), kind=s.kind, msg_id=s.msg_id),
        messages.text(
            "view.route",
            sender=s.sender,
            recipients=", ".join(s.recipients),
            created_at=s.created_at,
        ),
    ]
    if s.case_id:
        out.append(
            messages.text("view.case", case_id=s.case_id)
            + (
                ", " + messages.text("view.in_reply_to", in_reply_to=s.in_reply_to)
                if s.in_reply_to
                else ""
            )
        )
    out.append(messages.text("opened_by", officer=v.opened_by))
    out += ["", messages.text("view.codes")]
    out += [f"  {messages.text(c, note=v.handling_note or '')}" for c in v.explanations]
    out += ["", messages.text("view.body")]
    width = max((len(f.path) for f in v.fields), default=0)
    out += [f"  {f.path.replace('_', ' '):<{width}}  {_field_value(f.value)}" for f in v.fields]
    return "\n".join(out)


def _field_value(text: str) -> str:
    """A body's value as the console shows it: a code value named (``urgent``, ``true``), free
    text and longer values as they are."""
    return messages.value(text) if len(text) < 40 else text


def cmd_show(args: argparse.Namespace) -> int:
    view = node(args).show(args.msg_id, officer(args))
    if args.json:  # the summary's fields at the top, as lists print them
        print_json(
            view.summary.model_dump(mode="json") | view.model_dump(mode="json", exclude={"summary"})
        )
    else:
        print(render_view(view))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    message, statuses = node(args).status(args.msg_id)
    if args.json:
        print_json([s.model_dump(mode="json") for s in statuses])
        return 0
    rows = [
        (
            s.recipient,
            messages.delivery_state(s.state),
            s.at or "",
            s.attempts,
            (messages.rejection(s.reason) + (f" ({s.detail})" if s.detail else ""))
            if s.reason
            else (s.last_error or ""),
        )
        for s in statuses
    ]
    print(f"{messages.title(message.kind)} {message.msg_id}")
    cols = ["col.recipient", "col.status", "col.at", "col.attempts", "col.why"]
    print(table([messages.text(c) for c in cols], rows))
    return 0


def cmd_deadlines(args: argparse.Namespace) -> int:
    due = node(args).deadlines()
    if args.json:
        print_json([d.model_dump(mode="json") for d in due])
        return 0
    rows = [
        (
            utc_minute(d.due_at),
            messages.text("word.overdue") if d.overdue else "",
            messages.text(f"family.{d.family}"),
            messages.text(d.what, parties=", ".join(d.parties)),
            d.reference,
        )
        for d in due
    ]
    cols = ["col.due", "col.status", "col.family", "col.what", "col.reference"]
    print(table([messages.text(c) for c in cols], rows))
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    from services.node.application import Application

    if args.list or not args.kind:
        for k in Application.kinds():
            print(f"{k.kind:<34} {messages.title(k.kind)}")
        return 0
    print(dumps(Application.template(args.kind, example=args.example).body))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def officer_command(name: str, text: str, *, recorded: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
        add_common(p, officer=recorded)
        return p

    p = officer_command("send", _("seal a message for one or several states and queue it"))
    p.add_argument("--to", required=True, help=_("recipient states, comma-separated (USA,COL)"))
    p.add_argument("--case", help=_("case reference (opaque)"))
    p.add_argument(
        "--expires", help=_("time after which it must not be opened (YYYY-MM-DD or RFC 3339)")
    )
    _body_options(p)
    attachment_cmd.add_attach(p)
    add_handling(p, None)
    p.set_defaults(func=cmd_send)

    p = officer_command("reply", _("answer a message in its case"))
    p.add_argument("msg_id", help=_("the message answered (its id, short id or a unique prefix)"))
    p.add_argument("--all", action="store_true", help=_("to every recipient, not just the sender"))
    _body_options(p)
    add_handling(p, _("that of the message answered"))
    p.set_defaults(func=cmd_reply)

    p = officer_command("inbox", _("list messages (received by default)"), recorded=False)
    p.add_argument("--case")
    p.add_argument("--kind", help=_("a kind, or a family such as tracing.*"))
    p.add_argument("--state", help=_("messages from or to this state"))
    p.add_argument("--unread", action="store_true")
    p.add_argument("--sent", action="store_true", help=_("messages this node sent"))
    p.add_argument("--all", action="store_true", help=_("received and sent"))
    p.add_argument("--protocol", action="store_true", help=_("include receipts and rejections"))
    p.set_defaults(func=cmd_inbox)

    p = officer_command("case", _("a case's messages, sent and received"), recorded=False)
    p.add_argument("case_id")
    p.set_defaults(func=cmd_case)

    p = officer_command("show", _("open a message; records which officer opened it"))
    p.add_argument("msg_id", help=_("its id, short id or a unique prefix"))
    p.set_defaults(func=cmd_show)

    p = officer_command(
        "status", _("per recipient: sent, delivered, rejected and why"), recorded=False
    )
    p.add_argument("msg_id")
    p.set_defaults(func=cmd_status)

    p = officer_command(
        "deadlines", _("what this state owes or awaits, across procedures"), recorded=False
    )
    p.set_defaults(func=cmd_deadlines)

    p = sub.add_parser("template", help=_("print a body of a kind to fill in"))
    p.add_argument("kind", nargs="?")
    p.add_argument("--list", action="store_true")
    p.add_argument(
        "--example",
        action="store_true",
        help=_("the documented example instead of placeholders"),
    )
    p.set_defaults(func=cmd_template)


def _body_options(p: argparse.ArgumentParser) -> None:
    """--kind and --body; separate so that other options (attachments) join them easily."""
    p.add_argument("--kind", required=True, help=_("the body's kind, e.g. info.trafficking_routes"))
    p.add_argument("--body", required=True, help=_("JSON file with the body ('-': standard input)"))
