"""The hub as a three-server nats-server cluster (design section 5, issue 16).

Each server gets the same accounts as a single-server hub (``config.server_body``), plus: a unique
``server_name``, a ``cluster`` block with routes to the other two (authenticated with a secret
held in the hub home), one JetStream domain for the whole hub, a loopback-only monitoring port
(its ``/healthz`` tells when the server has caught up, which a rolling restart waits for) and a
short lame-duck period (its clients move to the other two servers before it stops). Every stream
is then provisioned with three replicas (``provision.Policy.replicas``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from services.hub import config
from services.hub.registry import Registry
from services.hub.resources import Plan

#: The size of the hub cluster: three servers, so that any one may stop and the other two keep a
#: Raft quorum (2 of 3) for every R3 stream.
SIZE = 3
CLUSTER_NAME = "cifta-hub"
#: The hub's JetStream domain: a state's leaf node has its own, and reaches the hub's streams
#: through this one (``$JS.hub.API.>``).
DOMAIN = "hub"
ROUTE_USER = "route"
#: nats-server's default for ``sync_interval``; see :func:`sync_interval` for when it is safe.
RELAXED_SYNC = "2m"
MIN_LAME_DUCK_S = 30.0


@dataclass(frozen=True)
class Member:
    """One server of the cluster. A port of -1: the server picks a free one at its first start,
    and the hub home keeps it for every later start."""

    name: str  # nats-server's server_name: unique in the cluster
    host: str = "127.0.0.1"
    port: int = 4222  # clients
    cluster_port: int = 6222  # routes to the other members
    monitor_port: int = 8222  # HTTP monitoring (healthz), on loopback only
    #: The leaf node listener (services/hub/leaf.py), when the hub has one: picked at the first
    #: start like the others when the rendering asked for -1.
    leaf_port: int | None = None

    def client_url(self, tls: bool = False) -> str:
        return f"{'tls' if tls else 'nats'}://{self.host}:{self.port}"

    def route_url(self, secret: str) -> str:
        return f"nats-route://{ROUTE_USER}:{secret}@{self.host}:{self.cluster_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"


@dataclass(frozen=True)
class Cluster:
    members: tuple[Member, ...]
    name: str = CLUSTER_NAME
    domain: str = DOMAIN
    #: How long a server in lame-duck mode takes to move its clients away before it stops
    #: (nats-server's minimum is 30 s).
    lame_duck_s: float = 30.0
    #: CA that signed the members' certificates: routes beyond loopback need mutual TLS.
    route_ca: Path | None = None

    @classmethod
    def local(cls, host: str = "127.0.0.1", port: int = 4222, **kw: object) -> Cluster:
        """Three members on one host: client ports ``port..port+2``, routes from 6222, monitoring
        from 8222; with ``port`` -1 every port is picked at the first start."""
        members = tuple(
            Member(
                f"{CLUSTER_NAME}-{i + 1}", host,
                *((-1, -1, -1) if port == -1 else (port + i, 6222 + i, 8222 + i)),
            )
            for i in range(SIZE)
        )  # fmt: skip
        return cls(members, **kw)  # type: ignore[arg-type]

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        names = ", ".join(m.name for m in self.members)
        raise config.HubConfigError(f"no hub server {name!r}: the cluster has {names}")

    def with_member(self, member: Member) -> Cluster:
        return replace(
            self, members=tuple(member if m.name == member.name else m for m in self.members)
        )

    def urls(self, tls: bool = False) -> str:
        """The client URLs of every member, comma-separated: what a node's ``hub_url`` takes."""
        return ",".join(m.client_url(tls) for m in self.members)

    @property
    def one_host(self) -> bool:
        return len({m.host for m in self.members}) == 1


def sync_interval(cluster: Cluster, requested: str | None) -> str:
    """JetStream's fsync interval for the cluster's servers: ``requested`` if the operator gave
    one, else relaxed to nats-server's default only where R3 makes it safe.

    A PubAck on an R3 stream means a quorum (2 of 3 servers) holds the message. Without an fsync
    before the ack (nats-server issue 7564) it may still be only in those servers' page caches,
    so it is lost only if two servers lose power or crash together. That is safe when the three
    run on separate machines (separate power, separate kernels): one failing loses nothing, the
    others hold it. When the three share one host, one power cut takes the quorum down with every
    unsynced message, so the interval stays "always" as on a single server.
    """
    if requested is not None:
        return requested
    return "always" if cluster.one_host else RELAXED_SYNC


