"""Throughput and p99 on one hub server and on the three-server R3 cluster, each against raw
JetStream measured in the same run on the same topology.

    make bench-cluster
    python bench/cluster.py --quick

For each topology, on this machine's loopback:

* e2e msg/s and p50/p99 ms: the path of bench/e2e.py (its ``throughput`` and ``latency``): MEX
  composes (seals) 1 KB reports for USA; the clock stops when USA has stored all of them and MEX
  has recorded every receipt; latency is compose at MEX to stored at USA, at a fixed offered
  load. Real nodes (``NodeRuntime``, deployed settings) against the real hub: the accounts,
  imports and R1 or R3 streams ``cifta hub provision`` makes, the AUDIT stream sourcing them.
* raw msg/s and p50/p99 ms: nats-py alone against plain nats-server(s) of the same topology (one
  server, or three in a cluster; no auth; ``sync_interval`` "always" as the hub renders it on one
  machine), a file stream shaped like an inbox with the same replicas: publish the sealed
  envelope's size with 64 PubAcks in flight, then pull and ack through the node consumer's
  configuration; latency is publish to pulled, at the same offered load.

Ratios: e2e / raw of the same topology, and cluster / one server. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats

from services.core.connection import servers
from services.core.logs import configure
from services.hub import members, provision, server
from services.hub.config import MAX_PAYLOAD
from services.hub.resources import StreamSizes
from services.testbed.cluster import build_cluster_hub
from services.testbed.hub import Hub, build_hub
from services.testbed.leaf import allow_leaves, start_leaf
from services.testbed.nodes import running_node


def load_e2e_bench() -> ModuleType:
    """bench/e2e.py, loaded by path (bench is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_e2e", Path(__file__).with_name("e2e.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


e2e = load_e2e_bench()
NO_PEERS = 10005  # nats-server: "no suitable peers for placement"


@dataclass(frozen=True)
class Topology:
    label: str
    replicas: int
    build: Callable[[Path], Hub]  # the hub home, not started
    #: MEX on its own leaf node (services/hub/leaf.py): its node talks to the leaf, and raw
    #: JetStream publishes into a stream on a leaf that a cluster stream sources.
    leaf: bool = False


#: The topologies measured, in order.
TOPOLOGIES = [
    Topology("one server, R1", 1, lambda root: build_hub(root, ("MEX", "USA"))),
    Topology("cluster, R3", 3, lambda root: build_cluster_hub(root, ("MEX", "USA"))),
    Topology("cluster+leaf", 3, lambda root: build_cluster_hub(root, ("MEX", "USA")), leaf=True),
]


@dataclass
class Figures:
    e2e: float = float("nan")
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    raw: float = float("nan")
    raw_p50_ms: float = float("nan")
    raw_p99_ms: float = float("nan")
    problems: list[str] | None = None


def percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return float("nan"), float("nan")
    cuts = statistics.quantiles(sorted(samples), n=100, method="inclusive")
    return statistics.median(samples) * 1e3, cuts[98] * 1e3


async def run_e2e(topology: Topology, root: Path, size: Any, fig: Figures) -> None:
    (root / "hub").mkdir()
    hub = topology.build(root / "hub")
    overrides = e2e.node_overrides(None)
    body = e2e.cb.body_of(size.size)
    leaf = None
    if topology.leaf:
        allow_leaves(hub, "MEX")
    try:
        hub.start()
        if hasattr(hub, "wait_healthy"):
            hub.wait_healthy()
        await hub.provision()
        mex_overrides = dict(overrides)
        if topology.leaf:
            leaf = await start_leaf(hub, "MEX", root)
            mex_overrides.update(leaf.node_overrides())
        async with (
            running_node(hub, "MEX", root / "nodes", **mex_overrides) as mex,
            running_node(hub, "USA", root / "nodes", **overrides) as usa,
        ):
            probe = e2e.Probe(mex, usa)
            await e2e.throughput(mex, usa, probe, body, 64, e2e.Row("warm-up"))
            row = e2e.Row(size.label)
            await e2e.throughput(mex, usa, probe, body, size.n, row)
            await e2e.latency(mex, usa, probe, body, size.n_latency, size.rate, row)
            fig.e2e, fig.p50_ms, fig.p99_ms, fig.problems = (
                row.e2e, row.p50_ms, row.p99_ms, row.problems
            )  # fmt: skip
    finally:
        if leaf is not None:
            leaf.stop()
        hub.stop()


@contextlib.asynccontextmanager
async def raw_servers(root: Path, count: int, leaf: bool = False) -> AsyncIterator[list[str]]:
    """``count`` plain nats-servers (clustered when more than one); their URLs, comma-separated,
    then with ``leaf`` the URL of a plain leaf server (its own JetStream domain) linked to them."""
    routes = [members.free_port("127.0.0.1") for _ in range(count)]
    pids, urls, logs = [], [], []
    try:
        for i in range(count):
            home = root / f"raw-{i + 1}"
            home.mkdir(parents=True)
            body: dict[str, object] = {
                "server_name": f"raw-{i + 1}", "host": "127.0.0.1", "port": -1,
                "max_payload": MAX_PAYLOAD,
                "jetstream": {"store_dir": str(home / "jetstream"), "sync_interval": "always"},
            }  # fmt: skip
            if count > 1:
                body["cluster"] = {
                    "name": "raw", "host": "127.0.0.1", "port": routes[i],
                    "routes": [f"nats-route://127.0.0.1:{p}" for p in routes if p != routes[i]],
                }  # fmt: skip
            if leaf:
                body["leafnodes"] = {"host": "127.0.0.1", "port": -1, "no_advertise": True}
                body["jetstream"]["domain"] = "hub"  # type: ignore[index]
            (home / "nats.conf").write_text(json.dumps(body))
            running = server.start(
                home / "nats.conf", run_dir=home / "run", log_file=home / "nats-server.log"
            )
            pids.append(running.pid)
            urls.append(running.client_url)
            logs.append((home / "nats-server.log", running.pid))
        found = [",".join(urls)]
        if leaf:
            home = root / "raw-leaf"
            home.mkdir(parents=True)
            remotes = [server.leaf_url(log, pid) for log, pid in logs]
            body = {
                "server_name": "raw-leaf", "host": "127.0.0.1", "port": -1,
                "max_payload": MAX_PAYLOAD,
                "jetstream": {"store_dir": str(home / "jetstream"), "domain": "leaf",
                              "sync_interval": "always"},
                "leafnodes": {"remotes": [{"urls": remotes}]},
            }  # fmt: skip
            (home / "nats.conf").write_text(json.dumps(body))
            running = server.start(
                home / "nats.conf", run_dir=home / "run", log_file=home / "nats-server.log"
            )
            pids.append(running.pid)
            found.append(running.client_url)
        yield found
    finally:
        for pid in pids:
            server.stop(pid)


async def raw_stream(
    js: nats.js.JetStreamContext,
    name: str,
    replicas: int,
    sources: list[nats.js.api.StreamSource] | None = None,
) -> None:
    policy = provision.Policy(replicas=replicas)
    sizes = StreamSizes(inbox=1024**3, quarantine=1024**2, directory=1024**2, undelivered=1024**2)
    config = replace(
        provision.inbox_config("USA", policy, sizes), name=name,
        subjects=None if sources else [f"{name}.>"], sources=sources,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:  # a fresh cluster elects its meta leader and learns its peers first
        try:
            await js.add_stream(config)
            break
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as exc:
            if time.monotonic() > deadline:
                raise exc from None
        except nats.js.errors.BadRequestError as exc:  # "no suitable peers for placement"
            if exc.err_code != NO_PEERS or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)  # polling for the cluster to form, with a deadline
    await js.add_consumer(name, config=provision.node_consumer_config(policy))


async def raw_streams(
    js: nats.js.JetStreamContext,
    leaf_js: nats.js.JetStreamContext | None,
    name: str,
    replicas: int,
) -> None:
    """The inbox-shaped stream ``name``; through a leaf, it sources ``name``'s messages from a
    stream on the leaf (the path of a state's outbox, its relay and a recipient's inbox)."""
    if leaf_js is None:
        await raw_stream(js, name, replicas)
        return
    await leaf_js.add_stream(name=f"{name}_OUT", subjects=[f"{name}.>"])
    source = nats.js.api.StreamSource(
        name=f"{name}_OUT", external=nats.js.api.ExternalStream(api="$JS.leaf.API")
    )
    await raw_stream(js, name, replicas, sources=[source])


async def run_raw(topology: Topology, root: Path, size: Any, envelope: int, fig: Figures) -> None:
    payload = os.urandom(envelope)
    async with raw_servers(root / "raw", topology.replicas, topology.leaf) as urls:
        nc = await nats.connect(servers(urls[0]), allow_reconnect=False)
        leaf_nc = await nats.connect(urls[1], allow_reconnect=False) if topology.leaf else None
        try:
            js = nc.jetstream()
            leaf_js = leaf_nc.jetstream() if leaf_nc is not None else None
            pub_js = leaf_js or js
            await raw_streams(js, leaf_js, "THROUGHPUT", topology.replicas)
            psub = await js.pull_subscribe_bind("node", "THROUGHPUT")
            t0 = time.perf_counter()
            for start in range(0, size.n, 64):
                await asyncio.gather(*(
                    pub_js.publish(f"THROUGHPUT.{i}", payload, headers={"Nats-Msg-Id": f"m{i}"})
                    for i in range(start, min(size.n, start + 64))
                ))  # fmt: skip
            pulled = 0
            while pulled < size.n:
                with contextlib.suppress(nats.errors.TimeoutError):
                    for msg in await psub.fetch(64, timeout=2.0):
                        await msg.ack()
                        pulled += 1
            fig.raw = size.n / (time.perf_counter() - t0)
            await raw_streams(js, leaf_js, "LATENCY", topology.replicas)
            samples = await raw_latency(js, payload, size, pub_js)
            fig.raw_p50_ms, fig.raw_p99_ms = percentiles(samples)
        finally:
            await nc.close()
            if leaf_nc is not None:
                await leaf_nc.close()


async def raw_latency(
    js: nats.js.JetStreamContext, payload: bytes, size: Any, pub_js: nats.js.JetStreamContext
) -> list[float]:
    """Publish (into ``pub_js``) at the offered load while a consumer pulls: publish call to
    pulled, per message."""
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    psub = await js.pull_subscribe_bind("node", "LATENCY")

    async def pull() -> None:
        while len(got) < size.n_latency:
            with contextlib.suppress(nats.errors.TimeoutError):
                for msg in await psub.fetch(64, timeout=0.5):
                    got[msg.subject] = time.perf_counter()
                    await msg.ack()

    puller = asyncio.create_task(pull())
    t0 = time.perf_counter()
    for i in range(size.n_latency):
        delay = t0 + i / size.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the offered load's schedule
        subject = f"LATENCY.{i}"
        sent[subject] = time.perf_counter()
        await pub_js.publish(subject, payload, headers={"Nats-Msg-Id": subject})
    await asyncio.wait_for(puller, e2e.WAIT_S)
    return [got[s] - t for s, t in sent.items() if s in got]


def report(size: Any, envelope: int, figures: dict[str, Figures]) -> None:
    print()
    print(f"{size.label} bodies ({envelope} B envelopes): {size.n} messages for throughput, "
          f"{size.n_latency} at {size.rate:g}/s for latency")  # fmt: skip
    header = (
        f"{'topology':<16} {'e2e/s':>7} {'raw/s':>7} {'e2e/raw':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'raw p50':>8} {'raw p99':>8} {'p99/raw':>8}"
    )
    print(header)
    print("-" * len(header))
    for label, f in figures.items():
        print(
            f"{label:<16} {f.e2e:7.0f} {f.raw:7.0f} {f.e2e / f.raw:8.3f} {f.p50_ms:7.1f} "
            f"{f.p99_ms:7.1f} {f.raw_p50_ms:8.1f} {f.raw_p99_ms:8.1f} "
            f"{f.p99_ms / f.raw_p99_ms:8.1f}"
        )
        for problem in f.problems or []:
            print(f"  ! {problem}")
    one, three, leaf = (figures[t.label] for t in TOPOLOGIES[:3])
    print(
        f"cluster / one server: e2e {three.e2e / one.e2e:.2f}, raw {three.raw / one.raw:.2f}, "
        f"p99 {three.p99_ms / one.p99_ms:.2f}, raw p99 {three.raw_p99_ms / one.raw_p99_ms:.2f}"
    )
    print(
        f"through a leaf / cluster: e2e {leaf.e2e / three.e2e:.2f}, raw {leaf.raw / three.raw:.2f}"
        f", p99 {leaf.p99_ms / three.p99_ms:.2f}, raw p99 "
        f"{leaf.raw_p99_ms / three.raw_p99_ms:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument(
        "--rate", type=float, default=20.0,
        help="offered load for latency, msg/s: below every topology's e2e throughput, so that "
        "p99 is the path's and not a queue's",
    )  # fmt: skip
    args = parser.parse_args()
    configure(json=True, level="WARNING")
    seconds = 2.0 if args.quick else 5.0
    size = e2e.Size("1 KB", 1024, 300 if args.quick else 2000, args.rate, int(args.rate * seconds))
    envelope = e2e.envelope_size(e2e.cb.body_of(size.size))
    figures: dict[str, Figures] = {}
    print(f"CIFTA Exchange: one hub server vs the three-server cluster ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory(prefix="cifta-bench-cluster-") as tmp:
        for i, topology in enumerate(TOPOLOGIES):
            root = Path(tmp) / str(i)
            root.mkdir()
            fig = figures[topology.label] = Figures()
            asyncio.run(run_e2e(topology, root, size, fig))
            asyncio.run(run_raw(topology, root, size, envelope, fig))
    report(size, envelope, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
