"""``cifta node ...`` and the officer's commands: send, inbox, show, reply, status, template.

The officer's commands work on the node's home directly (keys, directory, SQLite store); the
running node (``cifta node run``) publishes what they queue and stores what arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas import BODY_MODELS, HandlingCode, parse_body
from schemas.registry import UnknownKindError, example_body
from services.cli.tables import dumps, table
from services.core.directory import DirectoryError
from services.core.envelope import EnvelopeError
from services.core.keys import KeyFileError, NodeKeys
from services.core.logs import configure
from services.node import app
from services.node.core import ComposeError, NodeCore, RebuildRefused, reason_text
from services.node.lockfile import AlreadyRunning
from services.node.settings import NodeSettings
from services.node.store import Store, StoredMessage

#: What the secretariat's onboarding bundle holds and the node needs before it runs: its hub
#: credential, the directory root key it pins, the audit log's checkpoint key it witnesses with,
#: and the directory so far (docs/operations.md, section 2.2).
BUNDLE_FILES = ("hub.nk", "root.json", "audit.json", "directory.json")


def bundle_files() -> str:
    return ", ".join(BUNDLE_FILES)


class CliError(Exception):
    """A command could not do what was asked; the message says why."""


def _settings(args: argparse.Namespace) -> NodeSettings:
    if not args.home:
        raise CliError("no node home: pass --home or set CIFTA_NODE_HOME")
    home = Path(args.home)
    if not (home / "node.json").exists():
        raise CliError(f"{home} is not a node home: run `cifta node init` first")
    try:
        return NodeSettings.load(home)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CliError(f"{home}/node.json or CIFTA_NODE_*: {where}: {first['msg']}") from None


def _passphrase(settings: NodeSettings) -> bytes | None:
    if not settings.passphrase_env:
        return None
    value = os.environ.get(settings.passphrase_env)
    if value is None:
        raise CliError(f"the key file's passphrase variable {settings.passphrase_env} is not set")
    return value.encode()


def _core(args: argparse.Namespace) -> NodeCore:
    s = _settings(args)
    try:
        keys = NodeKeys.load(s.keys_path, _passphrase(s))
        directory = s.directory_trust().directory()
    except (KeyFileError, DirectoryError) as exc:
        raise CliError(str(exc)) from None
    return NodeCore(
        keys, directory, Store(s.store_path), clock=app.system_clock,
        tracing_policy=s.tracing_policy(),
    )  # fmt: skip


def _officer(args: argparse.Namespace) -> str:
    return str(args.officer or os.environ.get("CIFTA_OFFICER") or getpass.getuser())


def _read_body(kind: str, source: str) -> Any:
    if kind not in BODY_MODELS:
        raise CliError(f"unknown kind {kind!r}; `cifta template --list` shows them")
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    try:
        payload = json.loads(data)
    except ValueError:
        raise CliError("the body is not JSON") from None
    if isinstance(payload, dict):
        payload.setdefault("kind", kind)
    try:
        return parse_body(kind, json.dumps(payload).encode())
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise CliError(f"the body is not a valid {kind}: {problems}") from None


# -- node ----------------------------------------------------------------------------------------


def cmd_node_init(args: argparse.Namespace) -> int:
    home = Path(args.home)
    keys_path = home / "keys.json"
    if keys_path.exists() and not args.force:
        raise CliError(f"{home} already holds keys; pass --force to replace them")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    passphrase = None
    if args.passphrase_env:
        passphrase = os.environ.get(args.passphrase_env, "").encode() or None
        if passphrase is None:
            raise CliError(f"{args.passphrase_env} is not set")
    if keys_path.exists():  # --force: keep the old keys, or every stored message is lost
        kept = keys_path.with_name(f"keys.replaced-{int(time.time())}.json")
        os.replace(keys_path, kept)
        print(f"previous keys kept in {kept} (0600): stored messages still need them")
    keys = NodeKeys.generate(args.party, post_quantum_signature=args.post_quantum)
    keys.save(keys_path, passphrase)
    settings = NodeSettings(
        party=args.party, home=home, hub_url=args.hub, passphrase_env=args.passphrase_env
    )
    settings.save()
    public = home / "public.json"
    public.write_text(json.dumps(keys.public_bundle(), indent=2) + "\n")
    print(f"node home {home} for {args.party}: keys.json (0600), node.json, public.json")
    print(
        f"next: `cifta directory register --home {home} ...`; send the request to the secretariat "
        f"and put the onboarding bundle it returns ({bundle_files()}) into {home}"
    )
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from services.cli.casework_cmd import cmd_rebuild

    return cmd_rebuild(args)


def _missing_bundle_files(settings: NodeSettings) -> list[str]:
    paths = {
        "hub.nk": settings.credentials_path,
        "root.json": settings.root_path,
        "audit.json": settings.audit_key_path,
        "directory.json": settings.directory_path,
    }
    return [name for name in BUNDLE_FILES if not paths[name].exists()]


def cmd_node_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    missing = _missing_bundle_files(settings)
    if missing:
        # Without audit.json the node would run but never witness the audit log, and nobody
        # would notice: refuse, as for the files it cannot run without at all.
        raise CliError(
            f"{settings.home} lacks {', '.join(missing)} of the onboarding bundle "
            f"({bundle_files()}): put the files the secretariat sent into the node home"
        )
    configure(json=settings.log_json, level=settings.log_level)
    asyncio.run(app.run_forever(settings))
    return 0


def cmd_node_recover(args: argparse.Namespace) -> int:
    from services.node.recovery import OUTCOMES, recover

    settings = _settings(args)
    if args.from_seq < 1 or (args.to_seq is not None and args.to_seq < args.from_seq):
        raise CliError(
            f"--from-seq {args.from_seq} --to-seq {args.to_seq}: expected 1 <= from <= to"
        )
    found = asyncio.run(recover(settings, from_seq=args.from_seq, to_seq=args.to_seq))
    if args.json:
        print(dumps(found.to_json()))
        return 0
    print(f"read {found.scanned} envelopes of {settings.party}'s inbox stream", end="")
    if found.scanned:
        print(f" (sequences {found.first_seq} to {found.last_seq})", end="")
    print()
    for outcome in OUTCOMES:
        print(f"  {outcome.replace('_', ' '):<16} {found.outcomes[outcome]}")
    if found.outcomes["stored"] or found.outcomes["refused"]:
        print("receipts, rejections and audit events are queued: they leave when the node runs")
    return 0


# -- officers ------------------------------------------------------------------------------------


def _common_send_options(p: argparse.ArgumentParser, *, reply: bool) -> None:
    p.add_argument("--kind", required=True, help="the body's kind, e.g. info.trafficking_routes")
    p.add_argument("--body", required=True, help="JSON file with the body ('-': standard input)")
    p.add_argument(
        "--handling",
        choices=[h.value for h in HandlingCode],
        required=not reply,
        help="H0-H3" + (" (default: that of the message answered)" if reply else ""),
    )
    p.add_argument("--note", help="the restriction, for handling code H3")
    p.add_argument("--confidential", action="store_true", default=None,
                   help="ask for Article XII confidentiality")  # fmt: skip
    p.add_argument("--json", action="store_true")


def _print_queued(args: argparse.Namespace, header: Any) -> None:
    if args.json:
        print(dumps({"msg_id": header.msg_id, "recipients": header.recipients}))
    else:
        print(f"queued {header.kind} {header.msg_id} for {', '.join(header.recipients)}")


def cmd_send(args: argparse.Namespace) -> int:
    core = _core(args)
    body = _read_body(args.kind, args.body)
    compose: Any = core.compose
    if args.attach:  # the files are stored at the hub first (imported here: it imports this)
        from services.cli import attachment_cmd

        compose = functools.partial(attachment_cmd.send, args, core)
    header = compose(
        body,
        [p.strip().upper() for p in args.to.split(",") if p.strip()],
        handling=HandlingCode(args.handling),
        confidential=bool(args.confidential),
        handling_note=args.note,
        case_id=args.case,
        expires_at=datetime.fromisoformat(args.expires) if args.expires else None,
    )
    _print_queued(args, header)
    return 0


def cmd_reply(args: argparse.Namespace) -> int:
    core = _core(args)
    body = _read_body(args.kind, args.body)
    header = core.reply(
        args.msg_id,
        body,
        to_all=args.all,
        handling=HandlingCode(args.handling) if args.handling else None,
        confidential=args.confidential,
        handling_note=args.note,
    )
    _print_queued(args, header)
    return 0


def _summary(m: StoredMessage) -> dict[str, Any]:
    return {
        "msg_id": m.msg_id,
        "direction": m.direction,
        "kind": m.kind,
        "sender": m.sender,
        "recipients": m.recipients,
        "handling": m.handling,
        "confidential": m.confidential,
        "case_id": m.case_id,
        "in_reply_to": m.in_reply_to,
        "created_at": m.created_at,
        "stored_at": m.stored_at,
        "read": m.first_read_at is not None,
    }


def cmd_inbox(args: argparse.Namespace) -> int:
    core = _core(args)
    messages = core.store.messages(
        direction=None if args.all else ("out" if args.sent else "in"),
        case_id=args.case,
        kind=args.kind,
        party=args.state,
        unread=args.unread,
        include_protocol=args.protocol,
    )
    if args.json:
        print(dumps([_summary(m) for m in messages]))
        return 0
    rows = [
        (
            m.created_at[:19].replace("T", " "),
            "<-" + m.sender if m.direction == "in" else "->" + ",".join(m.recipients),
            m.kind,
            m.handling + (" C" if m.confidential else ""),
            m.case_id or "",
            "" if m.direction == "out" or m.first_read_at else "new",
            m.msg_id,
        )
        for m in messages
    ]
    print(table(["created (UTC)", "from/to", "kind", "handling", "case", "", "msg_id"], rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    core = _core(args)
    try:
        message, opened = core.read(args.msg_id, _officer(args))
    except KeyError:
        raise CliError(f"no message {args.msg_id}") from None
    body = json.loads(opened.plaintext)
    if args.json:
        print(dumps({**_summary(message), "body": body}))
        return 0
    h = opened.header
    print(f"{h.kind}  {message.msg_id}")
    print(f"from {message.sender} to {', '.join(message.recipients)}; created {message.created_at}")
    flags = f"handling {h.handling.value}" + (f" ({h.handling_note})" if h.handling_note else "")
    print(flags + ("; CONFIDENTIAL (Art. XII)" if h.confidential else ""))
    if message.case_id:
        print(
            f"case {message.case_id}" + (f", in reply to {h.in_reply_to}" if h.in_reply_to else "")
        )
    print(f"opened by {_officer(args)} (recorded)")
    print()
    print(dumps(body))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    core = _core(args)
    message = core.store.message(args.msg_id)
    if message is None:
        raise CliError(f"no message {args.msg_id}")
    if message.direction != "out":
        raise CliError(f"{args.msg_id} was received, not sent: `cifta show` opens it")
    statuses = core.store.recipient_statuses(args.msg_id)
    if args.json:
        print(dumps([s.__dict__ | {"reason_text": reason_text(s.reason)} for s in statuses]))
        return 0
    rows = [
        (
            s.recipient,
            s.state,
            s.answered_at or s.sent_at or "",
            s.attempts,
            (f"{s.reason}: {reason_text(s.reason)}" + (f" ({s.detail})" if s.detail else ""))
            if s.reason
            else (s.last_error or ""),
        )
        for s in statuses
    ]
    print(f"{message.kind} {message.msg_id}")
    print(table(["recipient", "status", "at", "attempts", "why"], rows))
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    if args.list or not args.kind:
        for kind in sorted(BODY_MODELS):
            if not kind.startswith("protocol."):
                print(kind)
        return 0
    try:
        print(example_body(args.kind).model_dump_json(indent=2))
    except UnknownKindError:
        raise CliError(f"unknown kind {args.kind!r}") from None
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    home = os.environ.get("CIFTA_NODE_HOME")

    node = sub.add_parser("node", help="a state's node: create its home, run it")
    cmds = node.add_subparsers(dest="node_command", required=True)
    p = cmds.add_parser("init", help="generate the node's keys and settings")
    p.add_argument("--party", required=True, help="the state's ISO 3166-1 alpha-3 code")
    p.add_argument("--home", required=True)
    p.add_argument("--hub", default="nats://127.0.0.1:4222", help="the hub's URL")
    p.add_argument(
        "--passphrase-env", help="seal the key file under the passphrase in this variable"
    )
    p.add_argument("--post-quantum", action="store_true", help="add an ML-DSA-65 signing key")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_node_init)
    p = cmds.add_parser("run", help="run the node until SIGINT or SIGTERM")
    p.add_argument("--home", default=home)
    p.set_defaults(func=cmd_node_run)
    p = cmds.add_parser(
        "recover",
        help="take again what the hub's inbox stream still holds (idempotent; the node must be "
        "stopped)",
    )
    p.add_argument("--home", default=home)
    p.add_argument("--from-seq", type=int, default=1, help="first stream sequence to read")
    p.add_argument("--to-seq", type=int, help="last stream sequence to read (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_node_recover)
    p = cmds.add_parser(
        "rebuild-casework",
        help="make the procedures' state (traces, transfers, deliveries, consents) again from "
        "the stored messages",
    )
    p.add_argument("--home", default=home)
    p.set_defaults(func=_rebuild)

    def officer(name: str, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=text)
        p.add_argument("--home", default=home, help="the node's home (or CIFTA_NODE_HOME)")
        return p

    p = officer("send", "seal a message for one or several states and queue it")
    p.add_argument("--to", required=True, help="recipient states, comma-separated (USA,COL)")
    p.add_argument("--case", help="case reference (opaque)")
    p.add_argument("--expires", help="ISO 8601 time after which it must not be opened")
    p.add_argument("--attach", action="append", default=[], metavar="FILE",
                   help="a file to send with it (repeatable), encrypted end to end")  # fmt: skip
    _common_send_options(p, reply=False)
    p.set_defaults(func=cmd_send)

    p = officer("reply", "answer a message in its case")
    p.add_argument("msg_id")
    p.add_argument("--all", action="store_true", help="to every recipient, not just the sender")
    _common_send_options(p, reply=True)
    p.set_defaults(func=cmd_reply)

    p = officer("inbox", "list messages (received by default)")
    p.add_argument("--case")
    p.add_argument("--kind", help="a kind, or a family such as tracing.*")
    p.add_argument("--state", help="messages from or to this state")
    p.add_argument("--unread", action="store_true")
    p.add_argument("--sent", action="store_true", help="messages this node sent")
    p.add_argument("--all", action="store_true", help="received and sent")
    p.add_argument("--protocol", action="store_true", help="include receipts and rejections")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inbox)

    p = officer("show", "open a message; records which officer opened it")
    p.add_argument("msg_id")
    p.add_argument("--officer", help="who is reading (default: CIFTA_OFFICER or the login)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = officer("status", "per recipient: sent, delivered, rejected and why")
    p.add_argument("msg_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("template", help="print an example body of a kind, to fill in")
    p.add_argument("kind", nargs="?")
    p.add_argument("--list", action="store_true")
    p.set_defaults(func=cmd_template)


ERRORS = (
    CliError, ComposeError, EnvelopeError, KeyFileError, DirectoryError, RebuildRefused, OSError,
    AlreadyRunning,
)  # fmt: skip
