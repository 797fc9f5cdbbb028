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
from services.hub import cluster as cl
from services.hub import members, provision, server
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


def _cluster(home: HubHome, args: argparse.Namespace) -> cl.Cluster | None:
    """The cluster the flags ask for: three servers on --host (--cluster) or one on each of
    --cluster-hosts; None: keep what the previous rendering had."""
    route_ca = Path(args.route_ca).resolve() if args.route_ca else None
    if args.cluster_hosts:
        hosts = [h.strip() for h in args.cluster_hosts.split(",") if h.strip()]
        if len(hosts) != cl.SIZE:
            raise HubConfigError(
                f"--cluster-hosts {args.cluster_hosts}: expected {cl.SIZE} hosts, one per server"
            )
        port = 4222 if args.port == -1 else args.port
        return cl.Cluster(
            tuple(cl.Member(f"{cl.CLUSTER_NAME}-{i + 1}", h, port) for i, h in enumerate(hosts)),
            route_ca=route_ca,
        )
    if args.cluster:
        return cl.Cluster.local(args.host, args.port, route_ca=route_ca)
    return None


def cmd_render(args: argparse.Namespace) -> int:
    home = _home(args)
    tls_cert = Path(args.tls_cert).resolve() if args.tls_cert else None
    tls_key = Path(args.tls_key).resolve() if args.tls_key else None
    cluster = None if args.single else _cluster(home, args) or home.cluster()
    sync = args.sync_interval or "always"
    if cluster is not None:  # relaxed only where R3 on separate machines makes it safe
        sync = cl.sync_interval(cluster, args.sync_interval)
    listen = Listen(args.host, args.port, sync, tls_cert, tls_key, args.insecure_plaintext)
    # the states' leaf node listener (services/hub/leaf.py): kept from the previous rendering
    leaf_port = args.leaf_port if args.leaf_port is not None else home.listen().leaf_port
    listen = replace(listen, leaf_port=leaf_port)
    path = home.render_config(listen, _resources(home, args), cluster=cluster, single=args.single)
    plan = home.plan()
    print(f"rendered {path} from registry version {home.registry().version}")
    if cluster is not None:
        for m in cluster.members:
            print(f"  {m.name}: clients {m.host}:{m.port}, routes {m.cluster_port}, "
                  f"healthz 127.0.0.1:{m.monitor_port}")  # fmt: skip
        print(f"  JetStream domain {cluster.domain}, sync_interval {sync}; provision with "
              f"--replicas {cl.SIZE}")  # fmt: skip
    print(
        f"JetStream: {format_size(plan.resources.jetstream_disk)} of disk, "
        f"{format_size(plan.resources.jetstream_memory)} of memory; each state "
        f"{format_size(plan.state_disk)} (planned for {plan.shares} states), audit "
        f"{format_size(plan.audit_disk)}, lookup filters {format_size(plan.secretariat_disk)}"
    )
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    url = _home(args).start(args.server)
    print(f"hub started at {url}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    print("hub stopped" if _home(args).stop(args.server) else "hub was not running")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    _home(args).restart(print, args.drain)
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
    replicas = args.replicas or (1 if home.cluster() is None else cl.SIZE)
    policy = provision.Policy(max_deliver=args.max_deliver, replicas=replicas)

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

    if not args.json and (cluster := home.cluster()) is not None:
        _print_servers(home, cluster)
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


def _print_servers(home: HubHome, cluster: cl.Cluster) -> None:
    rows = []
    for m in cluster.members:
        pid = members.running_pid(home.root, m.name)
        healthy = members.health(m) if pid is not None else "stopped"
        rows.append((m.name, pid or "-", m.client_url(), healthy or "ok"))
    print(table(["server", "pid", "clients", "health"], rows))


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
        help="JetStream fsync: 'always' (one server, or a cluster on one machine) or e.g. '2m' "
        "(default for a cluster on three machines: R3 keeps a quorum's copy)",
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="three servers on --host: clients on --port and the next two, routes from 6222",
    )
    p.add_argument(
        "--cluster-hosts",
        metavar="H1,H2,H3",
        help="three servers, one per machine (each started with `cifta hub start --server`)",
    )
    p.add_argument("--route-ca", help="CA of the servers' certificates: mutual TLS on routes")
    p.add_argument(
        "--leaf-port",
        type=int,
        help="listen for the states' leaf nodes on this port (-1: any free port, then kept)",
    )
    p.add_argument("--single", action="store_true", help="one server again (not a cluster)")
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
        ("start", cmd_start, "start nats-server in the background (every cluster member)"),
        ("stop", cmd_stop, "stop nats-server cleanly (every cluster member)"),
    ]:
        p = cmds.add_parser(name, help=text)
        p.add_argument("--server", help="only this cluster member, e.g. cifta-hub-2")
        p.set_defaults(func=func)
    p = cmds.add_parser(
        "restart", help="restart for an upgrade: a cluster one server at a time, keeping quorum"
    )
    p.add_argument(
        "--drain", type=float, metavar="SECONDS",
        help="stop each server after this long in lame-duck mode (default: the full period)",
    )  # fmt: skip
    p.set_defaults(func=cmd_restart)

    for name, func, text in [
        ("reload", cmd_reload, "reload the rendered config without a restart"),
        ("url", cmd_url, "print the running hub's client URL"),
    ]:
        cmds.add_parser(name, help=text).set_defaults(func=func)

    p = cmds.add_parser("provision", help="create or update the states' streams and consumers")
    p.add_argument("--state", action="append", help="only this state (repeatable)")
    p.add_argument("--url", help="hub URL (default: the one this home started)")
    p.add_argument("--max-deliver", type=int, default=provision.Policy.max_deliver)
    p.add_argument(
        "--replicas", type=int, help="copies of each stream (default: 3 on a cluster, else 1)"
    )
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
