"""The cluster's rendering rules, without starting a server: fsync relaxed only on separate
machines, routes beyond loopback only with mutual TLS, three uniquely named members."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.hub import cluster as cl
from services.hub.config import HubConfigError, Listen
from services.testbed.cluster import build_cluster_hub

HOSTS = ("hub1.example.org", "hub2.example.org", "hub3.example.org")


def spread(route_ca: Path | None = None) -> cl.Cluster:
    return cl.Cluster(
        tuple(cl.Member(f"cifta-hub-{i + 1}", h) for i, h in enumerate(HOSTS)), route_ca=route_ca
    )


def test_fsync_is_relaxed_only_when_the_three_run_on_separate_machines() -> None:
    assert cl.sync_interval(cl.Cluster.local(), None) == "always"
    assert cl.sync_interval(spread(), None) == cl.RELAXED_SYNC
    assert cl.sync_interval(cl.Cluster.local(), "10s") == "10s"  # the operator's word wins


def test_routes_beyond_loopback_need_mutual_tls(tmp_path: Path) -> None:
    with pytest.raises(HubConfigError, match="mutual TLS"):
        cl.check_cluster(spread(), Listen())
    pem = tmp_path / "x.pem"
    with pytest.raises(HubConfigError, match="mutual TLS"):  # TLS for clients, none for routes
        cl.check_cluster(spread(), Listen(tls_cert=pem, tls_key=pem))
    cl.check_cluster(spread(route_ca=pem), Listen(tls_cert=pem, tls_key=pem))


def test_a_cluster_has_three_uniquely_named_members() -> None:
    local = cl.Cluster.local()
    with pytest.raises(HubConfigError, match="3 servers"):
        cl.check_cluster(cl.Cluster(local.members[:2]), Listen())
    twins = cl.Cluster((local.members[0], local.members[0], local.members[1]))
    with pytest.raises(HubConfigError, match="unique"):
        cl.check_cluster(twins, Listen())
    with pytest.raises(HubConfigError, match="30s"):
        cl.check_cluster(cl.Cluster.local(lame_duck_s=5), Listen())


def test_members_on_separate_machines_get_route_tls_and_relaxed_fsync(tmp_path: Path) -> None:
    hub = build_cluster_hub(tmp_path)
    pem = tmp_path / "hub.pem"
    pem.write_text("")
    cluster = spread(route_ca=pem)
    listen = Listen(sync_interval=cl.sync_interval(cluster, None), tls_cert=pem, tls_key=pem)
    hub.home.render_config(listen, cluster=cluster)
    registry = hub.home.registry()
    users = hub.home._user_keys(registry)
    body = cl.member_body(
        registry, users, cluster=cluster, member=cluster.members[1], plan=hub.home.plan(),
        store_dir=tmp_path / "store", listen=listen, route_secret="s3cret",
    )  # fmt: skip
    assert body["host"] == HOSTS[1] and body["server_name"] == "cifta-hub-2"
    assert body["jetstream"]["sync_interval"] == "2m"  # type: ignore[index]
    block = body["cluster"]
    assert isinstance(block, dict)
    assert block["tls"]["verify"] is True and block["tls"]["ca_file"] == str(pem.resolve())
    assert block["routes"] == [
        f"nats-route://route:s3cret@{HOSTS[0]}:6222",
        f"nats-route://route:s3cret@{HOSTS[2]}:6222",
    ]
    assert body["http"] == "127.0.0.1:8222"  # monitoring never beyond loopback


def test_a_fixed_leaf_port_gives_members_on_one_host_ports_of_their_own(tmp_path: Path) -> None:
    hub = build_cluster_hub(tmp_path)
    hub.home.render_config(Listen(leaf_port=7422), cluster=cl.Cluster.local(port=14222))
    assert hub.home.leaf_url() == ",".join(f"nats-leaf://127.0.0.1:{p}" for p in (7422, 7423, 7424))
    rendered = [json.loads(_without_comments(hub.home.root / "cluster" / m / "nats.conf"))
                for m in ("cifta-hub-1", "cifta-hub-2", "cifta-hub-3")]  # fmt: skip
    assert [c["leafnodes"]["port"] for c in rendered] == [7422, 7423, 7424]
    # on three machines, the one port everywhere
    assert [m.leaf_port for m in cl.with_leaf_ports(spread(), 7422).members] == [7422] * 3
    # a port picked at each member's first start stays theirs
    assert cl.with_leaf_ports(cl.Cluster.local(), -1) == cl.Cluster.local()


def _without_comments(path: Path) -> str:
    return "\n".join(x for x in path.read_text().splitlines() if not x.startswith("#"))
