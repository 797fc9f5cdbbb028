"""``cifta attachment ...``: list a message's attachments and save one (decrypted) to a file.

Sending is ``cifta send --attach FILE`` (repeatable): the files are stored at the hub for every
recipient before the message is queued (services/node/attachment_flow.py).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nats.errors import Error as NatsError

from schemas import Body
from schemas.attachment import AttachmentManifest
from services.cli.node_cmd import CliError, _core, _officer, _settings
from services.cli.progress import progress_bar
from services.cli.tables import table
from services.core.attachments import AttachmentError
from services.core.envelope import ProtectedHeader
from services.node.attachment_flow import attachment_store, send_with_attachments
from services.node.attachments import AttachmentTransferError
from services.node.core import NodeCore

#: What these commands report in one line (services/cli/main.py prints them).
ERRORS = (AttachmentError, AttachmentTransferError)


def send(
    args: argparse.Namespace, core: NodeCore, body: Body, to: Sequence[str], **options: Any
) -> ProtectedHeader:
    """``cifta send --attach``: store the files at the hub, then queue the message."""
    files = [Path(f) for f in args.attach]
    for f in files:
        if not f.is_file():
            raise CliError(f"--attach {f}: no such file")
    settings = _settings(args)
    try:
        return asyncio.run(
            send_with_attachments(
                settings, core, body, to, files, progress=progress_bar("uploading"), **options
            )
        )
    except (OSError, NatsError, TimeoutError) as exc:
        raise AttachmentTransferError(
            f"cannot store the attachments at the hub at {settings.hub_url} "
            f"({type(exc).__name__}); nothing was queued: run the same command again"
        ) from None


def _manifests(args: argparse.Namespace) -> tuple[NodeCore, list[AttachmentManifest], str]:
    core = _core(args)
    try:
        message, opened = core.read(args.msg_id, _officer(args))
    except KeyError:
        raise CliError(f"no message {args.msg_id} in this node's store") from None
    return core, list(opened.body.attachments), message.direction


def cmd_list(args: argparse.Namespace) -> int:
    core, manifests, _ = _manifests(args)
    status = core.store.attachment_fetches.status(args.msg_id)
    held = attachment_store(_settings(args))
    rows = [
        [m.name, m.media_type, str(m.size), "held" if held.has(m) else _missing(status)]
        for m in manifests
    ]
    print(table(["name", "type", "bytes", "here"], rows) if rows else "no attachments")
    return 0


def _missing(status: tuple[str, str | None, str | None] | None) -> str:
    if status is None or status[0] == "pending":
        return "not fetched yet"
    return f"refused: {status[1]}"


def cmd_get(args: argparse.Namespace) -> int:
    core, manifests, _ = _manifests(args)
    named = [m for m in manifests if m.name == args.name]
    if not named:
        names = ", ".join(m.name for m in manifests) or "none"
        raise CliError(f"message {args.msg_id} has no attachment {args.name!r} (it has: {names})")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CliError(f"--out {out} exists; pass --force to replace it")
    held = attachment_store(_settings(args))
    if not held.has(named[0]):
        status = core.store.attachment_fetches.status(args.msg_id)
        raise CliError(
            f"{args.name}: {_missing(status)} (the running node fetches attachments of the "
            "messages it stores)"
        )
    held.save_plaintext(named[0], out)
    print(f"saved {args.name} ({named[0].size} bytes, verified) to {out}")
    return 0


def add_parsers(sub: Any, home: str | None = None) -> None:
    group = sub.add_parser("attachment", help="list and save a message's attachments")
    cmds = group.add_subparsers(dest="attachment_command", required=True)
    p = cmds.add_parser("list", help="the attachments of a message, and whether they are here")
    p.add_argument("msg_id")
    p.set_defaults(func=cmd_list)
    g = cmds.add_parser("get", help="decrypt one attachment of a message into a file")
    g.add_argument("msg_id")
    g.add_argument("name", help="the attachment's file name, as `cifta attachment list` shows")
    g.add_argument("--out", required=True, help="the file to write")
    g.add_argument("--force", action="store_true", help="replace --out if it exists")
    g.set_defaults(func=cmd_get)
    for c in (p, g):
        c.add_argument("--home", default=home, help="the node's home (or CIFTA_NODE_HOME)")
        c.add_argument("--officer", help="who is reading (default: CIFTA_OFFICER or the login)")
