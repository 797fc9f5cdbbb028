"""``cifta leaf``: a state's own leaf node (docs/operations.md, "A state's leaf").

The secretariat allows a state a leaf (``allow``) and watches the relays (``relays``); the state
sets its leaf up (``init``, ``render-config``, ``start``), points its node at it (``attach``) and
watches its link (``status``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from services.core import subjects
from services.core.files import write_secret
from services.hub.credentials import PROVISION_USER
from services.hub.home import HubHome
from services.leaf.home import ADMIN, LeafError, LeafHome, LeafSettings
from services.leaf.status import (
    STALLED_S,
    LinkStatusError,
    hub_report,
    leaf_report,
    relay_hears_leaf,
    restart_relay_source,
    restart_stalled_inbox_sources,
)
from services.node.settings import SETTINGS_FILE


def cmd_allow(args: argparse.Namespace) -> int:
    home = HubHome(Path(args.home))
    seed = home.allow_leaf(args.state)
    home.render_config()
    print(f"{args.state} may run a leaf node; its leaf user's seed is {seed}")
    if args.out:
        out = Path(args.out) / "hub-leaf.nk"
        write_secret(out, seed.read_bytes())
        print(f"copied it to {out} (0600), for the state's operator alone")
    print("next: `cifta hub reload` (if running), then `cifta hub provision`")
    return 0


def cmd_relays(args: argparse.Namespace) -> int:
    home = HubHome(Path(args.home))
    seeds = {s: home.user_seed(s, PROVISION_USER) for s in home.registry().codes()}
    if args.restart:
        if args.restart not in home.leaves():
            print(f"error: --restart {args.restart}: not a state on a leaf; expected one of "
                  f"{', '.join(home.leaves()) or '(none)'}", file=sys.stderr)  # fmt: skip
            return 2
        url, state = args.url or home.url(), args.restart
        if asyncio.run(relay_hears_leaf(url, seeds[state], state)):
            print(f"{state}'s relay hears the leaf: left as it is")
        else:
            asyncio.run(restart_relay_source(url, seeds[state], state))
            print(f"{state}'s relay: its leader stepped down; the next sets up its source")
        done = asyncio.run(restart_stalled_inbox_sources(url, seeds, state))
        for recipient in done.restarted:
            print(f"{recipient}'s inbox had not heard {state}'s relay for {STALLED_S:.0f} s: its "
                  "leader stepped down; the next sets up its source")  # fmt: skip
        for recipient, why in done.failed.items():
            print(f"error: {recipient}'s inbox: {why}", file=sys.stderr)
        if done.failed:
            return 1
    for line in asyncio.run(hub_report(args.url or home.url(), seeds, home.leaves())):
        print(line)
    return 0


def _leaf(args: argparse.Namespace) -> LeafHome:
    return LeafHome(Path(args.home))


def cmd_init(args: argparse.Namespace) -> int:
    settings = LeafSettings(args.state, args.hub_leaf_url, port=args.port)
    _leaf(args).init(settings, Path(args.seed))
    print(f"leaf home of {args.state} at {args.home}; next: `cifta leaf render-config`")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    print(f"rendered {_leaf(args).render_config()}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    url = asyncio.run(_leaf(args).start())
    print(f"leaf running; its node connects to {url}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    print("leaf stopped" if _leaf(args).stop() else "the leaf was not running")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    """Point a node's settings at the leaf: its URL, its local credentials, its outbox."""
    node_home = Path(args.node_home)
    path = node_home / SETTINGS_FILE
    values = json.loads(path.read_text()) if path.exists() else {}
    overrides = _leaf(args).node_overrides()
    values.update({k: str(v) for k, v in overrides.items()})
    path.write_text(json.dumps(values, indent=2) + "\n")
    print(f"the node at {node_home} now sends through {overrides['outbox_stream']} at "
          f"{overrides['hub_url']}")  # fmt: skip
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    leaf = _leaf(args)
    state = leaf.settings().state
    running = leaf.running_pid()
    print(f"leaf {subjects.leaf_domain(state)}: " + ("running" if running else "not running"))
    if running:
        for line in asyncio.run(leaf_report(leaf.url(), leaf.seed(ADMIN), state)):
            print(f"  {line}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmds = sub.add_parser("leaf", help="a state's own leaf node").add_subparsers(
        dest="leaf_command", required=True
    )
    p = cmds.add_parser("allow", help="(secretariat) let a state run a leaf node")
    p.add_argument(
        "--home", default=os.environ.get("CIFTA_HUB_HOME", "var/hub"), help="the hub home"
    )
    p.add_argument("--state", required=True)
    p.add_argument("--out", help="also copy the leaf user's seed into this directory")
    p.set_defaults(func=cmd_allow)
    p = cmds.add_parser("relays", help="(secretariat) the leaves' relays and sources")
    p.add_argument(
        "--home", default=os.environ.get("CIFTA_HUB_HOME", "var/hub"), help="the hub home"
    )
    p.add_argument("--url", help="the hub's URL (default: the home's)")
    p.add_argument(
        "--restart", metavar="STATE",
        help="first make STATE's relay set up its source of the leaf again (its leader steps "
        "down) unless it hears the leaf, and every inbox whose source of that relay is "
        "stalled: for a relay that does not hear a leaf whose link is back, or messages that "
        "stay in the relay",
    )  # fmt: skip
    p.set_defaults(func=cmd_relays)

    p = cmds.add_parser("init", help="create a leaf home")
    p.add_argument("--home", required=True, help="the leaf home")
    p.add_argument("--state", required=True)
    p.add_argument("--hub-leaf-url", required=True, help="nats-leaf://host:port[,...]")
    p.add_argument("--seed", required=True, help="the leaf user's seed from the secretariat")
    p.add_argument("--port", type=int, default=-1, help="the node's port on the leaf")
    p.set_defaults(func=cmd_init)
    for name, func, text in (
        ("render-config", cmd_render, "render leaf.conf"),
        ("start", cmd_start, "start the leaf (its streams created at the first start)"),
        ("stop", cmd_stop, "stop the leaf"),
        ("status", cmd_status, "the leaf's outbox and mirrors"),
    ):
        p = cmds.add_parser(name, help=text)
        p.add_argument("--home", required=True, help="the leaf home")
        p.set_defaults(func=func)
    p = cmds.add_parser("attach", help="point a node at this leaf")
    p.add_argument("--home", required=True, help="the leaf home")
    p.add_argument("--node-home", required=True)
    p.set_defaults(func=cmd_attach)


ERRORS = (LeafError, LinkStatusError)
