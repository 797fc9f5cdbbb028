"""The hubs the tests restart listen in this worker's own range of ports (testbed/ports.py)."""

from __future__ import annotations

import pytest

from services.testbed import ports
from services.testbed.cluster import ClusterHub
from tests.support.hub import Hub


def ephemeral_low() -> int:
    with open(ports.EPHEMERAL, encoding="ascii") as f:
        return int(f.read().split()[0])


def in_range(port: int) -> bool:
    span = ports.configured()
    if span is None:  # tests/conftest.py gives one wherever there is room for it
        pytest.skip("this machine's ephemeral ports leave no room below them for the ranges")
    return span[0] <= port <= span[1] < ephemeral_low()


def test_a_killed_hub_comes_back_at_its_url_on_a_port_of_the_workers_range(hub: Hub) -> None:
    before = hub.url
    assert in_range(hub.port)
    hub.kill()
    assert hub.restart_on_same_port() == before


def test_every_port_of_a_cluster_member_is_in_the_workers_range(cluster_hub: ClusterHub) -> None:
    for member in cluster_hub.cluster.members:
        assert all(in_range(p) for p in (member.port, member.cluster_port, member.monitor_port))
