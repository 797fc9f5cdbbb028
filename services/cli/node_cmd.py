"""``cifta node ...``: create a node's home, run it, recover its inbox, rebuild its procedures.

The officer's commands are in ``messages_cmd`` (messages), ``tracing_cmd`` (tracing, transfers)
and ``delivery_cmd`` (controlled deliveries, Article XII).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from services.cli import messages
from services.cli.tables import dumps
from services.core.directory import DirectoryError
from services.core.keys import KeyFileError, NodeKeys
from services.core.logs import configure
from services.core.metrics import add_metrics_option
from services.node import app
from services.node.application import load_settings, open_node
from services.node.lockfile import AlreadyRunning
from services.node.settings import NodeSettings

#: What the secretariat's onboarding bundle holds and the node needs before it runs: its hub
#: credential, the directory root key it pins, the audit log's checkpoint key it witnesses with,
#: and the directory so far (docs/operations.md, section 2.2).
BUNDLE_FILES = ("hub.nk", "root.json", "audit.json", "directory.json")


def bundle_files() -> str:
    return ", ".join(BUNDLE_FILES)


class CliError(Exception):
    """A command could not do what was asked; the message says why."""


def _settings(args: argparse.Namespace) -> NodeSettings:
    return load_settings(args.home)


def _passphrase(settings: NodeSettings) -> bytes | None:
    if not settings.passphrase_env:
        return None
    value = os.environ.get(settings.passphrase_env)
    if value is None:
        raise CliError(f"the key file's passphrase variable {settings.passphrase_env} is not set")
    return value.encode()


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
    applied, skipped = open_node(args.home).rebuild_casework()
    print(messages.text("rebuilt", applied=applied, skipped=skipped))
    return 0


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
    asyncio.run(app.run_forever(settings, metrics=args.metrics))
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
    if found.quarantine_held:
        print(f"{found.quarantine_held} quarantine copies held: the node files them when it runs")
    if found.outcomes["stored"] or found.outcomes["refused"]:
        print("receipts, rejections and audit events are queued: they leave when the node runs")
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
    add_metrics_option(p)
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


ERRORS = (CliError, KeyFileError, DirectoryError, OSError, AlreadyRunning)
