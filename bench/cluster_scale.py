"""The whole OAS membership on the three-server hub cluster, against one server in the same run.

    .venv/bin/python bench/cluster_scale.py                  # 35 states x 1,000 messages
    .venv/bin/python bench/cluster_scale.py --per-state 100  # quicker

For each topology (one server with R1 streams, then the three-server cluster with R3 streams,
both on this machine's loopback): a generated registry of the 35 OAS member states; how long
render + start take, how long provisioning every state takes, whether every state's wall holds
(its node credentials on its neighbour's stream, consumer and name), how long queuing
``per-state`` envelopes of 4 KiB in every inbox takes (each from another state, as a node
publishes: one subject per recipient inbox, ``Nats-Msg-Id``), how long the 35 states take to
drain them through their node consumers, and the resident memory and disk of each server after
the AUDIT stream has sourced everything. Ratios: cluster / one server.

Nothing is asserted: it is a measurement (tests/integration/test_cluster_scale.py is the bounded
check).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.core.logs import configure
from services.hub.resources import format_size
from services.testbed import scale
from services.testbed.cluster import build_cluster_hub
from services.testbed.hub import OAS_MEMBER_STATES, Hub, build_hub, eventually

STATES = OAS_MEMBER_STATES


async def run(hub: Hub, per_state: int) -> dict[str, float]:
    """One topology's figures; the hub is stopped afterwards."""
    figures: dict[str, float] = {}
    try:
        start = time.perf_counter()
        hub.start()
        if hasattr(hub, "wait_healthy"):
            hub.wait_healthy()
        figures["start_s"] = time.perf_counter() - start
        figures["provision_s"] = await scale.timed(hub.home.provision(hub.url, STATES, hub.policy))
        breaches = await scale.walls_breached(hub, STATES)
        figures["breaches"] = len(breaches)
        for breach in breaches:
            print(f"  BREACH {breach}")
        figures["fill_s"] = await scale.timed(scale.fill(hub, STATES, per_state))
        start = time.perf_counter()
        received = await scale.drain(hub, STATES, per_state)
        figures["drain_s"] = time.perf_counter() - start
        figures["lost"] = sum(
            len(set(scale.expected_ids(STATES, s, per_state)) - set(received[s])) for s in STATES
        )
        figures["duplicated"] = sum(len(r) - len(set(r)) for r in received.values())

        async def audited() -> bool:
            return await scale.audit_holds(hub) == len(STATES) * per_state

        await eventually(audited, timeout=300, what="the AUDIT stream sourced every inbox")
        for server in scale.server_figures(hub):
            figures[f"rss:{server.name}"] = server.rss
            figures[f"disk:{server.name}"] = server.disk
    finally:
        hub.stop()
    return figures


def report(name: str, figures: dict[str, float], per_state: int) -> None:
    total = len(STATES) * per_state
    print(f"{name}:")
    print(f"  render+start {figures['start_s']:.2f} s, provision {len(STATES)} states "
          f"{figures['provision_s']:.2f} s, walls breached {figures['breaches']:.0f}")  # fmt: skip
    print(f"  queue {total} envelopes {figures['fill_s']:.2f} s "
          f"({total / figures['fill_s']:.0f}/s), drain {figures['drain_s']:.2f} s "
          f"({total / figures['drain_s']:.0f}/s), lost {figures['lost']:.0f}, "
          f"duplicated {figures['duplicated']:.0f}")  # fmt: skip
    for key, value in figures.items():
        if key.startswith("rss:"):
            server = key.removeprefix("rss:")
            disk = figures[f"disk:{server}"]
            print(f"  {server}: memory {format_size(int(value))}, disk {format_size(int(disk))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-state", type=int, default=1000)
    args = parser.parse_args()
    configure(json=True, level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("single", "cluster"):
            (root / name).mkdir()
        single = asyncio.run(run(build_hub(root / "single", STATES), args.per_state))
        cluster = asyncio.run(run(build_cluster_hub(root / "cluster", STATES), args.per_state))
    print(f"{len(STATES)} states x {args.per_state} envelopes of {scale.ENVELOPE_BYTES} bytes")
    report("one server, R1", single, args.per_state)
    report("three-server cluster, R3", cluster, args.per_state)
    print("ratios (cluster / one server):")
    for key in ("start_s", "provision_s", "fill_s", "drain_s"):
        print(f"  {key.removesuffix('_s')}: {cluster[key] / single[key]:.2f}")
    rss = sum(v for k, v in cluster.items() if k.startswith("rss:")) / 3
    print(f"  memory per server: {rss / single['rss:single']:.2f}")


if __name__ == "__main__":
    main()
