"""Running the hub cluster's three servers from the hub home: start, stop, reload, health and a
rolling restart (issue 16).

```
<home>/cluster.json                 the members: names, hosts, ports (kept once picked)
<home>/keys/route.secret            the routes' shared secret (0600)
<home>/cluster/<name>/nats.conf     the member's configuration (0600: it holds the secret)
<home>/cluster/<name>/jetstream/    the member's JetStream store (its replica of every stream)
<home>/cluster/<name>/run/          pid, ports file, log
```
"""

from __future__ import annotations

import json
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from services.core.files import write_secret
from services.hub import cluster as cl
from services.hub import config, server
from services.hub.registry import Registry
from services.hub.resources import Plan

#: How long a member may take to catch up after a start before a rolling restart gives up.
CATCH_UP_S = 60.0


class MemberPaths:
    """Where one member's files live in the hub home."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root / "cluster" / name
        self.config = self.dir / "nats.conf"
        self.store = self.dir / "jetstream"
        self.run = self.dir / "run"
        self.pid_file = self.run / "nats-server.pid"
        self.log = self.run / "nats-server.log"


def load_cluster(path: Path) -> cl.Cluster | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    members = tuple(cl.Member(**m) for m in data.pop("members"))
    if data.get("route_ca"):
        data["route_ca"] = Path(data["route_ca"])
    return cl.Cluster(members, **data)


def save_cluster(path: Path, cluster: cl.Cluster) -> None:
    data = asdict(cluster)
    data["route_ca"] = str(cluster.route_ca.absolute()) if cluster.route_ca else None
    path.write_text(json.dumps(data, indent=2) + "\n")


def route_secret(keys_dir: Path) -> str:
    """The routes' shared secret, made once: a server without it cannot join the cluster."""
    path = keys_dir / "route.secret"
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_secret(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip()


def render_members(
    root: Path,
    registry: Registry,
    users: Mapping[tuple[str, str], str],
    *,
    cluster: cl.Cluster,
    plan: Plan,
    listen: config.Listen,
    secret: str,
    leaves: Sequence[str] = (),
) -> None:
    """Write every member's configuration (0600: it holds the route secret)."""
    for member in cluster.members:
        paths = MemberPaths(root, member.name)
        body = cl.member_body(
            registry, users, cluster=cluster, member=member, store_dir=paths.store, plan=plan,
            listen=listen, route_secret=secret, leaves=leaves,
        )  # fmt: skip
        paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_secret(paths.config, config.render_text(registry, body).encode())


def running_pid(root: Path, name: str) -> int | None:
    try:
        pid = int(MemberPaths(root, name).pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if server.is_running(pid) else None


def start_member(root: Path, member: cl.Member) -> cl.Member:
    """Start one member on its rendered configuration; the member with the ports it listens on."""
    paths = MemberPaths(root, member.name)
    if running_pid(root, member.name) is not None:
        return member
    for stale in paths.run.glob("nats-server_*.ports"):
        stale.unlink()
    running = server.start(paths.config, run_dir=paths.run, log_file=paths.log)
    paths.pid_file.write_text(f"{running.pid}\n")
    ports = running.ports
    leaf = server.leaf_url(paths.log, running.pid)  # none unless the hub has a leaf listener
    return cl.Member(
        member.name, member.host, ports.get("nats", member.port),
        ports.get("cluster", member.cluster_port), ports.get("monitoring", member.monitor_port),
        int(leaf.rsplit(":", 1)[1]) if leaf else member.leaf_port,
    )  # fmt: skip


def free_port(host: str) -> int:
    """A port nothing listens on now: for a route port that the others must know in advance
    (nats-server refuses a JetStream cluster member without routes, so the first member cannot
    wait for the others' ports the way a client port can be read back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: Another program may take a picked port before the member binds it: pick again.
PORT_PICKS = 3


def start_all(
    root: Path,
    cluster: cl.Cluster,
    render: Callable[[cl.Cluster], None],
    only: str | None = None,
) -> cl.Cluster:
    """Start every member that is not running, in order, and return the cluster with the ports
    its members listen on. ``render`` writes every member's configuration for a cluster. Route
    ports left to pick (-1) are picked here, before any member starts, so that every member's
    routes name the others; so is the monitoring port (nats-server refuses a reload that changes
    it from the -1 it started with). ``only``: start that member alone (one server per machine)."""
    if only is not None:
        cluster.member(only)  # an unknown name fails here, naming the members
    for member in cluster.members:
        if member.cluster_port == -1:
            cluster = cluster.with_member(replace(member, cluster_port=free_port(member.host)))
        if cluster.member(member.name).monitor_port == -1:  # a reload cannot change it later
            cluster = cluster.with_member(
                replace(cluster.member(member.name), monitor_port=free_port("127.0.0.1"))
            )
    render(cluster)
    for member in cluster.members:
        if only is not None and member.name != only:
            continue
        for pick in range(PORT_PICKS):
            try:
                started = start_member(root, member)
                break
            except server.ServerError as exc:
                if "address already in use" not in str(exc) or pick == PORT_PICKS - 1:
                    raise
                member = replace(
                    member, cluster_port=free_port(member.host), monitor_port=free_port("127.0.0.1")
                )
                cluster = cluster.with_member(member)
                render(cluster)
        if started != member:
            cluster = cluster.with_member(started)
            render(cluster)  # keep the client and monitoring ports the server picked
    return cluster


def stop_member(root: Path, name: str, timeout: float = 20.0) -> bool:
    pid = running_pid(root, name)
    if pid is None:
        return False
    server.stop(pid, timeout)
    MemberPaths(root, name).pid_file.unlink(missing_ok=True)
    return True


def reload_all(root: Path, cluster: cl.Cluster) -> None:
    """Apply the rendered configurations to every running member (no restart)."""
    for member in cluster.members:
        pid = running_pid(root, member.name)
        if pid is not None:
            server.reload_confirmed(pid, MemberPaths(root, member.name).log)


def health(member: cl.Member) -> str | None:
    """None when the member is up and its JetStream has caught up with the cluster (its
    ``/healthz``: the meta leader known, every stream and consumer it holds current); else why
    not, in the server's words."""
    try:
        with urllib.request.urlopen(f"{member.monitor_url}/healthz", timeout=2) as resp:  # noqa: S310 - loopback http we render
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        try:
            return str(json.loads(exc.read()).get("error") or exc.reason)
        except ValueError:
            return str(exc.reason)
    except (OSError, urllib.error.URLError) as exc:
        return f"not answering ({type(exc).__name__})"


def meta_peers_ready(member: cl.Member, size: int) -> str | None:
    """None when ``member`` is not the JetStream meta leader, or is and sees every other member
    online and current; else why not. A member's ``/healthz`` can say ok while the leader still
    counts a peer offline, and then refuses to place an R3 stream ("no suitable peers for
    placement, peer offline", 10005)."""
    try:
        with urllib.request.urlopen(f"{member.monitor_url}/jsz", timeout=2) as resp:  # noqa: S310 - loopback http we render
            meta = json.loads(resp.read()).get("meta_cluster") or {}
    except (OSError, ValueError) as exc:
        return f"no /jsz ({type(exc).__name__})"
    if meta.get("leader") != member.name:
        return None
    peers = meta.get("replicas") or []
    ready = [p for p in peers if p.get("current") and not p.get("offline")]
    if len(ready) < size - 1:
        return f"meta leader sees {len(ready)} of {size - 1} peers online and current"
    return None


def wait_healthy(members: tuple[cl.Member, ...], timeout: float = CATCH_UP_S) -> None:
    """Wait until every one of ``members`` reports healthy and the meta leader sees the others
    online, or fail naming the laggard."""
    deadline = time.monotonic() + timeout
    while True:
        reasons = {m.name: health(m) or meta_peers_ready(m, len(members)) for m in members}
        failing = {n: r for n, r in reasons.items() if r is not None}
        if not failing:
            return
        if time.monotonic() > deadline:
            what = "; ".join(f"{n}: {r}" for n, r in failing.items())
            raise server.ServerError(f"hub servers not healthy after {timeout:g}s: {what}")
        time.sleep(0.1)  # polling the members' healthz


def rolling_restart(
    root: Path,
    cluster: cl.Cluster,
    say: Callable[[str], None] = lambda _: None,
    drain_s: float | None = None,
) -> None:
    """Restart the members one at a time, never more than one down: each waits until all three
    are healthy (every stream caught up), enters lame-duck mode so its clients and JetStream
    leaderships move to the other two, exits, and starts again on its (possibly new) binary and
    configuration. The quorum of every R3 stream stays up throughout. ``drain_s``: stop a
    member (SIGTERM, which still steps its leaderships down) after that long in lame-duck mode
    instead of waiting for it to close every client itself (tests, a small hub)."""
    for member in cluster.members:
        wait_healthy(cluster.members)
        pid = running_pid(root, member.name)
        if pid is not None:
            say(f"{member.name}: lame duck (pid {pid})")
            server.lame_duck(pid)
            wait = cluster.lame_duck_s + 30 if drain_s is None else drain_s
            if not server.wait_exit(pid, wait):
                server.stop(pid)
            MemberPaths(root, member.name).pid_file.unlink(missing_ok=True)
        start_member(root, member)
        say(f"{member.name}: started, catching up")
    wait_healthy(cluster.members)
    say("all hub servers healthy")
