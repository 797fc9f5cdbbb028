"""``cifta attachment ...``: list a message's attachments and save one (decrypted) to a file;
``--attach FILE`` (repeatable) for ``cifta send`` and ``cifta trace new``, with a progress bar.

Everything goes through the application layer (``Application.send_attached``,
``attachments``, ``save_attachment``), as the officers' console calls it.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from services.cli import messages
from services.cli.messages import t as _
from services.cli.node_access import add_common, node, officer, print_json, print_queued
from services.cli.progress import progress_bar
from services.cli.tables import table
from services.node.application import command
from services.node.application.models import SaveAttachment, SendMessage
from services.node.application.procedure_models import FileTracingRequest


def add_attach(p: argparse.ArgumentParser) -> None:
    """``--attach FILE``, repeatable."""
    p.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help=_("a file to send with it, end-to-end encrypted (repeatable)"),
    )


def files(args: argparse.Namespace) -> list[Path]:
    return [Path(f) for f in getattr(args, "attach", None) or []]


def queue(args: argparse.Namespace, cmd: SendMessage | FileTracingRequest) -> int:
    """Send ``cmd``: with files, uploaded first (a progress bar at a terminal)."""
    app = node(args)
    if not cmd.attachments:
        q = app.send(cmd) if isinstance(cmd, SendMessage) else app.file_trace(cmd)
    else:
        q = asyncio.run(app.send_attached(cmd, progress_bar("uploading")))
    return print_queued(args, q)


def cmd_list(args: argparse.Namespace) -> int:
    views = node(args).attachments(args.msg_id, officer(args))
    if args.json:
        print_json([v.model_dump(mode="json") for v in views])
        return 0
    rows = [
        (
            v.name,
            v.media_type,
            str(v.size),
            messages.text(f"attachment.state.{v.state}", reason=v.reason),
        )
        for v in views
    ]
    print(table(["name", "type", "bytes", "here"], rows) if rows else "no attachments")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    cmd = command(
        SaveAttachment,
        officer=officer(args),
        msg_id=args.msg_id,
        name=args.name,
        out=args.out,
        force=args.force,
    )
    saved = node(args).save_attachment(cmd)
    if args.json:
        print_json(saved.model_dump(mode="json"))
    else:
        print(f"saved {saved.name} ({saved.size} bytes, verified) to {saved.out}")
    return 0


def add_parsers(sub: Any) -> None:
    group = sub.add_parser("attachment", help=_("list and save a message's attachments"))
    cmds = group.add_subparsers(dest="attachment_command", required=True)
    p = cmds.add_parser("list", help=_("the attachments of a message, and whether they are here"))
    p.add_argument("msg_id", help=_("its id, short id or a unique prefix"))
    p.set_defaults(func=cmd_list)
    g = cmds.add_parser("get", help=_("decrypt one attachment of a message into a file"))
    g.add_argument("msg_id", help=_("its id, short id or a unique prefix"))
    g.add_argument("name", help=_("the attachment's file name, as `cifta attachment list` shows"))
    g.add_argument("--out", required=True, help=_("the file to write"))
    g.add_argument("--force", action="store_true", help=_("replace --out if it exists"))
    g.set_defaults(func=cmd_get)
    for c in (p, g):
        add_common(c)