def check_cluster(cluster: Cluster, listen: config.Listen) -> None:
    """Refuse a cluster that cannot form, or whose routes would cross the network in the clear."""
    if len(cluster.members) != SIZE:
        raise config.HubConfigError(f"a hub cluster has {SIZE} servers, not {len(cluster.members)}")
    if len({m.name for m in cluster.members}) != SIZE:
        raise config.HubConfigError("the hub servers' names must be unique")
    if cluster.lame_duck_s < MIN_LAME_DUCK_S:
        raise config.HubConfigError(
            f"lame-duck duration {cluster.lame_duck_s:g}s: nats-server's minimum is 30s"
        )
    beyond = [m.host for m in cluster.members if not config.is_loopback(m.host)]
    if beyond and (not listen.tls or cluster.route_ca is None):
        raise config.HubConfigError(
            f"hub servers on {', '.join(beyond)} would route to each other beyond this machine: "
            "give --tls-cert, --tls-key and --route-ca so that routes use mutual TLS"
        )


def with_leaf_ports(cluster: Cluster, leaf_port: int | None) -> Cluster:
    """``cluster`` with each member's leaf node port from a fixed ``--leaf-port``: members on
    one host cannot share a port, so the second on a host takes the next port and the third the
    one after (as their client ports do); members on separate hosts all take ``leaf_port``. A
    port of -1 or None leaves the members' own (picked at their first start)."""
    if leaf_port is None or leaf_port <= 0:
        return cluster
    seen: dict[str, int] = {}
    members = []
    for m in cluster.members:
        offset = seen.get(m.host, 0)
        seen[m.host] = offset + 1
        members.append(replace(m, leaf_port=leaf_port + offset))
    return replace(cluster, members=tuple(members))


def member_body(
    registry: Registry,
    users: Mapping[tuple[str, str], str],
    *,
    cluster: Cluster,
    member: Member,
    store_dir: Path,
    plan: Plan,
    listen: config.Listen,
    route_secret: str,
    leaves: Sequence[str] = (),
) -> dict[str, object]:
    """One member's configuration as a dictionary (``config.server_body`` plus the cluster)."""
    check_cluster(cluster, listen)
    leaf_port = None if listen.leaf_port is None else member.leaf_port or listen.leaf_port
    own = replace(listen, host=member.host, port=member.port, leaf_port=leaf_port)
    body = config.server_body(
        registry, users, store_dir=store_dir, plan=plan, listen=own, server_name=member.name,
        leaves=leaves,
    )  # fmt: skip
    jetstream = body["jetstream"]
    assert isinstance(jetstream, dict)
    jetstream["domain"] = cluster.domain
    routes = [
        m.route_url(route_secret)
        for m in cluster.members
        if m.name != member.name and m.cluster_port > 0  # a port not picked yet: no route yet
    ]
    block: dict[str, object] = {
        "name": cluster.name,
        "host": member.host,
        "port": member.cluster_port,
        "routes": routes,
        # a server that is not one of the three cannot join as a route and see the traffic
        "authorization": {"user": ROUTE_USER, "password": route_secret, "timeout": 5},
    }
    if listen.tls_cert is not None and listen.tls_key is not None and cluster.route_ca:
        block["tls"] = {
            "cert_file": str(listen.tls_cert.resolve()),
            "key_file": str(listen.tls_key.resolve()),
            "ca_file": str(cluster.route_ca.resolve()),
            "verify": True,
            "timeout": 5,
        }
    body["cluster"] = block
    body["http"] = f"127.0.0.1:{member.monitor_port}"  # healthz for restarts; never exposed
    body["lame_duck_duration"] = f"{cluster.lame_duck_s:g}s"
    # clients learn within two seconds that the server is leaving (nats-server's default waits
    # ten before closing the first); the duration then spreads the closing of the rest
    body["lame_duck_grace_period"] = "2s"
    return body
