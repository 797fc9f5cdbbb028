"""`cifta hub` on a three-server cluster: render, start, provision R3, status, a rolling restart
for an upgrade, stop; and the one-line refusals."""

from __future__ import annotations

import pytest

from services.testbed.cluster import ClusterHub
from tests.integration.test_hub_operations import hub_cli, hub_cli_async, one_line_error


async def test_cluster_lifecycle_through_the_cli(
    cluster_home: ClusterHub, capsys: pytest.CaptureFixture[str]
) -> None:
    home = cluster_home.home
    code, out, _ = await hub_cli_async(capsys, home, "render-config", "--cluster", "--port", "-1")
    assert code == 0 and "cifta-hub-3" in out and "--replicas 3" in out
    code, out, _ = await hub_cli_async(capsys, home, "start")
    assert code == 0 and out.count("nats://127.0.0.1:") == 3
    cluster_home.url = home.url()
    cluster_home.wait_healthy()
    code, out, _ = await hub_cli_async(capsys, home, "provision")  # R3 by default on a cluster
    assert code == 0, out
    info = await cluster_home.status("MEX")
    assert info.stored == 0
    code, out, _ = await hub_cli_async(capsys, home, "status")
    assert code == 0
    assert sum(line.endswith(" ok") for line in out.splitlines()) == 3, out
    code, out, _ = await hub_cli_async(capsys, home, "restart", "--drain", "2")
    assert code == 0 and "all hub servers healthy" in out
    code, out, _ = await hub_cli_async(capsys, home, "stop", "--server", "cifta-hub-2")
    assert code == 0 and out.strip() == "hub stopped"
    code, out, _ = await hub_cli_async(capsys, home, "status")
    assert "stopped" in out and (await cluster_home.status("USA")).stored == 0  # quorum kept
    code, out, _ = await hub_cli_async(capsys, home, "stop")
    assert code == 0 and out.strip() == "hub stopped"


def test_cluster_refusals_say_what_to_change(
    cluster_home: ClusterHub, capsys: pytest.CaptureFixture[str]
) -> None:
    home = cluster_home.home
    code, _, err = hub_cli(capsys, home, "render-config", "--cluster-hosts", "10.0.0.1,10.0.0.2")
    assert code != 0 and "expected 3 hosts" in one_line_error(err)
    code, _, err = hub_cli(
        capsys, home, "render-config", "--cluster-hosts", "10.0.0.1,10.0.0.2,10.0.0.3"
    )
    assert code != 0 and "mutual TLS" in one_line_error(err)
    assert hub_cli(capsys, home, "render-config", "--cluster", "--port", "-1")[0] == 0
    code, _, err = hub_cli(capsys, home, "start", "--server", "cifta-hub-9")
    assert code != 0 and "cifta-hub-1" in one_line_error(err)
