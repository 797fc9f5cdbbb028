"""What the metrics cost a node: end-to-end throughput with and without them, in the same run.

    python bench/metrics.py [--n 2000] [--rounds 2]

Two nodes (MEX sends 1 KB reports to USA, USA answers with receipts) on a real nats-server, as in
bench/e2e.py's throughput phase, alternately with the node's metrics as shipped (the verdict
counters and the group-commit histogram, one call per inbox group) and without them (the
trace-header filter stays in both); with ``--faststream``, FastStream's NATS Prometheus middleware
is added to the "with" runs, to show what it would cost. Then the cost of one scrape of USA's
``/metrics`` after the run. Prints msg/s and the ratio; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.exposition import generate_latest

from schemas.registry import example_body
from services.core.logs import configure
from services.node import app
from services.node.metrics import Decide, NodeMetrics
from services.testbed.nodes import running_node


def load_e2e() -> Any:
    spec = importlib.util.spec_from_file_location("e2e", Path(__file__).with_name("e2e.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class WithoutMetrics(NodeMetrics):
    """The same registry and collector, but nothing on the message path."""

    def timed(self, decide: Decide) -> Decide:
        return decide


async def one_run(
    e2e: Any, root: Path, n: int, metrics: bool, faststream: bool
) -> tuple[float, float]:
    """(msg/s, seconds per scrape of USA's metrics) of one network."""
    original = app.NodeRuntime._broker

    def broker(self: Any) -> Any:  # the node's broker, with FastStream's middleware added
        from faststream.nats.prometheus import NatsPrometheusMiddleware

        built = original(self)
        built.add_middleware(NatsPrometheusMiddleware(registry=self.metrics.registry))
        return built

    app.NodeMetrics = NodeMetrics if metrics else WithoutMetrics  # type: ignore[misc]
    if metrics and faststream:
        app.NodeRuntime._broker = broker  # type: ignore[method-assign]
    try:
        return await _measure(e2e, root, n)
    finally:
        app.NodeRuntime._broker = original  # type: ignore[method-assign]
        app.NodeMetrics = NodeMetrics  # type: ignore[misc]


async def _measure(e2e: Any, root: Path, n: int) -> tuple[float, float]:
    overrides = e2e.node_overrides(None)
    body = example_body("info.legislative_measures")
    async with (
        e2e.started_hub(root / "net") as hub,
        running_node(hub, "MEX", root / "nodes", **overrides) as mex,
        running_node(hub, "USA", root / "nodes", **overrides) as usa,
    ):
        probe = e2e.Probe(mex, usa)
        await e2e.throughput(mex, usa, probe, body, 64, e2e.Row("warm-up"))
        row = e2e.Row("run")
        await e2e.throughput(mex, usa, probe, body, n, row)
        if row.problems or row.e2e_note:
            raise SystemExit(f"run failed: {row.problems} {row.e2e_note}")
        started = time.perf_counter()
        for _ in range(20):
            generate_latest(usa.metrics.registry)
        return row.e2e, (time.perf_counter() - started) / 20


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, alternating")
    parser.add_argument(
        "--faststream",
        action="store_true",
        help="add FastStream's NATS Prometheus middleware to the runs with metrics",
    )
    args = parser.parse_args(argv)
    configure(json=True, level="ERROR")
    e2e = load_e2e()
    results: dict[bool, list[float]] = {True: [], False: []}
    scrape_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for metrics in (False, True):
                root = Path(tmp) / f"{i}-{metrics}"
                root.mkdir()
                rate, scrape = await one_run(e2e, root, args.n, metrics, args.faststream)
                results[metrics].append(rate)
                if metrics:
                    scrape_s.append(scrape)
    without, with_ = statistics.median(results[False]), statistics.median(results[True])
    print(f"messages per run: {args.n} (1 KB bodies), runs of each: {args.rounds}")
    print(f"without metrics: {without:8.0f} msg/s  {[round(r) for r in results[False]]}")
    print(f"with metrics:    {with_:8.0f} msg/s  {[round(r) for r in results[True]]}")
    print(f"ratio with/without: {with_ / without:.3f}")
    print(f"one scrape of USA's /metrics after {args.n} messages: "
          f"{statistics.median(scrape_s) * 1e3:.2f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
