"""A real three-server hub cluster for tests and benchmarks: three nats-server processes on free
loopback ports, in a temporary directory, every stream provisioned R3.

Built with the same code as ``cifta hub render-config --cluster / start / provision --replicas 3``.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from services.hub import cluster as cl
from services.hub import members, provision, server
from services.hub.config import Listen
from services.testbed import ports
from services.testbed.hub import STATES, Hub, build_hub


@dataclass
class ClusterHub(Hub):
    """A :class:`Hub` whose ``url`` names all three members; a node or tool given it connects to
    any one that answers."""

    @property
    def cluster(self) -> cl.Cluster:
        found = self.home.cluster()
        assert found is not None, "not rendered as a cluster"
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.cluster.members)

    def start(self, port: int = -1) -> str:
        """Render (the first time: ports picked at start, then kept) and start every member."""
        if self.home.cluster() is None:
            local = cl.Cluster.local(port=-1)
            # each member's ports, kept across its restarts (services/testbed/ports.py)
            picked = tuple(
                replace(
                    m, port=ports.pick(), cluster_port=ports.pick(), monitor_port=ports.pick(),
                    leaf_port=ports.pick() if self.leaf_port == -1 else None,
                )
                for m in local.members
            )  # fmt: skip
            self.home.render_config(
                Listen(port=port, leaf_port=self.leaf_port, sync_interval=self.sync_interval),
                cluster=replace(local, members=picked),
            )
        self.url = self.home.start()
        return self.url

    def restart_on_same_port(self) -> str:
        return self.start()

    def wait_healthy(self, timeout: float = members.CATCH_UP_S) -> None:
        """Until every member reports its JetStream caught up (``/healthz``)."""
        members.wait_healthy(self.cluster.members, timeout)

    def member_pid(self, name: str) -> int:
        pid = members.running_pid(self.home.root, name)
        assert pid is not None, f"{name} is not running"
        return pid

    def kill_member(self, name: str) -> None:
        """SIGKILL one member: no flush, no lame duck, no goodbye to its clients."""
        pid = self.member_pid(name)
        os.kill(pid, signal.SIGKILL)
        server.wait_exit(pid, 10)
        members.MemberPaths(self.home.root, name).pid_file.unlink(missing_ok=True)

    def stop_member(self, name: str) -> None:
        members.stop_member(self.home.root, name)

    def start_member(self, name: str) -> None:
        """Start one stopped member again on its ports, store and configuration."""
        members.start_member(self.home.root, self.cluster.member(name))

    def rolling_restart(self, drain_s: float | None = 3.0) -> None:
        members.rolling_restart(self.home.root, self.cluster, drain_s=drain_s)

    def replica_messages(self, account: str, stream: str) -> dict[str, int]:
        """How many messages each running member's own replica of ``stream`` holds (its
        ``/jsz``): equal counts on all three mean the replicas agree."""
        counts: dict[str, int] = {}
        for m in self.cluster.members:
            if members.running_pid(self.home.root, m.name) is None:
                continue
            url = f"{m.monitor_url}/jsz?acc={account}&streams=true"
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback monitor
                data = json.loads(resp.read())
            for acc in data.get("account_details") or []:
                for detail in acc.get("stream_detail") or []:
                    if detail["name"] == stream:
                        counts[m.name] = int(detail["state"]["messages"])
        return counts

    def kill(self) -> None:
        for name in self.names:
            if members.running_pid(self.home.root, name) is not None:
                self.kill_member(name)

    @property
    def pid(self) -> int:
        raise AttributeError("a cluster has three pids: member_pid(name)")


def build_cluster_hub(root: Path, states: tuple[str, ...] = STATES) -> ClusterHub:
    """Init a hub home for ``states`` (keys generated, enrolled) to run as a three-server
    cluster with R3 streams."""
    hub = build_hub(root, states)
    return ClusterHub(hub.home, hub.keys, hub.directory, policy=provision.Policy(replicas=cl.SIZE))
