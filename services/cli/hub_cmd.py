"""``cifta hub ...``: the secretariat's commands for the hub."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from services.cli.tables import dumps, table
from services.core.connection import HubUnreachable
from services.core.metrics import add_metrics_option
from services.hub import provision, server
from services.hub.config import HubConfigError, Listen
from services.hub.credentials import PROVISION_USER
from services.hub.home import PASSPHRASE_ENV, HubError, HubHome
from services.hub.resources import ResourceError, Resources, format_size, parse_size


def _home(args: argparse.Namespace) -> HubHome:
    return HubHome(Path(args.home))


def _ca(args: argparse.Namespace) -> Path | None:
    return Path(args.tls_ca) if args.tls_ca else None


def cmd_init(args: argparse.Namespace) -> int:
    home = _home(args)
    registry = home.init(Path(args.registry))
    states = ", ".join(registry.codes())
    print(f"hub home {home.root}: registry version {registry.version}, states {states}")
    print(
        f"secretariat keys in {home.secretariat_keys} (0600); NATS user seeds in {home.nkeys_dir}"
    )
    if home.key_passphrase is None:
        print(
            f"warning: {PASSPHRASE_ENV} is not set, so new key files were written unsealed; "
            "set it before `cifta hub init` to seal them",
            file=sys.stderr,
        )
    return 0


def _resources(home: HubHome, args: argparse.Namespace) -> Resources | None:
    """The resources the flags change, the others kept from the previous rendering."""
    given: dict[str, object] = {}
    if args.jetstream_disk:
        given["jetstream_disk"] = parse_size(args.jetstream_disk, "--jetstream-disk")
    if args.jetstream_memory:
        given["jetstream_memory"] = parse_size(args.jetstream_memory, "--jetstream-memory")
    if args.state_disk:
        given["state_disk"] = parse_size(args.state_disk, "--state-disk")
    if args.planned_states is not None:
        given["planned_states"] = args.planned_states
    return replace(home.resources(), **given) if given else None  # type: ignore[arg-type]


def cmd_render(args: argparse.Namespace) -> int:
    home = _home(args)
    tls_cert = Path(args.tls_cert).resolve() if args.tls_cert else None
    tls_key = Path(args.tls_key).resolve() if args.tls_key else None
    listen = Listen(
        args.host, args.port, args.sync_interval, tls_cert, tls_key, args.insecure_plaintext
    )
    path = home.render_config(listen, _resources(home, args))
    plan = home.plan()
    print(f"rendered {path} from registry version {home.registry().version}")
    print(
        f"JetStream: {format_size(plan.resources.jetstream_disk)} of disk, "
        f"{format_size(plan.resources.jetstream_memory)} of memory; each state "
        f"{format_size(plan.state_disk)} (planned for {plan.shares} states), audit "
        f"{format_size(plan.audit_disk)}, lookup filters {format_size(plan.secretariat_disk)}"
    )
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    url = _home(args).start()
    print(f"hub started at {url}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    print("hub stopped" if _home(args).stop() else "hub was not running")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    _home(args).reload()
    print("configuration reloaded (connections kept)")
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    print(_home(args).url())
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    home = _home(args)
    states = args.state or home.registry().codes()
    policy = provision.Policy(max_deliver=args.max_deliver, replicas=args.replicas)

    asyncio.run(home.provision(args.url or home.url(), states, policy, _ca(args)))
    for state in states:
        print(f"provisioned {state}: INBOX_{state}, QUARANTINE_{state}, UNDELIVERED_{state}, "
              "consumer node, bucket DIRECTORY")  # fmt: skip
    print("provisioned AUDIT: every inbox sourced, the nodes' events, consumer audit")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    home = _home(args)

    async def run() -> list[provision.StateStatus]:
        url = args.url or home.url()
        return [
            await provision.state_status(url, home.user_seed(s, PROVISION_USER), s, _ca(args))
            for s in home.registry().codes()
        ]

    statuses = asyncio.run(run())
    if args.json:
        print(dumps([s.to_json() for s in statuses]))
        return 0
    rows = [
        (
            s.state, s.stored, s.pending, s.unacknowledged, s.redelivered, s.past_last_attempt,
            _when(s.last_given_up), "yes" if s.waiting_pulls else "no", _when(s.last_seen),
            s.quarantined,
        )
        for s in statuses
    ]  # fmt: skip
    headers = ["state", "stored", "pending", "unacked", "redelivered", "past last attempt",
               "last given up", "pulling now", "last delivery", "quarantined"]  # fmt: skip
    print(table(headers, rows))
    for s in statuses:
        if s.past_last_attempt:
            print(
                f"{s.state}: {s.past_last_attempt} messages past their last delivery attempt, "
                f"still in its inbox: {s.state}'s node replays them with `cifta node recover`"
            )
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """The hub's monitoring as Prometheus metrics, until SIGINT or SIGTERM."""
    import signal

    from services.core.logs import configure
    from services.core.metrics import serve_metrics
    from services.hub.config import SYSTEM_ACCOUNT
    from services.hub.monitor import HubMonitor

    home = _home(args)
    seed = home.user_seed(SYSTEM_ACCOUNT, "system")
    monitor = HubMonitor(args.url or home.url(), seed, _ca(args), every_s=args.every)
    configure(json=True, level="INFO")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = await serve_metrics(args.metrics, monitor.registry, monitor.ready)
        task = asyncio.create_task(monitor.run())
        await stop.wait()
        task.cancel()
        if server is not None:
            await server.stop()

    asyncio.run(run())
    return 0


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hub = sub.add_parser("hub", help="the secretariat's hub: config, server, provisioning, status")
    hub.add_argument(
        "--home", default=os.environ.get("CIFTA_HUB_HOME", "var/hub"), help="hub home directory"
    )
    cmds = hub.add_subparsers(dest="hub_command", required=True)

    p = cmds.add_parser("init", help="create the hub home: registry, secretariat keys, NKeys")
    p.add_argument("--registry", default="deploy/registry.json")
    p.set_defaults(func=cmd_init)

    p = cmds.add_parser("render-config", help="render nats.conf from the registry")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4222, help="-1: any free port")
    p.add_argument(
        "--sync-interval",
        default="always",
        help="JetStream fsync: 'always' (default, one server) or e.g. '2m' (R3 cluster)",
    )
    p.add_argument("--tls-cert", help="server certificate (PEM): clients must then use tls://")
    p.add_argument("--tls-key", help="the certificate's private key (PEM)")
    p.add_argument(
        "--insecure-plaintext",
        action="store_true",
        help="allow a --host beyond loopback without TLS (only behind a TLS-terminating tunnel)",
    )
    p.add_argument(
        "--jetstream-disk",
        metavar="SIZE",
        help="disk JetStream may use, e.g. 500GiB (default: 75%% of the free disk, kept)",
    )
    p.add_argument("--jetstream-memory", metavar="SIZE", help="memory JetStream may use (256MiB)")
    p.add_argument(
        "--planned-states",
        type=int,
        metavar="N",
        help="states to share the disk among (default 35, the OAS membership)",
    )
    p.add_argument(
        "--state-disk", metavar="SIZE", help="each state's limit (default: an equal share)"
    )
    p.set_defaults(func=cmd_render)

    for name, func, text in [
        ("start", cmd_start, "start nats-server in the background"),
        ("stop", cmd_stop, "stop nats-server cleanly"),
        ("reload", cmd_reload, "reload the rendered config without a restart"),
        ("url", cmd_url, "print the running hub's client URL"),
    ]:
        cmds.add_parser(name, help=text).set_defaults(func=func)

    p = cmds.add_parser("provision", help="create or update the states' streams and consumers")
    p.add_argument("--state", action="append", help="only this state (repeatable)")
    p.add_argument("--url", help="hub URL (default: the one this home started)")
    p.add_argument("--max-deliver", type=int, default=provision.Policy.max_deliver)
    p.add_argument("--replicas", type=int, default=1, help="3 on a three-server cluster")
    p.add_argument("--tls-ca", help="CA bundle that signed the hub's certificate")
    p.set_defaults(func=cmd_provision)

    p = cmds.add_parser(
        "status", help="per state: pending, redeliveries, past last attempt, last seen"
    )
    p.add_argument("--url")
    p.add_argument("--tls-ca", help="CA bundle that signed the hub's certificate")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = cmds.add_parser(
        "monitor", help="serve the hub's monitoring (servers, accounts, streams) as metrics"
    )
    p.add_argument("--url", help="hub URL (default: the one this home started)")
    p.add_argument("--tls-ca", help="CA bundle that signed the hub's certificate")
    p.add_argument("--every", type=float, default=5.0, help="seconds between looks at the hub")
    add_metrics_option(p)
    p.set_defaults(func=cmd_monitor)


ERRORS = (
    HubUnreachable,
    HubError,
    HubConfigError,
    ResourceError,
    server.ServerError,
    provision.ProvisionError,
    OSError,
)
__all__ = ["ERRORS", "add_parser"]
